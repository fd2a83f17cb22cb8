package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/postgres"
	"github.com/signetdev/signet/sqlite"
)

// Age is a duration in the config file: as Go writes durations (720h,
// 90m) or in whole days (30d).
type Age time.Duration

// UnmarshalYAML decodes a duration or a number of days.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*a = Age(d)
	return nil
}

// retentionActor is the ActorUser of the audit.prune entries serve writes.
const retentionActor = "signet"

// runRetention prunes the audit log of store every hour, keeping maxAge,
// up to the checkpoints in dir signed by key, until ctx is done. On a
// PostgreSQL role that may not delete from the log it logs how to prune
// instead, and stops.
func runRetention(ctx context.Context, store signet.Store, key ed25519.PrivateKey, dir string, maxAge time.Duration,
	logger *slog.Logger, now func() time.Time) {
	r := &auditlog.Retention{
		Store: store, MaxAge: maxAge, Dir: dir, Pub: key.Public().(ed25519.PublicKey),
		Actor: retentionActor, Logger: logger, Now: now,
	}
	r.Run(ctx) // logs its failures
}

// openPruneStore opens the database at db for writing: PostgreSQL (which
// must be at this signet's schema version) or a SQLite file, which must
// exist.
func openPruneStore(ctx context.Context, db string) (signet.Store, error) {
	if isPostgres(db) {
		s, err := postgres.Open(ctx, db)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	// Open read-only first: a path that is not a database fails here
	// instead of being created.
	ro, err := sqlite.OpenReadOnly(ctx, db)
	if err != nil {
		return nil, err
	}
	ro.Close()
	s, err := sqlite.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newAuditPruneCmd(env *Env) *cobra.Command {
	var db, pubkey, dir, dataDir, olderThan, configFile string
	cmd := &cobra.Command{
		Use:   "prune --db PATH-OR-URL --older-than AGE | --config FILE [--db URL]",
		Short: "Delete audit entries older than AGE, up to a signed checkpoint",
		Long: `Delete the oldest entries of the audit log: those older than AGE (a duration
such as 720h, or days: 30d), up to the latest signed checkpoint that covers
only such entries, and exactly to it, so that the log left verifies from
that checkpoint ("signet audit verify --checkpoint DIR --pubkey FILE"). The
entries to delete are verified first, against the chain and the checkpoint;
if they are not intact nothing is deleted. Each prune appends an audit.prune
entry, in the same transaction, naming the entries and the checkpoint.

signet serve does this every hour when audit_retention is set, except on a
PostgreSQL role that may only append to the log (signet migrate
--app-role): run this command as the owner of signet's tables instead, from
cron, with the checkpoint directory and key of a signet serve. With --config
(serve's configuration file) the age is its audit_retention, the checkpoint
directory and key its own, and the database its db unless --db names
another (the owner's URL); flags override the file.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var age time.Duration
			if configFile != "" {
				cfg := DefaultConfig()
				if err := ReadConfigFile(configFile, &cfg); err != nil {
					return usageError{err}
				}
				age = time.Duration(cfg.AuditRetention)
				if db == "" {
					db = cfg.DB
					if db == "" {
						db = filepath.Join(cfg.DataDir, "signet.db")
					}
				}
				if !cmd.Flags().Changed("data-dir") {
					dataDir = cfg.DataDir
				}
				if pubkey == "" {
					pubkey = cfg.AuditCheckpointKeyFile
				}
				if dir == "" {
					dir = cfg.AuditCheckpointDir
				}
			}
			if olderThan != "" {
				var err error
				if age, err = parseAge(olderThan); err != nil || age <= 0 {
					return usageError{fmt.Errorf("--older-than: want a positive duration such as 720h or 30d, got %q", olderThan)}
				}
			}
			if db == "" || age <= 0 {
				return usageError{errors.New("give --db and --older-than, or --config with audit_retention set")}
			}
			if pubkey == "" {
				pubkey = filepath.Join(dataDir, defaultCheckpointKeyFile)
			}
			if dir == "" {
				dir = filepath.Join(dataDir, defaultCheckpointDir)
			}
			pub, err := auditlog.ReadPublicKey(pubkey)
			if err != nil {
				return err
			}
			s, err := openPruneStore(cmd.Context(), db)
			if err != nil {
				return err
			}
			defer s.Close()
			r := &auditlog.Retention{Store: s, MaxAge: age, Dir: dir, Pub: pub, Actor: retentionActor}
			pruned, wait, err := r.Prune(cmd.Context())
			if env.jsonOut {
				type out struct {
					From       int64  `json:"from"`
					Through    int64  `json:"through"`
					Checkpoint string `json:"checkpoint"`
					Entry      int64  `json:"prune_entry"`
				}
				list := []out{}
				for _, p := range pruned {
					list = append(list, out{p.From, p.Through, p.Checkpoint.FileName(), p.Event.Seq})
				}
				if perr := env.print(list, nil, nil); perr != nil {
					return perr
				}
			} else {
				for _, p := range pruned {
					fmt.Fprintf(env.Stdout, "pruned entries %d to %d at checkpoint %s; recorded as entry %d\n",
						p.From, p.Through, p.Checkpoint.FileName(), p.Event.Seq)
				}
			}
			var ve *auditlog.VerifyError
			switch {
			case errors.As(err, &ve):
				return fmt.Errorf("audit log is not intact, nothing pruned: %w", err)
			case err != nil:
				return err
			case len(pruned) == 0:
				fmt.Fprintf(env.Stderr, "nothing pruned: %s\n", wait)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "", "database: SQLite file or postgres://… URL (as the owner of signet's tables)")
	f.StringVar(&olderThan, "older-than", "", "retention age: prune entries older than this (720h, 30d)")
	f.StringVar(&dir, "dir", "", "checkpoint directory (default <data-dir>/"+defaultCheckpointDir+")")
	f.StringVar(&pubkey, "pubkey", "", "public (or private) checkpoint key file (default <data-dir>/"+defaultCheckpointKeyFile+")")
	f.StringVar(&dataDir, "data-dir", DefaultConfig().DataDir, "signet's data directory")
	f.StringVar(&configFile, "config", "", "signet serve's YAML configuration: audit_retention, data_dir, db, checkpoint settings")
	return cmd
}
