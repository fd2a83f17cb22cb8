package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/storage/driver"
)

func newDoctorCmd(env *Env) *cobra.Command {
	var team string
	var origins []string
	cmd := &cobra.Command{
		Use:   "doctor [--team TEAM] [--origin URL]...",
		Short: "Check each connector's store configuration and print a fix for each failure",
		Long: `Check the connector of each team you administer (or of --team) against its
store, with read-only calls, and print a fix under each failure or warning.
S3 and GCS: credentials and their expiry, that the bucket exists and can be
listed, clock skew against the store's Date header, CORS for the browser origins
given with --origin (GET, HEAD, PUT, ETag exposed), default encryption, a
lifecycle rule that aborts incomplete uploads, versioning, and the store-side
network policy for the team's allow-list. Azure: the same where the data plane
can show it (soft delete instead of versioning). The local store: its directory,
free space, signing keys and public URL. docs/doctor.md lists every check.
Exits 1 when any check fails.`,
		Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			ctx := cmd.Context()
			teams := []string{team}
			if team == "" {
				ts, err := c.Teams(ctx)
				if err != nil {
					return err
				}
				teams = teams[:0]
				for _, t := range ts {
					teams = append(teams, t.Name)
				}
			}
			var reports []*sighttp.DoctorReport
			for _, t := range teams {
				rep, err := c.Doctor(ctx, t, origins)
				switch code := signet.ErrorCode(err); {
				case err == nil:
				case team == "" && code == signet.PermissionDenied:
					continue // not a team the caller administers
				case code == signet.NotFound || code == signet.Unimplemented:
					rep = &sighttp.DoctorReport{Team: t, OK: true, Checks: []driver.Check{{
						Name: "connector", Status: driver.CheckSkip, Detail: signet.ErrorMessage(err),
					}}}
				default:
					return fmt.Errorf("team %s: %w", t, err)
				}
				reports = append(reports, rep)
			}
			if len(reports) == 0 {
				return errors.New("no team to check: you administer none (or give --team)")
			}
			failed := 0
			err := env.print(reports, []string{"TEAM", "CHECK", "STATUS", "DETAIL"}, func(add func(...any)) {
				for _, r := range reports {
					for _, ch := range r.Checks {
						add(r.Team, ch.Name, ch.Status, ch.Detail)
						if ch.Fix != "" && ch.Status != driver.CheckOK {
							add("", "", "", "fix: "+ch.Fix)
						}
					}
				}
			})
			for _, r := range reports {
				for _, ch := range r.Checks {
					if ch.Status == driver.CheckFail {
						failed++
					}
				}
			}
			if err == nil && failed > 0 {
				err = fmt.Errorf("%d check(s) failed", failed)
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&team, "team", "", "check only this team's connector")
	cmd.Flags().StringArrayVar(&origins, "origin", nil, "browser origin that CORS must allow, such as https://app.example.com (repeatable)")
	return cmd
}
