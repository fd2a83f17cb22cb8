package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	sighttp "github.com/signetdev/signet/http"
)

func newPolicyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Store-side network policies for teams with an allow-list (instance admins)",
		Long: `A team's allow-list (signet team set TEAM --allow-cidr) is checked when URLs are
issued. On S3 the store can also refuse requests from elsewhere, by a bucket
policy that denies the team's prefix outside its networks; on GCS, by a
bucket IP filter. See docs/s3.md and docs/gcs.md, "Networks".`,
	}
	render := &cobra.Command{
		Use:   "render TEAM",
		Short: "Print the store policy that restricts the team's objects to its networks",
		Long: `Print the policy document: for S3 a bucket policy with one Deny statement
(Sid signet-team-TEAM-network), for GCS the file of
"gcloud storage buckets update --ip-filter-file". Notes go to stderr, so
stdout can be redirected to a file. With --json, the whole answer.`,
		Example: `  signet policy render ml > policy.json`,
		Args:    exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			p, err := c.NetworkPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printPolicy(env, p)
		}),
	}
	apply := &cobra.Command{
		Use:   "apply TEAM",
		Short: "Put the team's network policy in force at its store",
		Long: `Merge signet's statement for the team into the bucket policy (S3), keeping
every other statement; for a team without an allow-list, remove signet's
statement. GCS answers unimplemented with the gcloud command to run.`,
		Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			p, err := c.ApplyNetworkPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if env.jsonOut {
				return printPolicy(env, p)
			}
			what := fmt.Sprintf("applied statement %s to", p.ID)
			if p.Removed {
				what = fmt.Sprintf("removed statement %s from", p.ID)
			}
			fmt.Fprintf(env.Stdout, "%s the policy of bucket %s (%d other statements kept)\n", what, p.Bucket, p.Kept)
			for _, n := range p.Notes {
				fmt.Fprintf(env.Stderr, "note: %s\n", n)
			}
			return nil
		}),
	}
	cmd.AddCommand(render, apply)
	return cmd
}

// printPolicy writes the answer as JSON with --json, else the document
// alone, indented, with the notes on stderr.
func printPolicy(env *Env, p *sighttp.NetworkPolicyInfo) error {
	if env.jsonOut {
		return env.print(p, nil, nil)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, p.Document, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	for _, n := range p.Notes {
		fmt.Fprintf(env.Stderr, "note: %s\n", n)
	}
	return nil
}
