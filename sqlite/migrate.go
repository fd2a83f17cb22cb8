package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"sync"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
)

// Migrations are SQL files named NNNN_description.sql; NNNN is the schema
// version the file produces. Versions start at 1 and have no gaps.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationSteps are Go steps that run after the SQL of the migration to
// the version they are keyed by, in its transaction.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	4: chainExisting, // 0004_audit_chain
}

var loadMigrations = sync.OnceValue(func() []sqlstore.Migration {
	return sqlstore.LoadMigrations("sqlite", migrationFS)
})

// LatestSchemaVersion returns the schema version this code creates and
// expects: the version of the last embedded migration.
func LatestSchemaVersion() int {
	ms := loadMigrations()
	return ms[len(ms)-1].Version
}

// SchemaVersion returns the schema version recorded in the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.read.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	if err != nil {
		return 0, storeError("sqlite.SchemaVersion", err, "")
	}
	return v, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
) STRICT`

// migrate applies the pending migrations in order, each in its own
// transaction together with its row in schema_migrations, so a failed
// migration leaves the previous version intact. Concurrent openers
// serialize on the write lock.
func (db *DB) migrate(ctx context.Context) error {
	for _, m := range loadMigrations() {
		done, err := db.apply(ctx, m)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return nil
}

// apply applies m unless the database is already at m's version or later.
// done reports that the database is already up to date.
func (db *DB) apply(ctx context.Context, m sqlstore.Migration) (done bool, err error) {
	const op = "sqlite.Open"
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, storeError(op, err, "")
	}
	defer stx.Rollback()
	if _, err := stx.ExecContext(ctx, createMigrationsTable); err != nil {
		return false, storeError(op, err, "")
	}
	var cur int
	if err := stx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
		return false, storeError(op, err, "")
	}
	latest := LatestSchemaVersion()
	if cur > latest {
		return false, signet.E(op, signet.Unavailable, fmt.Sprintf(
			"database schema version %d is newer than this signet supports (%d); upgrade signet", cur, latest), nil)
	}
	if cur >= latest {
		return true, nil
	}
	if cur >= m.Version {
		return false, nil
	}
	if _, err := stx.ExecContext(ctx, m.SQL); err != nil {
		return false, storeError(op, fmt.Errorf("migration %s: %w", m.Name, err), "cannot migrate database schema")
	}
	if step := migrationSteps[m.Version]; step != nil {
		if err := step(ctx, stx); err != nil {
			return false, storeError(op, fmt.Errorf("migration %s: %w", m.Name, err), "cannot migrate database schema")
		}
	}
	if _, err := stx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
		m.Version, db.now().UnixMicro()); err != nil {
		return false, storeError(op, err, "")
	}
	if err := stx.Commit(); err != nil {
		return false, storeError(op, err, "")
	}
	return false, nil
}
