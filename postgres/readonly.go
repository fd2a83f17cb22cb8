package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signetdev/signet"
)

// chainSchemaVersion is the first schema version whose audit log is a
// hash chain (migration 0004).
const chainSchemaVersion = 4

// OpenReadOnly connects to the database at url for reading, as an auditor
// would: every session is read-only (default_transaction_read_only), the
// schema is never changed, and Update and Ping return Unavailable. Unlike
// Open it accepts a standby and a server that does not flush commits,
// and any schema from the audit chain's (version 4) to this code's.
// Unavailable if the database cannot be reached or its schema is outside
// that range; Invalid for a malformed URL.
func OpenReadOnly(ctx context.Context, url string) (*DB, error) {
	const op = "postgres.OpenReadOnly"
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: it goes into Err only.
		return nil, signet.E(op, signet.Invalid, "invalid PostgreSQL URL", err)
	}
	configure(cfg.ConnConfig)
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "invalid PostgreSQL URL", err)
	}
	db := &DB{Now: time.Now, WriteTimeout: DefaultWriteTimeout, pool: pool, readOnly: true}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, storeError(op, withContext(ctx, err), "")
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	switch latest := LatestSchemaVersion(); {
	case v < chainSchemaVersion:
		pool.Close()
		return nil, signet.E(op, signet.Unavailable, fmt.Sprintf(
			"database schema version %d predates the audit hash chain (version %d); run `signet migrate`", v, chainSchemaVersion), nil)
	case v > latest:
		pool.Close()
		return nil, signet.E(op, signet.Unavailable, aheadMessage(v, latest), nil)
	}
	return db, nil
}

func errReadOnly(op string) error {
	return signet.E(op, signet.Unavailable, "database is open read-only", nil)
}
