package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet/transfer"
)

const scheme = "signet://"

// remote is a parsed signet://TEAM/KEY address.
type remote struct{ team, key string }

func parseRemote(s string) (remote, bool, error) {
	rest, ok := strings.CutPrefix(s, scheme)
	if !ok {
		return remote{}, false, nil
	}
	team, key, _ := strings.Cut(rest, "/")
	if team == "" {
		return remote{}, true, usageError{fmt.Errorf("%q: expected signet://TEAM/KEY", s)}
	}
	return remote{team: team, key: key}, true, nil
}

func newCpCmd(env *Env) *cobra.Command {
	var o transfer.Options
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file to or from a team's storage",
		Long: `Copy a file between the local disk and a team's storage, moving the bytes
directly to or from the store through pre-signed URLs. One side is a local path
("-" for stdin/stdout), the other signet://TEAM/KEY. A KEY ending in "/" takes
the local file's name. Large files go in parallel parts.`,
		Example: `  signet cp ./model.bin signet://ml/checkpoints/model.bin
  signet cp signet://ml/checkpoints/model.bin ./copy.bin`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, srcRemote, err := parseRemote(args[0])
			if err != nil {
				return err
			}
			dst, dstRemote, err := parseRemote(args[1])
			if err != nil {
				return err
			}
			if srcRemote == dstRemote {
				return usageError{fmt.Errorf("exactly one of SRC and DST must be a signet://TEAM/KEY address")}
			}
			c, err := env.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var res *transfer.Result
			var what string
			if dstRemote {
				if dst.key == "" || strings.HasSuffix(dst.key, "/") {
					if args[0] == "-" {
						return usageError{fmt.Errorf("a KEY is required when copying from stdin")}
					}
					dst.key += filepath.Base(args[0])
				}
				if args[0] == "-" {
					res, err = transfer.UploadStream(ctx, c, dst.team, dst.key, env.Stdin, &o)
				} else {
					res, err = transfer.UploadFile(ctx, c, dst.team, dst.key, args[0], &o)
				}
				what = fmt.Sprintf("uploaded %s to %s%s/%s", args[0], scheme, dst.team, dst.key)
			} else {
				if src.key == "" || strings.HasSuffix(src.key, "/") {
					return usageError{fmt.Errorf("%q names no object", args[0])}
				}
				out := args[1]
				if out == "-" {
					res, err = transfer.Download(ctx, c, src.team, src.key, env.Stdout, &o)
				} else {
					if strings.HasSuffix(out, "/") || isDir(out) {
						out = filepath.Join(out, path.Base(src.key))
					}
					res, err = transfer.DownloadFile(ctx, c, src.team, src.key, out, &o)
				}
				what = fmt.Sprintf("downloaded %s%s/%s to %s", scheme, src.team, src.key, out)
			}
			if err != nil {
				return err
			}
			if env.jsonOut {
				return env.print(res, nil, nil)
			}
			fmt.Fprintf(env.Stderr, "%s: %d bytes, sha256 %s\n", what, res.Size, res.SHA256)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Concurrency, "concurrency", 4, "parts moved in parallel")
	f.Int64Var(&o.PartSize, "part-size", 0, "part size in bytes for chunked uploads (default: chosen by the server)")
	f.StringVar(&o.ContentType, "content-type", "", "Content-Type to bind to the upload")
	return cmd
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
