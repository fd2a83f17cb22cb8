package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// Issued versus used: `signet audit usage`, `signet audit ingest` and
// `signet audit ingester` (see docs/audit.md).

func newAuditUsageCmd(env *Env) *cobra.Command {
	var q sighttp.UsageQuery
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show which issued URLs were used, from where, and which never were",
		Long: `For each URL issued in the window (each audit entry with a grant id), show
whether the store reports it used, how often, from which addresses and how
many bytes moved, as the stores' access records ingested so far tell it
(signet audit ingest, or MinIO's audit webhook). --unused keeps the URLs
never used; --outside those used from outside the team's allowed networks
(as the team's networks are now). Team admins see their team, instance
admins every team.`,
		Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			grants := []*signet.GrantUsage{}
			for {
				page, err := c.Usage(cmd.Context(), q)
				if err != nil {
					return err
				}
				grants = append(grants, page.Grants...)
				if page.NextCursor == "" {
					break
				}
				q.Cursor = page.NextCursor
			}
			return env.print(grants, []string{"GRANT", "ISSUED", "TEAM", "METHOD", "OBJECT", "USED", "USES", "FAILED", "SENT", "RECEIVED", "FROM"}, func(add func(...any)) {
				for _, g := range grants {
					used := "no"
					if g.Used {
						used = "yes"
					}
					add(g.GrantID, g.IssuedAt.Format(time.RFC3339), dashIfEmpty(g.Team), dashIfEmpty(g.Method),
						dashIfEmpty(g.ObjectKey), used, g.Uses, g.Failed, g.BytesSent, g.BytesReceived, addresses(g))
				}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&q.Team, "team", "", "only this team's URLs (team admins); all teams when empty (instance admins)")
	f.Var(timeFlag{&q.Since, time.Now}, "since", "only URLs issued at or after this time: RFC 3339, or an age such as 24h or 7d")
	f.Var(timeFlag{&q.Until, time.Now}, "until", "only URLs issued before this time: RFC 3339, or an age")
	f.BoolVar(&q.Unused, "unused", false, "only URLs never used")
	f.BoolVar(&q.Outside, "outside", false, "only URLs used from outside the team's allowed networks")
	addLimitFlag(f, &q.Limit, 500, "URLs per request (1-1000)")
	return cmd
}

// addresses lists where a grant was used from, those outside the team's
// networks marked with "!".
func addresses(g *signet.GrantUsage) string {
	if len(g.Addresses) == 0 {
		return "-"
	}
	s := make([]string, len(g.Addresses))
	for i, a := range g.Addresses {
		s[i] = a.RemoteAddr
		if a.Outside {
			s[i] += "!"
		}
	}
	return strings.Join(s, ",")
}

// ingestChunk bounds the body of one ingest request the CLI sends, below
// the server's 8 MiB.
const ingestChunk = 4 << 20

// ingestFileResult is what importing one file did.
type ingestFileResult struct {
	File string `json:"file"`
	sighttp.IngestResult
}

func newAuditIngestCmd(env *Env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ingest --format s3-access-log FILE...",
		Short: "Import a store's access records, to tell which issued URLs were used",
		Long: `Reads access records and sends them to signet, which keeps, of each request
made with a URL it issued (one carrying its grant id), the time, bucket, key,
method, status, bytes and client address; never the signature, credential
or query string. Records of a request already imported are skipped, so a
file may be imported again.

Formats:
  s3-access-log  S3 server access log lines, as S3 writes them to the
                 target bucket
  minio          MinIO audit log entries, one JSON object per line (what
                 MinIO's audit webhook posts)

FILE "-" reads standard input. Instance admins, and users an instance admin
allowed with ` + "`signet audit ingester USER`" + `.`,
		Args: rangeArgs(1, 1<<20),
		RunE: func(cmd *cobra.Command, files []string) error {
			switch format {
			case signet.UsageSourceS3AccessLog, signet.UsageSourceMinIO:
			default:
				return usageError{fmt.Errorf("--format must be s3-access-log or minio")}
			}
			c, err := env.client()
			if err != nil {
				return err
			}
			var results []ingestFileResult
			for _, name := range files {
				res := ingestFileResult{File: name}
				err := eachFile(env, name, func(r io.Reader) error {
					return chunkLines(r, ingestChunk, func(first int, chunk []byte) error {
						got, err := c.Ingest(cmd.Context(), format, bytes.NewReader(chunk))
						if err != nil {
							return fmt.Errorf("%s, in the lines from %d: %w", name, first, err)
						}
						res.Events += got.Events
						res.Stored += got.Stored
						res.Skipped += got.Skipped
						return nil
					})
				})
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			return env.print(results, []string{"FILE", "EVENTS", "STORED", "DUPLICATES", "SKIPPED"}, func(add func(...any)) {
				for _, r := range results {
					add(r.File, r.Events, r.Stored, r.Events-r.Stored, r.Skipped)
				}
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "record format: s3-access-log or minio (required)")
	cmd.MarkFlagRequired("format")
	return cmd
}

// eachFile opens name ("-" for standard input) and hands it to fn.
func eachFile(env *Env, name string, fn func(io.Reader) error) error {
	if name == "-" {
		return fn(env.Stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	return fn(f)
}

// chunkLines cuts r into chunks of whole lines of at most size bytes (a
// longer line is a chunk of its own) and calls fn with each and the
// number of its first line.
func chunkLines(r io.Reader, size int, fn func(first int, chunk []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf bytes.Buffer
	first, n := 1, 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if buf.Len() > 0 && buf.Len()+len(line) > size {
				if ferr := fn(first, buf.Bytes()); ferr != nil {
					return ferr
				}
				buf.Reset()
				first = n + 1
			}
			buf.Write(line)
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if buf.Len() > 0 {
		return fn(first, buf.Bytes())
	}
	return nil
}

func newAuditIngesterCmd(env *Env) *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "ingester USER",
		Short: "Allow a service user to ingest store access records (instance admins)",
		Long: `Allows the service user USER to send store access records to signet
(MinIO's audit webhook, signet audit ingest), and nothing else: give its API
key to the store. --remove withdraws the right.`,
		Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			u, err := c.SetIngestUser(cmd.Context(), args[0], !remove)
			if err != nil {
				return err
			}
			return env.print(u, []string{"USER", "INGEST"}, func(add func(...any)) {
				add(u.User, u.Ingest)
			})
		}),
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "withdraw the right to ingest")
	return cmd
}
