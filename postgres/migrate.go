package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
)

// Migrations are SQL files named NNNN_description.sql; NNNN is the schema
// version the file produces. Versions start at 1, have no gaps, and match
// the sqlite package's: version N describes the same tables in both.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationSteps are Go steps that run after the SQL of the migration to
// the version they are keyed by, in the same transaction.
var migrationSteps = map[int]func(context.Context, pgx.Tx) error{
	4: chainExisting, // 0004_audit_chain
}

var loadMigrations = sync.OnceValue(func() []sqlstore.Migration {
	return sqlstore.LoadMigrations("postgres", migrationFS)
})

// LatestSchemaVersion returns the schema version this code creates and
// expects: the version of the last embedded migration.
func LatestSchemaVersion() int {
	ms := loadMigrations()
	return ms[len(ms)-1].Version
}

// SchemaVersion returns the schema version recorded in the database, 0 for
// a database that holds no signet schema. Unavailable if the database
// cannot be reached.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	v, err := schemaVersion(ctx, db.pool)
	if err != nil {
		return 0, storeError("postgres.SchemaVersion", withContext(ctx, err), "")
	}
	return v, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}

// checkVersion returns an Unavailable error unless the database's schema
// is the one this code expects.
func (db *DB) checkVersion(ctx context.Context) error {
	const op = "postgres.Open"
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := LatestSchemaVersion()
	switch {
	case v == 0:
		return signet.E(op, signet.Unavailable, fmt.Sprintf(
			"the database holds no signet schema (version 0; this signet needs version %d); run `signet migrate` to create it", latest), nil)
	case v < latest:
		return signet.E(op, signet.Unavailable, fmt.Sprintf(
			"database schema version %d is behind this signet's (%d); run `signet migrate` to upgrade it", v, latest), nil)
	case v > latest:
		return signet.E(op, signet.Unavailable, aheadMessage(v, latest), nil)
	}
	return nil
}

func aheadMessage(v, latest int) string {
	return fmt.Sprintf("database schema version %d is ahead of this signet's (%d); "+
		"run a signet that knows version %d (`signet migrate` never downgrades)", v, latest, v)
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the embedded migrations that the database at url lacks,
// all in one transaction together with their rows in schema_migrations, so
// a failure leaves the schema as it was. It returns the schema version
// found and the version reached; a database already up to date is left
// alone. Migrations run under a transaction-scoped advisory lock, so that
// replicas or migrators started together apply each migration once.
// Unavailable if the database cannot be reached or its schema is newer
// than this code; Invalid for a malformed URL.
func Migrate(ctx context.Context, url string) (from, to int, err error) {
	conn, err := dial(ctx, "postgres.Migrate", url)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	return migrate(ctx, conn, LatestSchemaVersion())
}

// dial opens a single connection, for administrative work.
func dial(ctx context.Context, op, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, signet.E(op, signet.Invalid, "invalid PostgreSQL URL", err)
	}
	configure(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, storeError(op, withContext(ctx, err), "")
	}
	return conn, nil
}

// migrate brings the schema to version target, or leaves it where it is if
// it is there already or beyond.
func migrate(ctx context.Context, conn *pgx.Conn, target int) (from, to int, err error) {
	const op = "postgres.Migrate"
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockMigrate); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&from); err != nil {
			return err
		}
		if latest := LatestSchemaVersion(); from > latest {
			return signet.E(op, signet.Unavailable, aheadMessage(from, latest), nil)
		}
		to = from
		for _, m := range loadMigrations() {
			if m.Version <= from || m.Version > target {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return signet.E(op, signet.Internal, "cannot migrate the database schema",
					fmt.Errorf("migration %s: %w", m.Name, err))
			}
			if step := migrationSteps[m.Version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return signet.E(op, signet.Internal, "cannot migrate the database schema",
						fmt.Errorf("migration %s: %w", m.Name, withContext(ctx, err)))
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", m.Version); err != nil {
				return err
			}
			to = m.Version
		}
		return nil
	})
	if err != nil {
		return 0, 0, storeError(op, withContext(ctx, err), "")
	}
	return from, to, nil
}

// tablePrivileges lists every table of the schema and what the
// application role may do with it. The audit log may be read and appended
// to, never changed; its head only moves forward through UPDATE.
var tablePrivileges = []struct{ table, privileges string }{
	{"schema_migrations", "SELECT"},
	{"teams", "SELECT, INSERT, UPDATE, DELETE"},
	{"users", "SELECT, INSERT, UPDATE, DELETE"},
	{"members", "SELECT, INSERT, UPDATE, DELETE"},
	{"api_keys", "SELECT, INSERT, UPDATE, DELETE"},
	{"connectors", "SELECT, INSERT, UPDATE, DELETE"},
	{"uploads", "SELECT, INSERT, UPDATE, DELETE"},
	{"settings", "SELECT, INSERT, UPDATE, DELETE"},
	{"credentials", "SELECT, INSERT, UPDATE, DELETE"},
	{"audit_events", "SELECT, INSERT"},
	{"audit_head", "SELECT, UPDATE"},
	{"usage_events", "SELECT, INSERT"},
	{"revocations", "SELECT, INSERT"},
	{"change_seq", "SELECT, UPDATE"}, // moved by triggers of the tables above
}

var errNotOwner = errors.New("the connecting role does not own signet's tables")

// Harden sets up appRole as the role signet serves with, so that the
// application cannot rewrite its own audit log: connected as the owner of
// signet's tables (the role that ran Migrate, which must also be allowed
// to create roles), it creates appRole if it does not exist (LOGIN, no
// password: set one, or use another authentication method, as your
// pg_hba.conf requires), grants it CONNECT on the database, USAGE on the
// schema and the table privileges signet needs, and revokes every other
// table privilege. On audit_events appRole keeps SELECT and INSERT only, so
// UPDATE, DELETE and TRUNCATE fail. Harden is idempotent; run it again
// after each Migrate, since a migration's new tables start with no grants.
//
// Invalid if appRole is not a valid role name, is a superuser, or owns
// signet's tables (directly or through membership): privileges cannot
// restrict such a role. PermissionDenied unless the connecting role owns
// the tables (PostgreSQL would only warn and grant nothing) and, when
// appRole is missing, may create roles. Unavailable if the database cannot
// be reached or its schema is not at LatestSchemaVersion.
func Harden(ctx context.Context, url, appRole string) error {
	const op = "postgres.Harden"
	if appRole == "" || len(appRole) > 63 || !storable(appRole) {
		return signet.E(op, signet.Invalid, "the application role needs a name of 1 to 63 bytes of UTF-8", nil)
	}
	conn, err := dial(ctx, op, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	role := pgx.Identifier{appRole}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockMigrate); err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if latest := LatestSchemaVersion(); v != latest {
			return signet.E(op, signet.Unavailable, fmt.Sprintf(
				"database schema version %d is not this signet's (%d); run `signet migrate` first", v, latest), nil)
		}
		// GRANT and REVOKE by a role without the right to them only
		// warn: make sure this one has it.
		var owner bool
		err = tx.QueryRow(ctx, `SELECT pg_has_role(current_user, tableowner, 'USAGE') FROM pg_tables
			WHERE schemaname = current_schema() AND tablename = 'audit_events'`).Scan(&owner)
		if err != nil {
			return err
		}
		if !owner {
			return errNotOwner
		}
		var super bool
		err = tx.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", appRole).Scan(&super)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, "CREATE ROLE "+role+" LOGIN")
		}
		if err != nil {
			return err
		}
		if super {
			return signet.E(op, signet.Invalid, fmt.Sprintf(
				"role %q is a superuser, which no privilege restricts; serve as an ordinary role", appRole), nil)
		}
		var owns bool
		err = tx.QueryRow(ctx, `SELECT pg_has_role($1, tableowner, 'MEMBER') FROM pg_tables
			WHERE schemaname = current_schema() AND tablename = 'audit_events'`, appRole).Scan(&owns)
		if err != nil {
			return err
		}
		if owns {
			return signet.E(op, signet.Invalid, fmt.Sprintf(
				"role %q owns signet's tables, or is a member of their owner, so it could grant itself any privilege; "+
					"serve as another role", appRole), nil)
		}
		var dbName, schema string
		if err := tx.QueryRow(ctx, "SELECT current_database(), current_schema()").Scan(&dbName, &schema); err != nil {
			return err
		}
		stmts := []string{
			"GRANT CONNECT ON DATABASE " + pgx.Identifier{dbName}.Sanitize() + " TO " + role,
			"GRANT USAGE ON SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + role,
			// PostgreSQL grants PUBLIC no table privileges; make sure
			// nobody added any on the log.
			"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC",
		}
		for _, p := range tablePrivileges {
			stmts = append(stmts,
				"REVOKE ALL ON "+p.table+" FROM "+role,
				"GRANT "+p.privileges+" ON "+p.table+" TO "+role)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.Is(err, errNotOwner) || errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
			return signet.E(op, signet.PermissionDenied,
				"Harden must run as the owner of signet's tables, with the right to create roles", err)
		}
		return storeError(op, withContext(ctx, err), "")
	}
	return nil
}
