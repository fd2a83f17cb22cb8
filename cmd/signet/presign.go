package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

func newPresignCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "presign",
		Short: "Print a pre-signed URL for one object",
		Long: `Print a pre-signed URL for one object on stdout, and any headers the client
must send with it on stderr. KEY is relative to the team's space.`,
	}
	var expiresIn time.Duration
	var size int64
	var contentType, sha string
	run := func(op string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := env.client()
			if err != nil {
				return err
			}
			obj := sighttp.ObjectRequest{Key: args[1], ContentType: contentType, SHA256: sha}
			if cmd.Flags().Changed("size") {
				obj.Size = &size
			}
			req := &sighttp.PresignRequest{Operation: op, Objects: []sighttp.ObjectRequest{obj}}
			if cmd.Flags().Changed("expires-in") {
				if req.ExpiresIn, err = seconds("expires-in", expiresIn); err != nil {
					return err
				}
				if expiresIn <= 0 {
					*req.ExpiresIn = -1 // refused by the server with a clear message
				}
			}
			resp, err := c.Presign(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			o := resp.Objects[0]
			if o.Error != nil {
				return &signet.Error{Code: signet.Code(o.Error.Code), Msg: o.Error.Message}
			}
			if env.jsonOut {
				return env.print(o, nil, nil)
			}
			fmt.Fprintln(env.Stdout, o.URL)
			names := make([]string, 0, len(o.Headers))
			for h := range o.Headers {
				names = append(names, h)
			}
			sort.Strings(names)
			for _, h := range names {
				fmt.Fprintf(env.Stderr, "%s: %s\n", h, o.Headers[h])
			}
			fmt.Fprintf(env.Stderr, "method %s, expires %s\n", o.Method, o.ExpiresAt.Format(time.RFC3339))
			return nil
		}
	}
	get := &cobra.Command{Use: "get TEAM KEY", Short: "URL to download an object", Args: exactArgs(2), RunE: run("download")}
	put := &cobra.Command{Use: "put TEAM KEY", Short: "URL to upload an object", Args: exactArgs(2), RunE: run("upload")}
	for _, c := range []*cobra.Command{get, put} {
		c.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime of the URL (default and maximum: the team's cap)")
	}
	put.Flags().Int64Var(&size, "size", 0, "bind the exact size in bytes")
	put.Flags().StringVar(&contentType, "content-type", "", "bind the Content-Type the upload must carry")
	put.Flags().StringVar(&sha, "sha256", "", "bind the SHA-256 (hex) of the content")
	cmd.AddCommand(get, put)
	return cmd
}
