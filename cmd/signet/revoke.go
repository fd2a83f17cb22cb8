package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	sighttp "github.com/signetdev/signet/http"
)

func newRevokeCmd(env *Env) *cobra.Command {
	var req sighttp.RevokeRequest
	var since, until string
	cmd := &cobra.Command{
		Use:   "revoke (--team T | --user U | --key ID | --since T | --until T)...",
		Short: "Withdraw issued URLs by team, user, API key or issue time",
		Long: `Withdraw the URLs already issued that match every selector given: the team,
the user they were issued to, the API key that asked for them, and an issue time
window [--since, --until) (--until defaults to now). --since and --until take an
RFC 3339 time or a duration meaning that long ago (90m, 2h).

On the local store the URLs stop working at once on this server and within a
few seconds on its replicas. For other stores the answer says what the store
can and cannot withdraw (see docs/security.md, "Revocation").`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			var err error
			if req.IssuedAfter, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if req.IssuedBefore, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			if req.Team == "" && req.User == "" && req.Key == "" && req.IssuedAfter == nil && req.IssuedBefore == nil {
				return usageError{errors.New("give at least one of --team, --user, --key, --since or --until")}
			}
			c, err := env.client()
			if err != nil {
				return err
			}
			out, err := c.Revoke(cmd.Context(), &req)
			if err != nil {
				return err
			}
			if env.jsonOut {
				return env.print(out, nil, nil)
			}
			r := out.Revocation
			fmt.Fprintf(env.Stdout, "revocation %s: URLs issued before %s", r.ID, r.IssuedBefore.Format(time.RFC3339Nano))
			if !r.IssuedAfter.IsZero() {
				fmt.Fprintf(env.Stdout, " and at or after %s", r.IssuedAfter.Format(time.RFC3339Nano))
			}
			fmt.Fprintln(env.Stdout)
			for _, s := range out.Stores {
				fmt.Fprintf(env.Stdout, "  team %s (%s): %s\n", s.Team, s.Backend, s.Effect)
				for _, l := range s.Limitations {
					fmt.Fprintf(env.Stdout, "    limitation: %s\n", l)
				}
				if len(s.PolicyStatement) > 0 {
					fmt.Fprintf(env.Stdout, "    bucket policy statement to apply: %s\n", s.PolicyStatement)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Team, "team", "", "revoke the URLs of this team")
	f.StringVar(&req.User, "user", "", "revoke the URLs issued to this user")
	f.StringVar(&req.Key, "key", "", "revoke the URLs obtained with this API key id")
	f.StringVar(&since, "since", "", "only URLs issued at or after this time")
	f.StringVar(&until, "until", "", "only URLs issued before this time (default now)")

	var listTeam string
	list := &cobra.Command{
		Use: "list", Short: "List revocations", Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			rs, err := c.Revocations(cmd.Context(), listTeam)
			if err != nil {
				return err
			}
			return env.print(rs, []string{"ID", "TEAM", "USER", "KEY", "ISSUED AFTER", "ISSUED BEFORE", "BY"}, func(add func(...any)) {
				for _, r := range rs {
					after := "-"
					if !r.IssuedAfter.IsZero() {
						after = r.IssuedAfter.Format(time.RFC3339)
					}
					add(r.ID, dash(r.Team), dash(r.User), dash(r.KeyID), after, r.IssuedBefore.Format(time.RFC3339), dash(r.CreatedBy))
				}
			})
		}),
	}
	list.Flags().StringVar(&listTeam, "team", "", "only this team's revocations")
	cmd.AddCommand(list)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen reads an RFC 3339 time or a duration before now; "" is nil.
func parseWhen(flag, s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return &t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil || d < 0 {
		return nil, usageError{fmt.Errorf("%s must be an RFC 3339 time or a duration such as 2h", flag)}
	}
	t := now.Add(-d)
	return &t, nil
}
