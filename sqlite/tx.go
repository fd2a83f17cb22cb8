package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
)

// tx implements signet.Tx on a database/sql transaction. Like sql.Tx it
// holds the context of the Update or View call it belongs to, and it does
// not outlive that call.
type tx struct {
	ctx      context.Context
	db       *DB
	tx       *sql.Tx
	readOnly bool
	audit    *sql.Stmt // the audit insert, prepared on first use

	// Set inside Update's group commit (commit.go).
	batch     *batch
	req       *sqlstore.Request
	savepoint bool                 // the function's savepoint is open
	pending   []*signet.AuditEvent // appended, not yet inserted
	failed    error                // inserting pending failed
}

var _ signet.Tx = (*tx)(nil)

// writable returns an Internal error in a read-only transaction, so that a
// write attempted inside View is a clear programming error rather than an
// "unavailable" read-only database.
func (t *tx) writable(op string) error {
	if t.readOnly {
		return signet.E(op, signet.Internal, "internal error", errors.New("write in a read-only transaction"))
	}
	return nil
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	t.begin()
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	t.begin()
	if st := t.readStmt(query); st != nil {
		return st.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	t.begin()
	if st := t.readStmt(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// fail maps err. conflict is the user-safe message for a uniqueness
// violation and notFound the one for a missing row or reference; empty
// strings keep the defaults. Once the transaction's context is done every
// failure is Unavailable, whatever form it took (database/sql reports
// sql.ErrTxDone after rolling the transaction back).
func (t *tx) fail(op string, err error, conflict, notFound string) error {
	var se *signet.Error
	if errors.As(err, &se) {
		return err
	}
	if cerr := t.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	code, msg := classify(err)
	switch {
	case code == signet.Conflict && conflict != "":
		msg = conflict
	case code == signet.NotFound && notFound != "":
		msg = notFound
	}
	return signet.E(op, code, msg, err)
}

func invalid(op, format string, args ...any) error {
	return signet.E(op, signet.Invalid, fmt.Sprintf(format, args...), nil)
}

// stamp returns t at the stored precision, or the current time if t is zero.
func (t *tx) stamp(v time.Time) time.Time {
	if v.IsZero() {
		return t.db.now()
	}
	return normalize(v)
}

func normalize(v time.Time) time.Time { return v.UTC().Truncate(time.Microsecond) }

func micros(v time.Time) int64 { return v.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// optMicros encodes an optional instant: nil or zero is NULL.
func optMicros(v *time.Time) (sql.NullInt64, *time.Time) {
	if v == nil || v.IsZero() {
		return sql.NullInt64{}, nil
	}
	n := normalize(*v)
	return sql.NullInt64{Int64: micros(n), Valid: true}, &n
}

func fromOptMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

type scanner interface{ Scan(dest ...any) error }

func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t *tx) teamID(op, name string) (int64, error) {
	var id int64
	err := t.queryRow("SELECT id FROM teams WHERE name = ?", name).Scan(&id)
	if err != nil {
		return 0, t.fail(op, err, "", fmt.Sprintf("team %q not found", name))
	}
	return id, nil
}

func (t *tx) userID(op, name string) (int64, error) {
	var id int64
	err := t.queryRow("SELECT id FROM users WHERE name = ?", name).Scan(&id)
	if err != nil {
		return 0, t.fail(op, err, "", fmt.Sprintf("user %q not found", name))
	}
	return id, nil
}

// Teams

const teamColumns = "id, name, download_max_expiry, upload_max_expiry, allow_networks, created_at"

func scanTeam(s scanner) (*signet.Team, error) {
	var tm signet.Team
	var dl, ul, created int64
	var nets string
	if err := s.Scan(&tm.ID, &tm.Name, &dl, &ul, &nets, &created); err != nil {
		return nil, err
	}
	var err error
	if tm.AllowNetworks, err = signet.ParseNetworks(nets); err != nil {
		return nil, err
	}
	tm.DownloadMaxExpiry = time.Duration(dl) * time.Second
	tm.UploadMaxExpiry = time.Duration(ul) * time.Second
	tm.CreatedAt = fromMicros(created)
	return &tm, nil
}

func validCaps(op string, tm *signet.Team) error {
	if tm.DownloadMaxExpiry < 0 || tm.UploadMaxExpiry < 0 {
		return invalid(op, "expiry limits must not be negative")
	}
	return nil
}

// CreateTeam inserts tm, setting its ID, and its CreatedAt when zero. The
// expiry caps are stored in whole seconds. Conflict if the name is taken.
func (t *tx) CreateTeam(tm *signet.Team) error {
	const op = "sqlite.CreateTeam"
	if err := t.writable(op); err != nil {
		return err
	}
	if tm == nil || tm.Name == "" {
		return invalid(op, "team name is required")
	}
	if err := validCaps(op, tm); err != nil {
		return err
	}
	created := t.stamp(tm.CreatedAt)
	res, err := t.exec(`INSERT INTO teams (name, download_max_expiry, upload_max_expiry, allow_networks, created_at)
		VALUES (?, ?, ?, ?, ?)`, tm.Name, seconds(tm.DownloadMaxExpiry), seconds(tm.UploadMaxExpiry),
		signet.FormatNetworks(tm.AllowNetworks), micros(created))
	if err != nil {
		return t.fail(op, err, fmt.Sprintf("team %q already exists", tm.Name), "")
	}
	id, err := res.LastInsertId()
	if err != nil {
		return t.fail(op, err, "", "")
	}
	tm.ID, tm.CreatedAt = id, created
	tm.DownloadMaxExpiry = tm.DownloadMaxExpiry.Truncate(time.Second)
	tm.UploadMaxExpiry = tm.UploadMaxExpiry.Truncate(time.Second)
	return nil
}

// Team returns the team by name. NotFound.
func (t *tx) Team(name string) (*signet.Team, error) {
	const op = "sqlite.Team"
	tm, err := scanTeam(t.queryRow("SELECT "+teamColumns+" FROM teams WHERE name = ?", name))
	if err != nil {
		return nil, t.fail(op, err, "", fmt.Sprintf("team %q not found", name))
	}
	return tm, nil
}

// Teams lists teams ordered by name.
func (t *tx) Teams() ([]*signet.Team, error) {
	rows, err := t.query("SELECT " + teamColumns + " FROM teams ORDER BY name")
	ts, err := collect(rows, err, scanTeam)
	if err != nil {
		return nil, t.fail("sqlite.Teams", err, "", "")
	}
	return ts, nil
}

// UpdateTeam stores tm's expiry caps and allowed networks, found by name, and sets tm's ID and
// CreatedAt from the stored team. NotFound.
func (t *tx) UpdateTeam(tm *signet.Team) error {
	const op = "sqlite.UpdateTeam"
	if err := t.writable(op); err != nil {
		return err
	}
	if tm == nil {
		return invalid(op, "team is required")
	}
	if err := validCaps(op, tm); err != nil {
		return err
	}
	var created int64
	err := t.queryRow(`UPDATE teams SET download_max_expiry = ?, upload_max_expiry = ?, allow_networks = ?
		WHERE name = ? RETURNING id, created_at`,
		seconds(tm.DownloadMaxExpiry), seconds(tm.UploadMaxExpiry), signet.FormatNetworks(tm.AllowNetworks),
		tm.Name).Scan(&tm.ID, &created)
	if err != nil {
		return t.fail(op, err, "", fmt.Sprintf("team %q not found", tm.Name))
	}
	tm.CreatedAt = fromMicros(created)
	tm.DownloadMaxExpiry = tm.DownloadMaxExpiry.Truncate(time.Second)
	tm.UploadMaxExpiry = tm.UploadMaxExpiry.Truncate(time.Second)
	return nil
}

// Users

const userColumns = "id, name, service, admin, created_at"

func scanUser(s scanner) (*signet.User, error) {
	var u signet.User
	var created int64
	if err := s.Scan(&u.ID, &u.Name, &u.Service, &u.Admin, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// CreateUser inserts u, setting its ID, and its CreatedAt when zero.
// Conflict if the name is taken.
func (t *tx) CreateUser(u *signet.User) error {
	const op = "sqlite.CreateUser"
	if err := t.writable(op); err != nil {
		return err
	}
	if u == nil || u.Name == "" {
		return invalid(op, "user name is required")
	}
	created := t.stamp(u.CreatedAt)
	res, err := t.exec("INSERT INTO users (name, service, admin, created_at) VALUES (?, ?, ?, ?)",
		u.Name, u.Service, u.Admin, micros(created))
	if err != nil {
		return t.fail(op, err, fmt.Sprintf("user %q already exists", u.Name), "")
	}
	id, err := res.LastInsertId()
	if err != nil {
		return t.fail(op, err, "", "")
	}
	u.ID, u.CreatedAt = id, created
	return nil
}

// User returns the user by name. NotFound.
func (t *tx) User(name string) (*signet.User, error) {
	u, err := scanUser(t.queryRow("SELECT "+userColumns+" FROM users WHERE name = ?", name))
	if err != nil {
		return nil, t.fail("sqlite.User", err, "", fmt.Sprintf("user %q not found", name))
	}
	return u, nil
}

// Users lists users ordered by name.
func (t *tx) Users() ([]*signet.User, error) {
	rows, err := t.query("SELECT " + userColumns + " FROM users ORDER BY name")
	us, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, t.fail("sqlite.Users", err, "", "")
	}
	return us, nil
}

// Members

const memberQuery = `SELECT t.name, u.name, m.role, m.created_at
	FROM members m JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id`

func scanMember(s scanner) (*signet.Member, error) {
	var m signet.Member
	var created int64
	if err := s.Scan(&m.Team, &m.User, &m.Role, &created); err != nil {
		return nil, err
	}
	m.CreatedAt = fromMicros(created)
	return &m, nil
}

// SetMember adds the user to the team, or changes the role of an existing
// member, and sets m.CreatedAt to when the membership began. NotFound if
// the team or user does not exist; Invalid for an unknown role.
func (t *tx) SetMember(m *signet.Member) error {
	const op = "sqlite.SetMember"
	if err := t.writable(op); err != nil {
		return err
	}
	if m == nil {
		return invalid(op, "member is required")
	}
	if !m.Role.Valid() {
		return invalid(op, "invalid role %q", m.Role)
	}
	teamID, err := t.teamID(op, m.Team)
	if err != nil {
		return err
	}
	userID, err := t.userID(op, m.User)
	if err != nil {
		return err
	}
	var created int64
	err = t.queryRow(`INSERT INTO members (team_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role
		RETURNING created_at`, teamID, userID, string(m.Role), micros(t.stamp(m.CreatedAt))).Scan(&created)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	m.CreatedAt = fromMicros(created)
	return nil
}

// RemoveMember removes a membership. NotFound if the team or user does not
// exist or the user is not a member.
func (t *tx) RemoveMember(team, user string) error {
	const op = "sqlite.RemoveMember"
	if err := t.writable(op); err != nil {
		return err
	}
	teamID, err := t.teamID(op, team)
	if err != nil {
		return err
	}
	userID, err := t.userID(op, user)
	if err != nil {
		return err
	}
	res, err := t.exec("DELETE FROM members WHERE team_id = ? AND user_id = ?", teamID, userID)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.fail(op, err, "", "")
	} else if n == 0 {
		return signet.E(op, signet.NotFound, fmt.Sprintf("user %q is not a member of team %q", user, team), nil)
	}
	return nil
}

// Members lists the team's members ordered by user name. NotFound if the
// team does not exist.
func (t *tx) Members(team string) ([]*signet.Member, error) {
	const op = "sqlite.Members"
	teamID, err := t.teamID(op, team)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(memberQuery+" WHERE m.team_id = ? ORDER BY u.name", teamID)
	ms, err := collect(rows, err, scanMember)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return ms, nil
}

// Memberships lists the user's memberships ordered by team name. NotFound
// if the user does not exist.
func (t *tx) Memberships(user string) ([]*signet.Member, error) {
	const op = "sqlite.Memberships"
	userID, err := t.userID(op, user)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(memberQuery+" WHERE m.user_id = ? ORDER BY t.name", userID)
	ms, err := collect(rows, err, scanMember)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return ms, nil
}

// API keys

const keyQuery = `SELECT k.id, u.name, k.hash, k.created_at, k.last_used_at, k.revoked_at
	FROM api_keys k JOIN users u ON u.id = k.user_id`

func scanKey(s scanner) (*signet.APIKey, error) {
	var k signet.APIKey
	var created int64
	var used, revoked sql.NullInt64
	if err := s.Scan(&k.ID, &k.User, &k.Hash, &created, &used, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	k.LastUsedAt = fromOptMicros(used)
	k.RevokedAt = fromOptMicros(revoked)
	return &k, nil
}

// CreateAPIKey inserts k, setting its CreatedAt when zero. NotFound if the
// user does not exist; Conflict if the id is taken.
func (t *tx) CreateAPIKey(k *signet.APIKey) error {
	const op = "sqlite.CreateAPIKey"
	if err := t.writable(op); err != nil {
		return err
	}
	if k == nil || k.ID == "" {
		return invalid(op, "API key id is required")
	}
	if len(k.Hash) == 0 {
		return invalid(op, "API key hash is required")
	}
	userID, err := t.userID(op, k.User)
	if err != nil {
		return err
	}
	created := t.stamp(k.CreatedAt)
	used, usedAt := optMicros(k.LastUsedAt)
	revoked, revokedAt := optMicros(k.RevokedAt)
	_, err = t.exec(`INSERT INTO api_keys (id, user_id, hash, created_at, last_used_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?)`, k.ID, userID, k.Hash, micros(created), used, revoked)
	if err != nil {
		return t.fail(op, err, fmt.Sprintf("API key %q already exists", k.ID), "")
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = created, usedAt, revokedAt
	return nil
}

// APIKey returns the key by id, revoked or not. NotFound.
func (t *tx) APIKey(id string) (*signet.APIKey, error) {
	k, err := scanKey(t.queryRow(keyQuery+" WHERE k.id = ?", id))
	if err != nil {
		return nil, t.fail("sqlite.APIKey", err, "", fmt.Sprintf("API key %q not found", id))
	}
	return k, nil
}

// APIKeys lists keys, of one user when user is not empty, ordered by
// creation time, then id. NotFound if the user does not exist.
func (t *tx) APIKeys(user string) ([]*signet.APIKey, error) {
	const op = "sqlite.APIKeys"
	var rows *sql.Rows
	var err error
	if user == "" {
		rows, err = t.query(keyQuery + " ORDER BY k.created_at, k.id")
	} else {
		var userID int64
		if userID, err = t.userID(op, user); err != nil {
			return nil, err
		}
		rows, err = t.query(keyQuery+" WHERE k.user_id = ? ORDER BY k.created_at, k.id", userID)
	}
	ks, err := collect(rows, err, scanKey)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return ks, nil
}

// RevokeAPIKey marks a key revoked at at (now when zero). NotFound;
// Conflict if already revoked.
func (t *tx) RevokeAPIKey(id string, at time.Time) error {
	const op = "sqlite.RevokeAPIKey"
	if err := t.writable(op); err != nil {
		return err
	}
	res, err := t.exec("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
		micros(t.stamp(at)), id)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.fail(op, err, "", "")
	}
	if n == 1 {
		return nil
	}
	var one int
	if err := t.queryRow("SELECT 1 FROM api_keys WHERE id = ?", id).Scan(&one); err != nil {
		return t.fail(op, err, "", fmt.Sprintf("API key %q not found", id))
	}
	return signet.E(op, signet.Conflict, fmt.Sprintf("API key %q is already revoked", id), nil)
}

// TouchAPIKey records that the key was used at at (now when zero). An
// earlier time than the one recorded is ignored. NotFound.
func (t *tx) TouchAPIKey(id string, at time.Time) error {
	const op = "sqlite.TouchAPIKey"
	if err := t.writable(op); err != nil {
		return err
	}
	us := micros(t.stamp(at))
	res, err := t.exec(`UPDATE api_keys SET last_used_at =
		CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END
		WHERE id = ?`, us, us, id)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.fail(op, err, "", "")
	} else if n == 0 {
		return signet.E(op, signet.NotFound, fmt.Sprintf("API key %q not found", id), nil)
	}
	return nil
}

// Connectors

const connectorQuery = `SELECT t.name, c.backend, c.bucket, c.prefix, c.region, c.endpoint,
	c.credentials_ref, c.options, c.updated_at
	FROM connectors c JOIN teams t ON t.id = c.team_id`

func scanConnector(s scanner) (*signet.Connector, error) {
	var c signet.Connector
	var opts string
	var updated int64
	if err := s.Scan(&c.Team, &c.Backend, &c.Bucket, &c.Prefix, &c.Region, &c.Endpoint,
		&c.CredentialsRef, &opts, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(opts), &c.Options); err != nil {
		return nil, fmt.Errorf("connector options of team %q: %w", c.Team, err)
	}
	if len(c.Options) == 0 {
		c.Options = nil
	}
	c.UpdatedAt = fromMicros(updated)
	return &c, nil
}

// SetConnector creates or replaces the team's connector, setting UpdatedAt
// when zero. NotFound if the team does not exist; Conflict if its location
// overlaps another team's connector (see signet.Connector.Overlaps).
func (t *tx) SetConnector(c *signet.Connector) error {
	const op = "sqlite.SetConnector"
	if err := t.writable(op); err != nil {
		return err
	}
	if c == nil || c.Backend == "" || c.Bucket == "" {
		return invalid(op, "connector backend and bucket are required")
	}
	teamID, err := t.teamID(op, c.Team)
	if err != nil {
		return err
	}
	rows, err := t.query(connectorQuery+" WHERE c.team_id <> ?", teamID)
	others, err := collect(rows, err, scanConnector)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	for _, o := range others {
		if c.Overlaps(o) {
			// The other team is not named: its existence and layout are
			// not the caller's business.
			return signet.E(op, signet.Conflict, fmt.Sprintf(
				"bucket %q prefix %q overlaps another team's storage", c.Bucket, c.Prefix), nil)
		}
	}
	opts := []byte("{}")
	if len(c.Options) > 0 {
		if opts, err = json.Marshal(c.Options); err != nil {
			return t.fail(op, err, "", "")
		}
	}
	updated := t.stamp(c.UpdatedAt)
	_, err = t.exec(`INSERT INTO connectors (team_id, backend, bucket, prefix, region, endpoint,
			credentials_ref, options, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (team_id) DO UPDATE SET backend = excluded.backend, bucket = excluded.bucket,
			prefix = excluded.prefix, region = excluded.region, endpoint = excluded.endpoint,
			credentials_ref = excluded.credentials_ref, options = excluded.options,
			updated_at = excluded.updated_at`,
		teamID, c.Backend, c.Bucket, c.Prefix, c.Region, c.Endpoint, c.CredentialsRef, string(opts), micros(updated))
	if err != nil {
		return t.fail(op, err, "", "")
	}
	c.UpdatedAt = updated
	return nil
}

// Connector returns the team's connector. NotFound if the team does not
// exist or has no connector.
func (t *tx) Connector(team string) (*signet.Connector, error) {
	const op = "sqlite.Connector"
	c, err := scanConnector(t.queryRow(connectorQuery+" WHERE t.name = ?", team))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := t.teamID(op, team); err != nil {
			return nil, err
		}
		return nil, signet.E(op, signet.NotFound, fmt.Sprintf("team %q has no storage connector", team), err)
	}
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return c, nil
}

// Connectors lists all connectors ordered by team.
func (t *tx) Connectors() ([]*signet.Connector, error) {
	rows, err := t.query(connectorQuery + " ORDER BY t.name")
	cs, err := collect(rows, err, scanConnector)
	if err != nil {
		return nil, t.fail("sqlite.Connectors", err, "", "")
	}
	return cs, nil
}

// Uploads

const uploadQuery = `SELECT u.id, t.name, u.object_key, u.size, u.part_size, u.part_count,
	u.content_type, u.sha256, u.backend, u.bucket, u.store_key, u.store_upload_id, u.state,
	u.created_by, u.created_at, u.expires_at
	FROM uploads u JOIN teams t ON t.id = u.team_id`

func scanUpload(s scanner) (*signet.Upload, error) {
	var u signet.Upload
	var created, expires int64
	if err := s.Scan(&u.ID, &u.Team, &u.Key, &u.Size, &u.PartSize, &u.PartCount,
		&u.ContentType, &u.SHA256, &u.Backend, &u.Bucket, &u.StoreKey, &u.StoreUploadID, &u.State,
		&u.CreatedBy, &created, &expires); err != nil {
		return nil, err
	}
	u.CreatedAt, u.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &u, nil
}

func validUploadState(s string) bool {
	return s == signet.UploadActive || s == signet.UploadCompleted || s == signet.UploadAborted
}

// CreateUpload inserts u, setting CreatedAt when zero and State to active
// when empty. NotFound if the team does not exist; Conflict if the id is
// taken, by any team.
func (t *tx) CreateUpload(u *signet.Upload) error {
	const op = "sqlite.CreateUpload"
	if err := t.writable(op); err != nil {
		return err
	}
	if u == nil || u.ID == "" {
		return invalid(op, "upload id is required")
	}
	state := u.State
	if state == "" {
		state = signet.UploadActive
	}
	if !validUploadState(state) {
		return invalid(op, "invalid upload state %q", state)
	}
	teamID, err := t.teamID(op, u.Team)
	if err != nil {
		return err
	}
	created, expires := t.stamp(u.CreatedAt), normalize(u.ExpiresAt)
	_, err = t.exec(`INSERT INTO uploads (id, team_id, object_key, size, part_size, part_count,
			content_type, sha256, backend, bucket, store_key, store_upload_id, state,
			created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, teamID, u.Key, u.Size, u.PartSize, u.PartCount,
		u.ContentType, u.SHA256, u.Backend, u.Bucket, u.StoreKey, u.StoreUploadID, state,
		u.CreatedBy, micros(created), micros(expires))
	if err != nil {
		return t.fail(op, err, fmt.Sprintf("upload %q already exists", u.ID), "")
	}
	u.State, u.CreatedAt, u.ExpiresAt = state, created, expires
	return nil
}

// Upload returns the team's upload by id. NotFound, also when the upload
// belongs to another team.
func (t *tx) Upload(team, id string) (*signet.Upload, error) {
	u, err := scanUpload(t.queryRow(uploadQuery+" WHERE u.id = ? AND t.name = ?", id, team))
	if err != nil {
		return nil, t.fail("sqlite.Upload", err, "", fmt.Sprintf("upload %q not found", id))
	}
	return u, nil
}

// ExpiredUploads returns up to limit active uploads whose deadline is at or
// before now, earliest deadline first.
func (t *tx) ExpiredUploads(now time.Time, limit int) ([]*signet.Upload, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := t.query(uploadQuery+" WHERE u.state = ? AND u.expires_at <= ? ORDER BY u.expires_at, u.id LIMIT ?",
		signet.UploadActive, micros(now), limit)
	us, err := collect(rows, err, scanUpload)
	if err != nil {
		return nil, t.fail("sqlite.ExpiredUploads", err, "", "")
	}
	return us, nil
}

// SetUploadState changes the state of the team's upload. NotFound, also
// when the upload belongs to another team; Invalid for an unknown state.
func (t *tx) SetUploadState(team, id, state string) error {
	const op = "sqlite.SetUploadState"
	if err := t.writable(op); err != nil {
		return err
	}
	if !validUploadState(state) {
		return invalid(op, "invalid upload state %q", state)
	}
	res, err := t.exec(`UPDATE uploads SET state = ?
		WHERE id = ? AND team_id = (SELECT id FROM teams WHERE name = ?) AND state = ?`,
		state, id, team, signet.UploadActive)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.fail(op, err, "", "")
	} else if n == 0 {
		if _, err := t.Upload(team, id); err != nil {
			return err
		}
		return signet.E(op, signet.Conflict, fmt.Sprintf("upload %q has already ended", id), nil)
	}
	return nil
}

// Settings

// Setting returns an instance setting. NotFound.
func (t *tx) Setting(name string) (string, error) {
	var v string
	if err := t.queryRow("SELECT value FROM settings WHERE name = ?", name).Scan(&v); err != nil {
		return "", t.fail("sqlite.Setting", err, "", fmt.Sprintf("setting %q not found", name))
	}
	return v, nil
}

// SetSetting stores an instance setting.
func (t *tx) SetSetting(name, value string) error {
	_, err := t.putSetting("sqlite.SetSetting", name, value, "DO UPDATE SET value = excluded.value")
	return err
}

// AddSetting stores an instance setting unless one of that name exists:
// Conflict if it does. (SQLite has one writer, so no other transaction
// can add it meanwhile.)
func (t *tx) AddSetting(name, value string) error {
	const op = "sqlite.AddSetting"
	added, err := t.putSetting(op, name, value, "DO NOTHING")
	if err == nil && !added {
		err = signet.E(op, signet.Conflict, fmt.Sprintf("setting %q already exists", name), nil)
	}
	return err
}

// putSetting inserts a setting, doing onConflict when it exists, and
// reports whether a row was written.
func (t *tx) putSetting(op, name, value, onConflict string) (bool, error) {
	if err := t.writable(op); err != nil {
		return false, err
	}
	if name == "" {
		return false, invalid(op, "setting name is required")
	}
	res, err := t.exec(`INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) `+onConflict, name, value)
	if err != nil {
		return false, t.fail(op, err, "", "")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.fail(op, err, "", "")
	}
	return n > 0, nil
}

// PutCredential stores c, replacing a credential with the same Ref.
// NotFound if the team does not exist.
func (t *tx) PutCredential(c *signet.Credential) error {
	const op = "sqlite.PutCredential"
	if err := t.writable(op); err != nil {
		return err
	}
	if c == nil || c.Ref == "" || len(c.Sealed) == 0 {
		return invalid(op, "credential reference and sealed value are required")
	}
	teamID, err := t.teamID(op, c.Team)
	if err != nil {
		return err
	}
	created := t.stamp(c.CreatedAt)
	_, err = t.exec(`INSERT INTO credentials (ref, team_id, sealed, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (ref) DO UPDATE SET team_id = excluded.team_id, sealed = excluded.sealed,
			created_at = excluded.created_at`, c.Ref, teamID, c.Sealed, micros(created))
	if err != nil {
		return t.fail(op, err, "", "")
	}
	c.CreatedAt = created
	return nil
}

// Credential returns the credential by reference. NotFound.
func (t *tx) Credential(ref string) (*signet.Credential, error) {
	var c signet.Credential
	var created int64
	err := t.queryRow(`SELECT c.ref, t.name, c.sealed, c.created_at FROM credentials c
		JOIN teams t ON t.id = c.team_id WHERE c.ref = ?`, ref).Scan(&c.Ref, &c.Team, &c.Sealed, &created)
	if err != nil {
		return nil, t.fail("sqlite.Credential", err, "", fmt.Sprintf("credential %q not found", ref))
	}
	c.CreatedAt = fromMicros(created)
	return &c, nil
}
