package sqlite

import "context"

// changeSeqQuery reads the change sequence (migration 0009).
const changeSeqQuery = "SELECT seq FROM change_seq WHERE id = 1"

// ChangeSeq returns the database's change sequence: a number that every
// committed change to teams, users, memberships, API keys (other than
// their last use), connectors, credentials and revocations has moved
// forward, in the change's own transaction (triggers of migration 0009).
// Processes sharing the file see each other's changes at their next read.
// It costs one prepared read of one row, so servers read it on every
// request to know whether what they cached is still current.
func (db *DB) ChangeSeq(ctx context.Context) (int64, error) {
	const op = "sqlite.ChangeSeq"
	var seq int64
	var err error
	if st := db.stmts.get(db.read, changeSeqQuery); st != nil {
		err = st.QueryRowContext(ctx).Scan(&seq)
	} else {
		err = db.read.QueryRowContext(ctx, changeSeqQuery).Scan(&seq)
	}
	if err != nil {
		return 0, storeError(op, err, "")
	}
	return seq, nil
}
