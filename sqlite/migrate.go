package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/signetdev/signet"
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

type migration struct {
	version int
	name    string
	sql     string
}

var loadMigrations = sync.OnceValue(func() []migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic(fmt.Sprintf("sqlite: reading embedded migrations: %v", err))
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || path.Ext(name) != ".sql" {
			panic(fmt.Sprintf("sqlite: migration %q is not named NNNN_description.sql", name))
		}
		b, err := migrationFS.ReadFile("migrations/" + name)
		if err != nil {
			panic(fmt.Sprintf("sqlite: reading migration %q: %v", name, err))
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("sqlite: migration %q out of sequence: want version %d", m.name, i+1))
		}
	}
	return ms
})

// LatestSchemaVersion returns the schema version this code creates and
// expects: the version of the last embedded migration.
func LatestSchemaVersion() int {
	ms := loadMigrations()
	return ms[len(ms)-1].version
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
func (db *DB) apply(ctx context.Context, m migration) (done bool, err error) {
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
	if cur >= m.version {
		return false, nil
	}
	if _, err := stx.ExecContext(ctx, m.sql); err != nil {
		return false, storeError(op, fmt.Errorf("migration %s: %w", m.name, err), "cannot migrate database schema")
	}
	if step := migrationSteps[m.version]; step != nil {
		if err := step(ctx, stx); err != nil {
			return false, storeError(op, fmt.Errorf("migration %s: %w", m.name, err), "cannot migrate database schema")
		}
	}
	if _, err := stx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
		m.version, db.now().UnixMicro()); err != nil {
		return false, storeError(op, err, "")
	}
	if err := stx.Commit(); err != nil {
		return false, storeError(op, err, "")
	}
	return false, nil
}
