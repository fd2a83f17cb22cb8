package testpeer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgres is the server PostgresURL uses when SIGNET_TEST_POSTGRES
// is not set: the one our machines run, with trust authentication.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL returns the URL of a new, empty database created for this
// test on the PostgreSQL server named by $SIGNET_TEST_POSTGRES (a
// postgres:// URL of a role allowed to create databases; DefaultPostgres
// when unset). The database is named signet_test_<random> and is dropped,
// connections and all, when the test ends.
//
// When the server cannot be reached the test is skipped with a message
// saying how to point the tests at one, or fails if SIGNET_TEST_PEERS is
// "require" (as in CI), so that CI cannot pass by skipping.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("SIGNET_TEST_POSTGRES")
	if admin == "" {
		admin = DefaultPostgres
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatal("SIGNET_TEST_POSTGRES must be a postgres://user@host:port/db URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		msg := "PostgreSQL not reachable at " + u.Redacted() + " (" + err.Error() + "); " +
			"set SIGNET_TEST_POSTGRES=postgres://user@host:port/db to point the tests at one"
		// Self-contained on purpose: this file does not depend on the
		// package's other peers.
		if os.Getenv("SIGNET_TEST_PEERS") == "require" {
			tb.Fatal(msg + " (SIGNET_TEST_PEERS=require, so an unreachable server fails the test)")
		}
		tb.Skip(msg)
	}
	defer conn.Close(context.Background())

	b := make([]byte, 8)
	rand.Read(b)
	name := "signet_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("testpeer: creating database %s on %s: %v", name, u.Redacted(), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("testpeer: dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("testpeer: dropping database %s: %v", name, err)
		}
	})
	db := *u
	db.Path = "/" + name
	db.RawPath = ""
	return db.String()
}
