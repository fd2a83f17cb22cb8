package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/postgres"
	"github.com/signetdev/signet/sqlite"
)

// Defaults of the audit checkpoint settings, relative to the data
// directory.
const (
	defaultCheckpointKeyFile = "audit-checkpoint.key"
	defaultCheckpointDir     = "checkpoints"
)

// openAuditStore opens the database at db (a postgres:// URL or a SQLite
// file) read-only, without migrating it.
func openAuditStore(ctx context.Context, db string) (signet.Store, error) {
	if isPostgres(db) {
		s, err := postgres.OpenReadOnly(ctx, db)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := sqlite.OpenReadOnly(ctx, db)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseAnchor parses SEQ:HASH.
func parseAnchor(s string) (signet.AuditHead, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 0 {
		return signet.AuditHead{}, fmt.Errorf("--after %q: want SEQ:HASH", s)
	}
	h, err := signet.ParseAuditHash(hash)
	if err != nil {
		return signet.AuditHead{}, fmt.Errorf("--after %q: %w", s, err)
	}
	return signet.AuditHead{Seq: n, Hash: h}, nil
}

// loadCheckpoints reads and checks the checkpoints named by paths: files,
// or directories whose latest checkpoint signed by pub is taken, and, when
// the log starts at entry start > 1 (it was pruned for retention), also
// their checkpoint of entry start-1, which anchors it.
func loadCheckpoints(env *Env, paths []string, pub ed25519.PublicKey, start int64) ([]*auditlog.Checkpoint, error) {
	// With --json, stdout holds only the verdict.
	out := env.Stdout
	if env.jsonOut {
		out = env.Stderr
	}
	var cps []*auditlog.Checkpoint
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() && start > 1 {
			anchors, err := auditlog.CheckpointsBetween(p, pub, start-1, start-1)
			if err != nil {
				return nil, err
			}
			if n := len(anchors); n > 0 {
				cp := anchors[n-1]
				fmt.Fprintf(out, "checkpoint %s: entry %d, hash %s, signed %s by key %s (anchors the log, which starts at entry %d)\n",
					cp.FileName(), cp.Seq, cp.Hash, cp.Time.Format(time.RFC3339), cp.KeyID, start)
				cps = append(cps, cp)
			}
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		var cp *auditlog.Checkpoint
		if fi.IsDir() {
			dir := p
			var skipped int
			cp, p, skipped, err = auditlog.LatestCheckpoint(dir, pub)
			if err != nil {
				return nil, err
			}
			if skipped > 0 {
				fmt.Fprintf(env.Stderr, "warning: %d file(s) in %s are not checkpoints signed by key %s\n", skipped, dir, auditlog.KeyID(pub))
			}
			if cp == nil {
				return nil, fmt.Errorf("no checkpoint signed by key %s in %s", auditlog.KeyID(pub), dir)
			}
		} else {
			if cp, err = auditlog.ReadCheckpoint(p); err != nil {
				return nil, err
			}
			if err := cp.Verify(pub); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		fmt.Fprintf(out, "checkpoint %s: entry %d, hash %s, signed %s by key %s\n",
			filepath.Base(p), cp.Seq, cp.Hash, cp.Time.Format(time.RFC3339), cp.KeyID)
		cps = append(cps, cp)
	}
	return cps, nil
}

func newAuditVerifyCmd(env *Env) *cobra.Command {
	var db, file, pubkey, after string
	var checkpoints []string
	cmd := &cobra.Command{
		Use:   "verify (--db PATH-OR-URL | --file FILE) [--checkpoint FILE-OR-DIR --pubkey FILE]",
		Short: "Check offline that the audit log is an unbroken hash chain",
		Long: `Verify the audit log's hash chain, offline: every entry's hash covers its
fields and the hash of the entry before, sequence numbers run from 1 without
gaps, and the store's record of its last entry matches. Read a database
(--db: a SQLite file or a postgres:// URL, opened read-only and never
migrated) or a JSON-lines export (--file, "-" for standard input, as
"signet audit export" writes it, unfiltered).

With --checkpoint (a checkpoint file, or a directory whose latest checkpoint
is used; repeatable) and --pubkey (the checkpoint key's PEM public key, from
"signet audit pubkey"), the entry at each checkpoint must also have the
checkpoint's hash, and the log must reach it: this detects a log rewritten
before the checkpoint, cut short, or restored from an older backup.

A log pruned for retention ("signet audit prune", or audit_retention in
the config) starts after entry 1. It verifies from its start only with
--checkpoint naming the checkpoint it was pruned at (a directory is searched
for it) and --pubkey, and only if it holds the audit.prune entry recording
the prune; without them, verify fails with "unanchored start".

The command exits non-zero on the first inconsistency and names the entry.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (db == "") == (file == "") {
				return usageError{errors.New("give exactly one of --db and --file")}
			}
			if len(checkpoints) > 0 && pubkey == "" {
				return usageError{errors.New("--checkpoint needs --pubkey, the key that signed it")}
			}
			var anchor signet.AuditHead
			if after != "" {
				var err error
				if anchor, err = parseAnchor(after); err != nil {
					return usageError{err}
				}
			}
			// The first entry: a log pruned for retention starts after
			// entry 1, at a checkpoint to be found.
			var start int64
			var s signet.Store
			var r io.Reader = env.Stdin
			var err error
			if db != "" {
				if s, err = openAuditStore(cmd.Context(), db); err != nil {
					return err
				}
				defer s.Close()
				err = s.View(cmd.Context(), func(tx signet.Tx) error {
					evs, err := tx.Audit(signet.AuditFilter{Limit: 1})
					if len(evs) > 0 {
						start = evs[0].Seq
					}
					return err
				})
				if err != nil {
					return err
				}
			} else {
				if file != "-" {
					f, ferr := os.Open(file)
					if ferr != nil {
						return ferr
					}
					defer f.Close()
					r = f
				}
				if start, r, err = peekFirstSeq(r); err != nil {
					return err
				}
			}
			first := start
			if after != "" {
				start = 0 // anchored by --after
			}
			var cps []*auditlog.Checkpoint
			if pubkey != "" {
				pub, err := auditlog.ReadPublicKey(pubkey)
				if err != nil {
					return err
				}
				if cps, err = loadCheckpoints(env, checkpoints, pub, start); err != nil {
					return err
				}
			}
			var res auditlog.Result
			if s != nil {
				res, err = auditlog.VerifyStore(cmd.Context(), s, anchor, cps...)
			} else {
				res, err = auditlog.VerifyJSONLines(r, anchor, cps...)
			}
			var ve *auditlog.VerifyError
			if err != nil && !errors.As(err, &ve) {
				return err
			}
			if ve != nil {
				ve = partialStart(ve, first)
				err = ve
			}
			if env.jsonOut {
				if perr := env.print(newVerifyReport(res, ve), nil, nil); perr != nil {
					return perr
				}
			} else {
				printVerdict(env.Stdout, res, ve != nil, len(cps) > 0)
			}
			if ve != nil {
				return fmt.Errorf("audit log is not intact: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "database to verify: SQLite file or postgres://… URL")
	f.StringVar(&file, "file", "", `JSON-lines export to verify ("-" for standard input)`)
	f.StringArrayVar(&checkpoints, "checkpoint", nil, "signed checkpoint file, or a directory of them (its latest is used); repeatable")
	f.StringVar(&pubkey, "pubkey", "", "PEM public key that signed the checkpoints")
	f.StringVar(&after, "after", "", "the log continues one verified up to entry SEQ with hash HASH (SEQ:HASH), e.g. an export made with --cursor")
	return cmd
}

// partialStart rewords an unanchored start found in a file whose first
// entry, first, is not entry 1. The verifier names the first entry
// missing, entry 1, beside the line it stopped at, which reads as if that
// line held entry 1; and such a file is as often an export made from a
// cursor as a log pruned for retention. So it names the entry the line
// holds, and adds how to verify a partial export to the retention hint.
func partialStart(ve *auditlog.VerifyError, first int64) *auditlog.VerifyError {
	if ve.Kind != auditlog.Unanchored || ve.Line == 0 || first <= ve.Seq {
		return ve
	}
	n := first - 1
	return &auditlog.VerifyError{Seq: first, Line: ve.Line, Kind: ve.Kind, Detail: ve.Detail + fmt.Sprintf(
		". An export that starts after entry 1 (signet audit export --cursor %d) verifies with --after %d:HASH, "+
			"HASH being the hash of entry %d from a source you trust, such as the head an earlier verify printed; "+
			"an export with a filter (--team, --since, …) has gaps by design and does not verify", n, n, n)}
}

// verifyReport is what audit verify --json prints, whether the log is
// intact (OK, with the Head verified up to) or not (Failure).
type verifyReport struct {
	OK            bool              `json:"ok"`
	Entries       int64             `json:"entries"` // entries verified good
	Head          *signet.AuditHead `json:"head,omitempty"`
	Checkpoints   int               `json:"checkpoints_matched"`
	PrunedThrough int64             `json:"pruned_through,omitempty"`
	Seconds       float64           `json:"seconds"`
	Failure       *verifyFailure    `json:"failure,omitempty"`
}

// verifyFailure is the first inconsistency found, an
// auditlog.VerifyError.
type verifyFailure struct {
	Seq     int64  `json:"seq,omitempty"`  // the first bad entry
	Line    int    `json:"line,omitempty"` // of the file, with --file
	Kind    string `json:"kind"`           // such as "hash mismatch"
	Detail  string `json:"detail"`
	Message string `json:"message"` // all of it, as the text output says it
}

// newVerifyReport is the report of a verification that found res, and
// failed with ve unless it is nil.
func newVerifyReport(res auditlog.Result, ve *auditlog.VerifyError) verifyReport {
	v := verifyReport{OK: ve == nil, Entries: res.Entries, Checkpoints: res.Checkpoints,
		PrunedThrough: res.PrunedThrough, Seconds: res.Elapsed.Seconds()}
	if ve == nil {
		v.Head = &res.Head
	} else {
		v.Failure = &verifyFailure{Seq: ve.Seq, Line: ve.Line, Kind: string(ve.Kind), Detail: ve.Detail, Message: ve.Error()}
	}
	return v
}

// printVerdict writes the text verdict of a verification that found res:
// how far it got when failed, else what it checked. The failure itself
// goes to stderr as the command's error.
func printVerdict(w io.Writer, res auditlog.Result, failed, checkpoints bool) {
	if failed {
		fmt.Fprintf(w, "FAILED after %d good entries, in %s\n", res.Entries, res.Elapsed.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(w, "OK: %d entries verified (up to entry %d, hash %s) in %s",
		res.Entries, res.Head.Seq, res.Head.Hash, res.Elapsed.Round(time.Millisecond))
	if res.PrunedThrough > 0 {
		fmt.Fprintf(w, "; entries up to %d were pruned for retention, at a signed checkpoint", res.PrunedThrough)
	}
	if checkpoints {
		fmt.Fprintf(w, "; %d checkpoint(s) matched", res.Checkpoints)
	}
	fmt.Fprintln(w)
}

// peekFirstSeq returns the seq of the first entry of a JSON-lines export
// (0 if there is none, or it cannot be read: the verifier reports that),
// and a reader that yields all of r.
func peekFirstSeq(r io.Reader) (int64, io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var read bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		read.Write(line)
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var e struct {
				Seq int64 `json:"seq"`
			}
			json.Unmarshal(t, &e)
			return e.Seq, io.MultiReader(&read, br), nil
		}
		if err == io.EOF {
			return 0, &read, nil
		}
		if err != nil {
			return 0, nil, err
		}
		if read.Len() > 1<<20 {
			return 0, io.MultiReader(&read, br), nil
		}
	}
}

func newAuditPubkeyCmd(env *Env) *cobra.Command {
	var key, dataDir string
	cmd := &cobra.Command{
		Use:   "pubkey",
		Short: "Print the public key that verifies audit checkpoints",
		Long: `Print, as PEM, the public half of the audit checkpoint key (by default
<data-dir>/` + defaultCheckpointKeyFile + `), for "signet audit verify --pubkey". Keep a copy
where whoever can change signet's database cannot change it.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				key = filepath.Join(dataDir, defaultCheckpointKeyFile)
			}
			pub, err := auditlog.ReadPublicKey(key)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "key %s\n", auditlog.KeyID(pub))
			_, err = env.Stdout.Write(auditlog.MarshalPublicKey(pub))
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "checkpoint key file (default <data-dir>/"+defaultCheckpointKeyFile+")")
	cmd.Flags().StringVar(&dataDir, "data-dir", DefaultConfig().DataDir, "signet's data directory")
	return cmd
}

func newAuditCheckpointCmd(env *Env) *cobra.Command {
	var db, key, dir, dataDir string
	cmd := &cobra.Command{
		Use:   "checkpoint --db PATH-OR-URL",
		Short: "Verify the audit log since the last checkpoint and write a signed one",
		Long: `Write one signed checkpoint of the audit log's head, as signet serve does at
every interval, after verifying the entries since the latest checkpoint in the
directory signed by the same key (or the whole log). The database is opened
read-only. The key is created (mode 0600) if it does not exist.

A log pruned for retention starts at entry N > 1 and is verified from the
checkpoint of entry N-1 it was pruned at; if the directory lacks it (a new
replica, or another replica pruned), nothing is written and the error names
the file to copy in, from the pruning replica's checkpoint directory or the
audit_checkpoint_export bucket.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return usageError{errors.New("--db is required")}
			}
			if key == "" {
				key = filepath.Join(dataDir, defaultCheckpointKeyFile)
			}
			if dir == "" {
				dir = filepath.Join(dataDir, defaultCheckpointDir)
			}
			k, created, err := auditlog.LoadOrCreateKey(key)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(env.Stderr, "created checkpoint key %s (key id %s)\n", key, auditlog.KeyID(k.Public().(ed25519.PublicKey)))
			}
			s, err := openAuditStore(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer s.Close()
			c := &auditlog.Checkpointer{Store: s, Key: k, Dir: dir}
			cp, path, err := c.Checkpoint(cmd.Context())
			if err != nil {
				var ve *auditlog.VerifyError
				var ae *auditlog.AnchorError
				switch {
				case errors.As(err, &ae):
					// Not tampering: the directory lacks the checkpoint a
					// prune was made at, and the error says which.
					return fmt.Errorf("no checkpoint written: %w", err)
				case errors.As(err, &ve):
					return fmt.Errorf("audit log is not intact, no checkpoint written: %w", err)
				}
				return err
			}
			fmt.Fprintf(env.Stdout, "%s: entry %d, hash %s\n", path, cp.Seq, cp.Hash)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "database: SQLite file or postgres://… URL")
	f.StringVar(&key, "key", "", "checkpoint key file (default <data-dir>/"+defaultCheckpointKeyFile+")")
	f.StringVar(&dir, "dir", "", "checkpoint directory (default <data-dir>/"+defaultCheckpointDir+")")
	f.StringVar(&dataDir, "data-dir", DefaultConfig().DataDir, "signet's data directory")
	return cmd
}
