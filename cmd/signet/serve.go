package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/auditsink"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/postgres"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/usagequeue"
)

// Main is a running signet server. Tests start it on 127.0.0.1:0 with a
// temporary data directory.
type Main struct {
	Config Config
	// Dev creates the team "default" on the built-in local store at the
	// first start.
	Dev bool
	// Stdout receives the one-time admin token at bootstrap.
	Stdout io.Writer
	Logger *slog.Logger
	// Now is the clock for expiry; time.Now when nil.
	Now func() time.Time
	// Getenv reads the environment (SIGNET_SECRET_KEY); os.Getenv when nil.
	Getenv func(string) string

	DB     signet.Store
	Blob   *fileblob.Store
	Usage  *usagequeue.Queue // stores the uses the local store reports
	Server *sighttp.Server
	http   *http.Server
	ln     net.Listener
	done   chan error
	stop   context.CancelFunc // stops background work
	sinks  *auditsink.Set
	bg     sync.WaitGroup
}

// SweepInterval is how often expired upload sessions are collected.
const SweepInterval = time.Minute

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// URL returns the server's base URL.
func (m *Main) URL() string { return "http://" + m.Addr() }

// Run opens the store, bootstraps an empty instance, and starts serving in
// the background. Close stops it.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Stdout == nil {
		m.Stdout = io.Discard
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	c := m.Config
	if err := auditsink.Validate(c.AuditSinks, m.Getenv); err != nil {
		return usageError{fmt.Errorf("config: %w", err)}
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if m.DB, err = openStore(ctx, c, m.Now); err != nil {
		return err
	}

	if m.ln, err = net.Listen("tcp", c.Addr); err != nil {
		return fmt.Errorf("listening on %s: %w", c.Addr, err)
	}
	public := c.PublicURL
	if public == "" {
		public = "http://" + m.ln.Addr().String()
	}
	ips, err := clientIPResolver(c.TrustedProxies)
	if err != nil {
		return err
	}
	localKeys := filepath.Join(c.DataDir, "local-store.keys")
	keys, err := fileblob.LoadOrCreateKeys(localKeys)
	if err != nil {
		return fmt.Errorf("loading local store keys: %w", err)
	}
	drivers := &backends{}
	revs := newRevocations(m.DB, m.Now, func(r *signet.Revocation) { drivers.drop(r.Team) }, m.Logger)
	if err := revs.load(ctx); err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	// The local store reports each use of its URLs itself, so that
	// `signet audit usage` needs no setup for it (docs/audit.md, "Issued
	// versus used"). Close stores what is queued after the last request.
	m.Usage = usagequeue.New(m.DB, usagequeue.Options{Logger: m.Logger})
	m.Blob, err = fileblob.Open(filepath.Join(c.DataDir, "blobs"), fileblob.Options{
		BaseURL: strings.TrimRight(public, "/"), Keys: keys, Now: m.Now, Logger: m.Logger,
		ClientIP: ips.ClientIP, Revoked: revs.Revoked, OnServe: m.Usage.Add,
		KeyFile: localKeys, ListenAddr: m.ln.Addr().String(),
	})
	if err != nil {
		return fmt.Errorf("opening local store: %w", err)
	}
	drivers.local = m.Blob

	secret, err := loadSecretKey(c, m.Getenv)
	if err != nil {
		return err
	}
	sealer, err := signet.NewSealer(secret.key)
	if err != nil {
		return err
	}

	token, err := Bootstrap(ctx, m.DB, c.DataDir, m.Dev, m.Now(), secret.check())
	if err != nil {
		return fmt.Errorf("bootstrapping: %w", err)
	}
	if err := checkSecretKey(ctx, m.DB, secret); err != nil {
		return err
	}
	if token != "" {
		path := filepath.Join(c.DataDir, "admin-token")
		if streamsToStdout(c.AuditSinks) {
			// Standard output is an audit stream that collectors ship
			// on: the key stays in its file.
			fmt.Fprintf(m.Stdout, "signet: created instance admin \"admin\"; its API key is saved to %s (not shown: an audit sink writes to standard output)\n", path)
		} else {
			fmt.Fprintf(m.Stdout, "signet: created instance admin \"admin\"; its API key is shown once and saved to %s:\n%s\n", path, token)
		}
	}

	keyFile := c.AuditCheckpointKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(c.DataDir, defaultCheckpointKeyFile)
	}
	ckKey, created, err := auditlog.LoadOrCreateKey(keyFile)
	if err != nil {
		return fmt.Errorf("loading audit checkpoint key: %w", err)
	}
	if created {
		fmt.Fprintf(m.Stdout, "signet: created audit checkpoint key %s; keep its public key outside signet's control:\n%s",
			keyFile, auditlog.MarshalPublicKey(ckKey.Public().(ed25519.PublicKey)))
	}
	ckDir := c.AuditCheckpointDir
	if ckDir == "" {
		ckDir = filepath.Join(c.DataDir, defaultCheckpointDir)
	}

	var exporter *checkpointExporter
	if c.AuditCheckpointExport != nil {
		if exporter, err = newCheckpointExporter(ctx, c.AuditCheckpointExport, ckDir, m.Getenv, m.Logger); err != nil {
			return err
		}
	}

	// Audit sinks follow the committed log; commits of this process wake
	// them (see docs/audit.md, "Streaming sinks").
	m.sinks, err = auditsink.New(c.AuditSinks, auditsink.Options{
		Store: m.DB, Dir: filepath.Join(c.DataDir, "audit-sinks"), Logger: m.Logger, Stdout: m.Stdout,
		Getenv: m.Getenv, Now: m.Now,
	})
	if err != nil {
		return err
	}
	store := m.DB
	if len(c.AuditSinks) > 0 {
		store = auditsink.NotifyStore(m.DB, m.sinks.Notify)
	}

	m.Server = sighttp.NewServer(sighttp.Config{
		Store: store, Backends: drivers.Open, Sealer: sealer, Blob: m.Blob, Logger: m.Logger, Now: m.Now,
		ClientIP: ips, Revoked: revs.Add,
	})
	if err := m.sinks.Register(m.Server.Registerer()); err != nil {
		return err
	}
	if err := m.Usage.Register(m.Server.Registerer()); err != nil {
		return err
	}
	m.http = m.Server.HTTPServer(c.Addr)
	m.done = make(chan error, 1)
	go func() { m.done <- m.http.Serve(m.ln) }()
	var bg context.Context
	bg, m.stop = context.WithCancel(context.WithoutCancel(ctx))
	m.bg.Go(func() { m.Server.RunSweeper(bg, SweepInterval) })
	m.bg.Go(func() { revs.run(bg) })
	m.bg.Go(func() { auditlog.RunCheckpointer(bg, m.DB, ckKey, ckDir, c.AuditCheckpointInterval, m.Logger) })
	if c.AuditRetention > 0 {
		m.bg.Go(func() { runRetention(bg, m.DB, ckKey, ckDir, time.Duration(c.AuditRetention), m.Logger, m.Now) })
	}
	m.bg.Go(func() { m.sinks.Run(bg) })
	if exporter != nil {
		m.bg.Go(func() { exporter.run(bg, c.AuditCheckpointInterval) })
	}
	m.Logger.Info("signet serving", "addr", m.Addr(), "public_url", public, "data_dir", c.DataDir)
	return nil
}

// Wait blocks until the server stops serving.
func (m *Main) Wait() error {
	err := <-m.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server, letting requests in flight finish for a few
// seconds, stores the local store's usage events still queued, and closes
// the database.
func (m *Main) Close() error {
	var errs []error
	if m.stop != nil {
		m.stop()
		m.bg.Wait()
	}
	if m.sinks != nil {
		errs = append(errs, m.sinks.Close())
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	} else if m.ln != nil {
		m.ln.Close()
	}
	// After the last request, before the database closes.
	if m.Usage != nil {
		errs = append(errs, m.Usage.Close())
	}
	if m.DB != nil {
		errs = append(errs, m.DB.Close())
	}
	return errors.Join(errs...)
}

// Bootstrap prepares an empty instance: an admin user with an API key
// (returned, and written to <dataDir>/admin-token with mode 0600) and, when
// dev is set, the team "default" on the local store with admin as its
// admin. keyCheck, the secret key's check value (see checkSecretKey), is
// stored in the same transaction, so that of replicas racing to bootstrap
// with different keys all but the winner are refused. On an instance
// already bootstrapped it does nothing and returns "".
func Bootstrap(ctx context.Context, store signet.Store, dataDir string, dev bool, now time.Time, keyCheck string) (string, error) {
	const setting = "bootstrapped_at"
	err := store.View(ctx, func(tx signet.Tx) error {
		_, err := tx.Setting(setting)
		return err
	})
	switch signet.ErrorCode(err) {
	case "":
		return "", nil
	case signet.NotFound:
	default:
		return "", err
	}
	token, id, hash := signet.NewAPIKeyToken()
	// The token goes to a temporary file first, renamed into place only
	// after the commit: a replica that loses a bootstrap race against
	// another one sharing the data directory never touches the winner's
	// file, and a crash in between leaves the token in the temporary file.
	tokenPath := filepath.Join(dataDir, "admin-token")
	tmp, err := atomicfile.WriteTemp(tokenPath, []byte(token+"\n"), 0o600)
	if err != nil {
		return "", err
	}
	err = store.Update(ctx, func(tx signet.Tx) error {
		if _, err := tx.Setting(setting); err == nil {
			return errAlreadyBootstrapped
		}
		if err := tx.CreateUser(&signet.User{Name: "admin", Admin: true, CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.CreateAPIKey(&signet.APIKey{ID: id, User: "admin", Hash: hash, CreatedAt: now}); err != nil {
			return err
		}
		ev := &signet.AuditEvent{Time: now, ActorUser: "admin", Action: signet.ActionBootstrap,
			Outcome: signet.OutcomeAllowed, Target: "key " + id + " of admin"}
		if dev {
			if err := tx.CreateTeam(&signet.Team{Name: "default", CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.SetMember(&signet.Member{Team: "default", User: "admin", Role: signet.RoleAdmin, CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.SetConnector(&signet.Connector{Team: "default", Backend: signet.BackendLocal, Bucket: "default", UpdatedAt: now}); err != nil {
				return err
			}
			ev.Team, ev.Store, ev.Bucket = "default", signet.BackendLocal, "default"
		}
		if err := tx.AppendAudit(ev); err != nil {
			return err
		}
		if keyCheck != "" {
			if err := tx.SetSetting(secretKeyCheckSetting, keyCheck); err != nil {
				return err
			}
		}
		return tx.SetSetting(setting, now.UTC().Format(time.RFC3339Nano))
	})
	if err != nil {
		os.Remove(tmp)
		// Another replica bootstrapped the shared database first.
		if errors.Is(err, errAlreadyBootstrapped) || signet.ErrorCode(err) == signet.Conflict {
			return "", nil
		}
		return "", err
	}
	if err := os.Rename(tmp, tokenPath); err != nil {
		return "", fmt.Errorf("saving the admin token (it is in %s): %w", tmp, err)
	}
	return token, nil
}

var errAlreadyBootstrapped = errors.New("already bootstrapped")

// clientIPResolver parses the trusted proxy networks. A network with host
// bits set is refused rather than silently widened.
func clientIPResolver(cidrs []string) (sighttp.ClientIPResolver, error) {
	var r sighttp.ClientIPResolver
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return r, usageError{fmt.Errorf("trusted proxy %q is not a CIDR network", c)}
		}
		if p.Masked() != p {
			return r, usageError{fmt.Errorf("trusted proxy %q has host bits set; did you mean %s?", c, p.Masked())}
		}
		r.TrustedProxies = append(r.TrustedProxies, p)
	}
	return r, nil
}

// isPostgres reports whether a db setting names a PostgreSQL database.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openStore opens the metadata store the config names: PostgreSQL for a
// postgres:// URL (migrated only when empty; otherwise `signet migrate`
// must bring it to this version first), else a SQLite file, by default
// <data_dir>/signet.db.
func openStore(ctx context.Context, c Config, now func() time.Time) (signet.Store, error) {
	if isPostgres(c.DB) {
		db, err := postgres.OpenOrInit(ctx, c.DB)
		if err != nil {
			return nil, fmt.Errorf("opening PostgreSQL: %w", err)
		}
		db.Now = now
		return db, nil
	}
	path := c.DB
	if path == "" {
		path = filepath.Join(c.DataDir, "signet.db")
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	db.Now = now
	return db, nil
}

// streamsToStdout reports whether one of sinks writes the audit log to
// standard output.
func streamsToStdout(sinks []auditsink.Config) bool {
	for _, sc := range sinks {
		if sc.Type == auditsink.TypeStdout {
			return true
		}
	}
	return false
}
