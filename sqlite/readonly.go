package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/signetdev/signet"
)

// chainSchemaVersion is the first schema version whose audit log is a
// hash chain (migration 0004).
const chainSchemaVersion = 4

// OpenReadOnly opens an existing database for reading, as an auditor
// would open a copy of it: it never creates, migrates or writes the file,
// and Update and Ping's write check return Unavailable. NotFound if there
// is no file at path; Unavailable if its schema predates the audit chain
// (run signet once on it, or `signet migrate`) or is newer than this code.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	const op = "sqlite.OpenReadOnly"
	if path == "" || path == ":memory:" {
		return nil, signet.E(op, signet.Invalid, "database path must name a file", nil)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "invalid database path", err)
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, signet.E(op, signet.NotFound, fmt.Sprintf("no database at %s", abs), err)
	}
	db := &DB{Now: time.Now, path: abs}
	q := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"query_only(1)",
	}}
	q.Set("mode", "ro")
	if db.read, err = sql.Open("sqlite", dsn(abs, q)); err != nil {
		return nil, signet.E(op, signet.Internal, "cannot open database", err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	switch latest := LatestSchemaVersion(); {
	case v < chainSchemaVersion:
		db.Close()
		return nil, signet.E(op, signet.Unavailable, fmt.Sprintf(
			"database schema version %d predates the audit hash chain (version %d); open it once with signet to migrate it",
			v, chainSchemaVersion), nil)
	case v > latest:
		db.Close()
		return nil, signet.E(op, signet.Unavailable, fmt.Sprintf(
			"database schema version %d is newer than this signet supports (%d); upgrade signet", v, latest), nil)
	}
	return db, nil
}

// readOnly reports whether db was opened by OpenReadOnly.
func (db *DB) readOnly() bool { return db.write == nil }

func errReadOnly(op string) error {
	return signet.E(op, signet.Unavailable, "database is open read-only", nil)
}
