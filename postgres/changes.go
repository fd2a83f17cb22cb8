package postgres

import "context"

// ChangeSeq returns the database's change sequence: a number that every
// committed change to teams, users, memberships, API keys (other than
// their last use), connectors, credentials and revocations has moved
// forward, in the change's own transaction (triggers of migration 0009).
// Every replica sharing the database sees a change at its next read. It
// costs one round trip for one row (a statement pgx keeps prepared per
// connection), so servers read it on every request to know whether what
// they cached is still current.
func (db *DB) ChangeSeq(ctx context.Context) (int64, error) {
	const op = "postgres.ChangeSeq"
	ctx, cancel := db.withWriteTimeout(ctx)
	defer cancel()
	var seq int64
	if err := db.pool.QueryRow(ctx, "SELECT seq FROM change_seq").Scan(&seq); err != nil {
		return 0, storeError(op, withContext(ctx, err), "")
	}
	return seq, nil
}
