// Package sqlite implements signet.Store on a SQLite database file, the
// embedded default metadata and audit store.
//
// The database runs in WAL mode with synchronous=FULL, so a transaction that
// Update reports as committed has been fsynced. Writes go through a single
// connection and start with BEGIN IMMEDIATE, so writers queue for the lock
// instead of failing on a lock upgrade; concurrent Updates are grouped into
// one transaction and one fsync (see commit.go). Reads use a separate pool
// of query-only connections and proceed while a write is in progress.
//
// Instants are stored as microseconds since the Unix epoch, UTC, so times
// read back are in UTC and truncated to the microsecond; the create methods
// update the caller's struct to the stored values.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultWriteTimeout is the default of DB.WriteTimeout.
const DefaultWriteTimeout = 5 * time.Second

// busyTimeout bounds, per statement, how long a connection waits for a lock
// held by another process. Update's deadline (WriteTimeout) and the
// caller's context end the wait earlier; this is only the backstop.
const busyTimeout = time.Minute

// DB is a signet.Store backed by a SQLite database file. Set its fields
// after Open and before first use.
type DB struct {
	// Now returns the current time. It fills CreatedAt, UpdatedAt and Time
	// fields left zero. It defaults to time.Now.
	Now func() time.Time
	// WriteTimeout bounds each Update, waiting for the write lock included.
	// Past it, Update gives up with an Unavailable error and nothing is
	// committed. Zero or less means no limit beyond the context's.
	WriteTimeout time.Duration

	path  string
	write *sql.DB   // one connection; transactions begin IMMEDIATE
	read  *sql.DB   // query-only connections
	stmts stmtCache // statements prepared on read (stmtcache.go)
	// Statements the writer runs in every batch, prepared once on the
	// write connection (commit.go); nil if preparing failed.
	writeStmts map[string]*sql.Stmt

	queue   sqlstore.Queue // Updates waiting for the writer (commit.go)
	ckpt    walCheckpointer
	commits atomic.Int64
	grouped atomic.Int64
}

// Open opens the database at path, creating it if needed, and applies any
// pending schema migrations. It refuses, with an Unavailable error, a
// database whose schema is newer than this code knows.
func Open(ctx context.Context, path string) (*DB, error) {
	const op = "sqlite.Open"
	if path == "" || path == ":memory:" {
		return nil, signet.E(op, signet.Invalid, "database path must name a file", nil)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "invalid database path", err)
	}
	db := &DB{
		Now:          time.Now,
		WriteTimeout: DefaultWriteTimeout,
		path:         abs,
	}
	// Every pooled connection runs these pragmas when it opens.
	common := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(FULL)",
	}}
	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	// Checkpoints run in the background (walcheckpoint.go), not in the
	// writer's commits.
	w.Add("_pragma", "wal_autocheckpoint(0)")
	w.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walJournalLimit))
	w.Add("_pragma", "cache_size(-32768)") // 32 MiB: a 10k-event batch fits without spilling
	// The statement journal of the writer's multi-row audit inserts
	// (commit.go) stays in memory instead of spilling to a temporary file.
	w.Add("_pragma", "temp_store(MEMORY)")
	w.Set("_txlock", "immediate")
	if db.write, err = sql.Open("sqlite", dsn(abs, w)); err != nil {
		return nil, signet.E(op, signet.Internal, "cannot open database", err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)")
	if db.read, err = sql.Open("sqlite", dsn(abs, r)); err != nil {
		db.write.Close()
		return nil, signet.E(op, signet.Internal, "cannot open database", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)

	// Open the writer first: it switches the file to WAL mode, which the
	// readers then find in place.
	if err := db.write.PingContext(ctx); err != nil {
		db.Close()
		return nil, storeError(op, err, "cannot open database")
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.prepareWrites(ctx)
	// The checkpointer's connection: journal_size_limit is the writer's,
	// which starts the WAL over and so is the one that truncates it.
	ckpt, err := sql.Open("sqlite", dsn(abs, common))
	if err != nil {
		db.Close()
		return nil, signet.E(op, signet.Internal, "cannot open database", err)
	}
	ckpt.SetMaxOpenConns(1)
	db.ckpt.start(ckpt)
	db.ckpt.committed() // the migrations' pages, if any
	db.queue.Start(db.runBatch)
	return db, nil
}

func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), OmitHost: true}
	return u.String() + "?" + q.Encode()
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database. It waits for transactions in progress;
// Updates after Close return Unavailable.
func (db *DB) Close() error {
	db.queue.Stop()
	errs := []error{db.ckpt.close()}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
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

// View runs fn in a read-only transaction, which sees one consistent
// snapshot of the database. The Tx's write methods return Internal errors.
func (db *DB) View(ctx context.Context, fn func(signet.Tx) error) error {
	const op = "sqlite.View"
	stx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return storeError(op, err, "")
	}
	defer stx.Rollback()
	return fn(&tx{ctx: ctx, db: db, tx: stx, readOnly: true})
}

// Ping reports whether the store can serve requests: it reads from the
// database and takes and releases the write lock, within the context's
// deadline and WriteTimeout. A database locked by another process past the
// deadline makes Ping return an Unavailable error.
func (db *DB) Ping(ctx context.Context) error {
	const op = "sqlite.Ping"
	var v int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&v); err != nil {
		return storeError(op, err, "")
	}
	if db.readOnly() {
		return errReadOnly(op)
	}
	if db.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, db.WriteTimeout)
		defer cancel()
	}
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError(op, err, "")
	}
	if err := stx.Rollback(); err != nil {
		return storeError(op, err, "")
	}
	return nil
}

// storeError maps a database failure that is not about the data (locks,
// I/O, space, deadlines) to a signet error. msg overrides the default
// user-safe message.
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

// classify returns the code and default message for err, by SQLite result
// code, never by message text.
func classify(err error) (signet.Code, string) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return signet.Unavailable, "audit store unavailable: timed out waiting for the database"
	}
	if errors.Is(err, sql.ErrNoRows) {
		return signet.NotFound, "not found"
	}
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return signet.Internal, "internal database error"
	}
	switch c := e.Code(); c & 0xff {
	case sqlite3.SQLITE_CONSTRAINT:
		switch c {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return signet.Conflict, "already exists"
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return signet.NotFound, "referenced record not found"
		}
		return signet.Invalid, "invalid value"
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return signet.Unavailable, "audit store unavailable: database is locked"
	case sqlite3.SQLITE_INTERRUPT:
		return signet.Unavailable, "audit store unavailable: timed out waiting for the database"
	case sqlite3.SQLITE_FULL:
		return signet.Unavailable, "audit store unavailable: disk full"
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
		return signet.Unavailable, "audit store unavailable: I/O error"
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		return signet.Unavailable, "audit store unavailable: database is read-only"
	case sqlite3.SQLITE_NOMEM:
		return signet.Unavailable, "audit store unavailable: out of memory"
	}
	return signet.Internal, "internal database error"
}
