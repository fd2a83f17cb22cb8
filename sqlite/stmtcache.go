package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Reads prepare each statement once per connection instead of once per
// call: modernc's SQLite spends as long parsing a short query as running
// it, and a presign request runs half a dozen of them in its Views.
//
// database/sql reuses a statement prepared on the DB in any transaction on
// a connection it was prepared on (Tx.StmtContext), and prepares it there
// on first use otherwise. Preparing on the DB needs a connection of the
// pool, which a View holding one of the last ones could wait for forever;
// so the first preparation waits at most prepareWait for a connection and,
// failing that, the query runs unprepared this time.

// maxCachedStmts bounds the cache; queries built from filters vary.
const maxCachedStmts = 128

const prepareWait = time.Millisecond

type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns query prepared on pool, or nil.
func (c *stmtCache) get(pool *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= maxCachedStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), prepareWait)
	defer cancel()
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close()
		return prev
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

// readStmt returns query prepared for this read-only transaction, or nil.
func (t *tx) readStmt(query string) *sql.Stmt {
	if !t.readOnly {
		return nil
	}
	st := t.db.stmts.get(t.db.read, query)
	if st == nil {
		return nil
	}
	return t.tx.StmtContext(t.ctx, st)
}
