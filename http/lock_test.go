package http_test

import (
	"context"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // a second, independent connection to lock the database
)

// lockDatabase holds an exclusive write lock on the SQLite file at path, as
// a stuck or foreign writer would, until the returned func is called.
func lockDatabase(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
}
