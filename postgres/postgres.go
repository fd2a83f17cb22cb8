// Package postgres implements signet.Store on PostgreSQL, the metadata and
// audit store shared by several signet replicas.
//
// It behaves like the sqlite package, the embedded default: the same
// schema, table for table, the same error codes and the same time
// semantics. Instants are stored as timestamptz, which keeps microseconds,
// and read back in UTC; the create methods update the caller's struct to
// the stored values.
//
// Update runs a READ COMMITTED transaction, shared by concurrent Updates
// (group commit, see commit.go), and View a REPEATABLE READ READ ONLY
// one. Where READ COMMITTED alone would let two replicas race, the
// store locks: audit appends serialise on the one row of audit_head, which
// also hands out their IDs, so IDs follow commit order; connector changes
// serialise on a transaction-scoped advisory lock, so the overlap check
// sees every connector committed before it.
//
// Open does not change the schema. Migrate applies the embedded
// migrations, and Open refuses a database whose schema is behind or ahead
// of this code. Open and Ping also refuse a session whose commits would
// not be durable (synchronous_commit or fsync off).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/deadline"
	"github.com/signetdev/signet/internal/sqlstore"
)

// DefaultWriteTimeout is the default of DB.WriteTimeout.
const DefaultWriteTimeout = 5 * time.Second

// defaultIdleInTransactionTimeout ends, on the server, a transaction whose
// client has gone silent: a replica that vanished without closing its
// connection must not hold the audit lock until TCP notices. The URL's
// idle_in_transaction_session_timeout parameter overrides it.
const defaultIdleInTransactionTimeout = "1min"

// cancelGrace is how long a query whose context is done may take to stop
// after the server was asked to cancel it, before the connection is cut.
const cancelGrace = 2 * time.Second

// Advisory lock keys, in the one 64-bit key space PostgreSQL keeps per
// database. They spell "signet" followed by a number, to stay clear of
// other applications sharing the database.
const (
	lockMigrate    int64 = 0x7369676e65740001 // migrations and Harden
	lockConnectors int64 = 0x7369676e65740002 // SetConnector's overlap check
)

// DB is a signet.Store backed by a PostgreSQL database. Set its fields
// after Open and before first use.
type DB struct {
	// Now returns the current time. It fills CreatedAt, UpdatedAt and Time
	// fields left zero. It defaults to time.Now.
	Now func() time.Time
	// WriteTimeout bounds each Update, waiting for locks included, and each
	// Ping. Past it, Update gives up with an Unavailable error and nothing
	// is committed. Zero or less means no limit beyond the context's.
	WriteTimeout time.Duration

	pool     *pgxpool.Pool
	readOnly bool // opened by OpenReadOnly

	// Group commit (commit.go).
	queue   sqlstore.Queue
	commits atomic.Int64
	grouped atomic.Int64
	head    knownHead // the writer's alone
	// Batches appended at the known head, and those that found it moved
	// (AuditHeadRaces); the writer counts, /metrics reads.
	headRaces struct{ known, moved atomic.Int64 }
}

// Open connects to the database at url (a postgres:// URL as pgx accepts
// it, pool_max_conns and friends included) and checks that it can serve:
// Unavailable if it cannot be reached, if the session's commits would not
// be durable, or if the schema version differs from LatestSchemaVersion
// (run Migrate, `signet migrate`, first); Invalid for a malformed URL.
// Open never changes the schema.
func Open(ctx context.Context, url string) (*DB, error) {
	db, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := db.checkVersion(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenOrInit is Open for a first start: on an empty database (schema
// version 0) it applies the migrations first. It still refuses, like Open,
// a database that holds an older or newer schema: upgrading one is for
// Migrate, run on purpose. Concurrent callers are safe; one of them
// migrates and the others find the schema in place.
func OpenOrInit(ctx context.Context, url string) (*DB, error) {
	db, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if v, err := db.SchemaVersion(ctx); err != nil {
		db.Close()
		return nil, err
	} else if v == 0 {
		err := db.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			_, _, err := migrate(ctx, c.Conn(), LatestSchemaVersion())
			return err
		})
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := db.checkVersion(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// connect opens the pool and checks that the server is reachable and
// durable.
func connect(ctx context.Context, url string) (*DB, error) {
	const op = "postgres.Open"
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: it goes into Err only.
		return nil, signet.E(op, signet.Invalid, "invalid PostgreSQL URL", err)
	}
	configure(cfg.ConnConfig)
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return checkDurable(ctx, c) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "invalid PostgreSQL URL", err)
	}
	db := &DB{Now: time.Now, WriteTimeout: DefaultWriteTimeout, pool: pool}
	if err := db.ping(ctx, false); err != nil {
		pool.Close()
		return nil, storeError(op, err, "")
	}
	db.queue.Start(db.runBatch)
	return db, nil
}

// configure sets the connection defaults signet relies on, keeping any the
// URL sets itself.
func configure(c *pgx.ConnConfig) {
	if c.RuntimeParams["application_name"] == "" {
		c.RuntimeParams["application_name"] = "signet"
	}
	if c.RuntimeParams["idle_in_transaction_session_timeout"] == "" {
		c.RuntimeParams["idle_in_transaction_session_timeout"] = defaultIdleInTransactionTimeout
	}
	// When a context ends, ask the server to cancel the query, so that a
	// statement waiting for a lock stops waiting there too, and keep the
	// connection; cut it only if the server does not answer in time.
	c.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: cancelGrace}
	}
}

// Close closes the database. It waits for transactions in progress;
// Updates after Close return Unavailable. It always returns nil.
func (db *DB) Close() error {
	db.queue.Stop()
	db.pool.Close()
	return nil
}

// now returns the current time at the stored precision.
func (db *DB) now() time.Time {
	now := time.Now
	if db.Now != nil {
		now = db.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

// withWriteTimeout bounds ctx by WriteTimeout.
func (db *DB) withWriteTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.Within(ctx, db.WriteTimeout)
}

// View runs fn in a REPEATABLE READ READ ONLY transaction, which sees one
// consistent snapshot of the database, and returns fn's error unchanged.
// The Tx's write methods return Internal errors. Unavailable if the
// database cannot be reached, or does not start the transaction within
// WriteTimeout (a hung server); fn's statements are bounded by ctx alone,
// since a read may take long (verifying the whole audit log).
func (db *DB) View(ctx context.Context, fn func(signet.Tx) error) error {
	const op = "postgres.View"
	bctx, cancel := db.withWriteTimeout(ctx)
	ptx, err := db.pool.BeginTx(bctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	cancel()
	if err != nil {
		return storeError(op, withContext(bctx, err), "")
	}
	defer rollback(ptx)
	return fn(&tx{ctx: ctx, db: db, tx: ptx, readOnly: true})
}

// rollback ends ptx unless it has been committed. It runs even when the
// transaction's context is done, so the connection goes back to the pool
// clean; a connection that cannot roll back is closed by the pool.
func rollback(ptx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	ptx.Rollback(ctx)
}

// Ping reports whether the store can serve requests, within the context's
// deadline and WriteTimeout: it starts a read-write transaction, checks
// that the session's commits are durable and takes and releases the audit
// lock. It returns Unavailable when the server cannot be reached, is
// read-only, has synchronous_commit or fsync off for signet's session, or
// holds the audit lock past the deadline.
func (db *DB) Ping(ctx context.Context) error {
	if db.readOnly {
		return errReadOnly("postgres.Ping")
	}
	if err := db.ping(ctx, true); err != nil {
		return storeError("postgres.Ping", err, "")
	}
	return nil
}

func (db *DB) ping(ctx context.Context, lockAudit bool) error {
	ctx, cancel := db.withWriteTimeout(ctx)
	defer cancel()
	ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite})
	if err != nil {
		return withContext(ctx, err)
	}
	defer rollback(ptx)
	// Pooled connections were checked when they connected; the server's
	// configuration may have been reloaded since.
	if err := checkDurable(ctx, ptx); err != nil {
		return withContext(ctx, err)
	}
	if lockAudit {
		if _, err := ptx.Exec(ctx, "SELECT last_id FROM audit_head FOR UPDATE"); err != nil {
			return withContext(ctx, err)
		}
	}
	return nil
}

// notDurableError reports a session whose commits could be lost in a crash.
type notDurableError struct {
	setting, value string
}

func (e *notDurableError) Error() string {
	return fmt.Sprintf("%s is %s", e.setting, e.value)
}

// querier is what checkDurable and SchemaVersion need of a connection or
// transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// checkDurable returns a *notDurableError unless a commit reported by the
// session has been flushed to disk: synchronous_commit must not be off
// (local, remote_write, on and remote_apply all flush the local WAL) and
// fsync must be on.
func checkDurable(ctx context.Context, q querier) error {
	var sync, fsync string
	err := q.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('fsync')").Scan(&sync, &fsync)
	switch {
	case err != nil:
		return err
	case sync == "off":
		return &notDurableError{"synchronous_commit", sync}
	case fsync != "on":
		return &notDurableError{"fsync", fsync}
	}
	return nil
}

// withContext returns err marked with ctx's error once ctx is done, so
// that every failure past a deadline classifies as one, whatever form the
// driver gave it.
func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// storeError maps a database failure to a signet error, keeping one that
// already is. msg overrides the default user-safe message.
func storeError(op string, err error, msg string) error {
	var se *signet.Error
	if errors.As(err, &se) {
		return err
	}
	code, def := classify(err)
	if msg == "" {
		msg = def
	}
	return signet.E(op, code, msg, err)
}

// classify returns the code and default user-safe message for err: by
// SQLSTATE for server errors, never by message text, and by type for
// failures of the connection.
func classify(err error) (signet.Code, string) {
	var nd *notDurableError
	if errors.As(err, &nd) {
		return signet.Unavailable, fmt.Sprintf("audit store unavailable: PostgreSQL runs signet's session with %s = %s, "+
			"so a committed audit record could be lost in a crash; set %s = on", nd.setting, nd.value, nd.setting)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err) {
		return signet.Unavailable, "audit store unavailable: timed out waiting for the database"
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return signet.NotFound, "not found"
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return signet.Unavailable, "audit store unavailable: database is closed"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return signet.Unavailable, "audit store unavailable: cannot connect to the database"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifyState(pe.Code)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err) {
		return signet.Unavailable, "audit store unavailable: lost the connection to the database"
	}
	return signet.Internal, "internal database error"
}

// classifyState maps a SQLSTATE.
func classifyState(state string) (signet.Code, string) {
	switch state {
	case "23505": // unique_violation
		return signet.Conflict, "already exists"
	case "23503": // foreign_key_violation
		return signet.NotFound, "referenced record not found"
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return signet.Unavailable, "audit store unavailable: conflicting concurrent transactions; try again"
	case "55P03", "57014": // lock_not_available, query_canceled
		return signet.Unavailable, "audit store unavailable: timed out waiting for the database"
	case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return signet.Unavailable, "audit store unavailable: the database is shutting down or starting up"
	case "25006": // read_only_sql_transaction: a standby, or read-only by configuration
		return signet.Unavailable, "audit store unavailable: the database is read-only"
	case "53100": // disk_full
		return signet.Unavailable, "audit store unavailable: disk full"
	}
	switch {
	case strings.HasPrefix(state, "23"): // check, not-null and other integrity violations
		return signet.Invalid, "invalid value"
	case strings.HasPrefix(state, "22"): // data exceptions
		return signet.Invalid, "invalid value"
	case strings.HasPrefix(state, "08"): // connection exceptions
		return signet.Unavailable, "audit store unavailable: lost the connection to the database"
	case strings.HasPrefix(state, "53"): // insufficient resources
		return signet.Unavailable, "audit store unavailable: the database is out of resources"
	case strings.HasPrefix(state, "58"): // system errors: I/O
		return signet.Unavailable, "audit store unavailable: I/O error"
	}
	return signet.Internal, "internal database error"
}
