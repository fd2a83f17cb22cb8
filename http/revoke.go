package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
)

// RevokeRequest withdraws issued URLs. At least one selector is required;
// those given must all match a grant for it to be revoked. IssuedBefore
// defaults to now and may not be later.
type RevokeRequest struct {
	Team         string     `json:"team,omitempty"`
	User         string     `json:"user,omitempty"`
	Key          string     `json:"key,omitempty"`
	IssuedAfter  *time.Time `json:"issued_after,omitempty"`
	IssuedBefore *time.Time `json:"issued_before,omitempty"`
}

// Effects of a revocation on one team's store.
const (
	// RevokeEnforced: signet refuses the revoked URLs itself (local store).
	RevokeEnforced = "enforced"
	// RevokeSessionReplaced: the team's signing session was dropped, so
	// new URLs use a new one; the URLs already issued stop working only
	// once PolicyStatement is applied to the bucket (S3 with a role).
	RevokeSessionReplaced = "session_replaced"
	// RevokeNotEnforced: the store gives signet no way to withdraw an
	// issued URL; it works until it expires (see Limitations).
	RevokeNotEnforced = "not_enforced"
	// RevokePoliciesRotated: the stored access policies every SAS of the
	// container names were replaced, which withdraws all the URLs signed
	// for the container before, within the 30 s Azure takes to apply it
	// (Azure with option revocable).
	RevokePoliciesRotated = "policies_rotated"
)

// OptionAzureRevocable is the Azure connector option ("true") that signs
// every SAS against a stored access policy signet rotates on revocation.
const OptionAzureRevocable = "revocable"

// AzureRevokeDelegationKeys is the command that revokes an account's user
// delegation keys, the only way to withdraw a user delegation SAS early.
const AzureRevokeDelegationKeys = "az storage account revoke-delegation-keys --resource-group <resource-group> --name <account>"

// accessPolicyRotator is a driver that can withdraw the URLs it signed by
// replacing the stored access policies they name (azureblob.Backend).
type accessPolicyRotator interface {
	Revocable() bool
	RotateAccessPolicies(ctx context.Context) error
}

// sessionRevoker is a driver that can deny the URLs of its earlier role
// sessions in the bucket's policy (s3blob.Backend).
type sessionRevoker interface {
	ApplyRevocation(ctx context.Context, team string, before time.Time) (json.RawMessage, error)
}

// azureRevocable reports whether c signs against stored access policies.
func azureRevocable(c *signet.Connector) bool {
	v, err := strconv.ParseBool(c.Options[OptionAzureRevocable])
	return c.Backend == signet.BackendAzure && err == nil && v
}

// s3RoleSigned reports whether c is an S3 connector that signs through a
// role (option role_arn), whose earlier sessions a revocation can deny.
func s3RoleSigned(c *signet.Connector) bool {
	return c.Backend == signet.BackendS3 && c.Options["role_arn"] != ""
}

// StoreRevocation says what a revocation does to the URLs of one team's
// store.
type StoreRevocation struct {
	Team    string `json:"team"`
	Backend string `json:"backend"`
	Effect  string `json:"effect"`
	// Limitations lists, in words, what stays usable until it expires.
	Limitations []string `json:"limitations,omitempty"`
	// PolicyStatement, for S3 with a role, is the bucket policy statement
	// that denies requests signed by sessions issued before the
	// revocation; PolicyApplied says whether signet merged it into the
	// bucket's policy (if not, Limitations says why).
	PolicyStatement json.RawMessage `json:"policy_statement,omitempty"`
	PolicyApplied   bool            `json:"policy_applied,omitempty"`
}

// RevokeResponse is the stored revocation and its effect on each store
// it reaches.
type RevokeResponse struct {
	Revocation *signet.Revocation `json:"revocation"`
	Stores     []StoreRevocation  `json:"stores"`
	// Limitations gathers the stores' limitations, each prefixed with its
	// team, so a client can show them without walking Stores.
	Limitations []string `json:"limitations,omitempty"`
}

// validate checks the request's syntax and turns it into a revocation
// at now.
func (req *RevokeRequest) revocation(now time.Time) (*signet.Revocation, error) {
	r := &signet.Revocation{Team: req.Team, User: req.User, KeyID: req.Key, IssuedBefore: now, CreatedAt: now}
	if req.Team != "" {
		if err := validName("team", req.Team); err != nil {
			return nil, err
		}
	}
	if req.User != "" {
		if err := validName("user", req.User); err != nil {
			return nil, err
		}
	}
	if req.Key != "" && (len(req.Key) > 64 || !storage.IsToken(req.Key)) {
		return nil, signet.Errorf(signet.Invalid, "key must be an API key id")
	}
	if req.IssuedAfter != nil {
		if req.IssuedAfter.IsZero() {
			return nil, signet.Errorf(signet.Invalid, "issued_after must be a time")
		}
		r.IssuedAfter = req.IssuedAfter.UTC()
	}
	if req.IssuedBefore != nil {
		if req.IssuedBefore.IsZero() || req.IssuedBefore.After(now) {
			return nil, signet.Errorf(signet.Invalid, "issued_before must be a time no later than now (%s)", now.UTC().Format(time.RFC3339))
		}
		r.IssuedBefore = req.IssuedBefore.UTC()
	}
	if err := r.Validate(req.IssuedBefore != nil); err != nil {
		return nil, err
	}
	return r, nil
}

// mayRevoke checks that a may store r: instance admins may revoke
// anything, team admins only within their team (r.Team must name it).
func mayRevoke(tx signet.Tx, a signet.Actor, r *signet.Revocation) error {
	if a.Admin {
		return nil
	}
	if r.Team == "" {
		return signet.Errorf(signet.PermissionDenied, "only instance admins may revoke across teams; team admins must name their team")
	}
	_, _, err := teamRole(tx, a, r.Team, signet.PermManage)
	return err
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionRevoke)
	var req RevokeRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.Team = req.Team
	rev, err := req.revocation(s.now())
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	rev.ID = signet.NewID(10)
	rev.CreatedBy = a.User
	ev.Target = "revocation " + rev.ID + " of " + describeRevocation(rev)
	withdrawn := s.withdrawAtStores(r.Context(), a, rev)
	var conns []*signet.Connector
	if !s.do(w, r, ev, func(tx signet.Tx) error {
		if err := mayRevoke(tx, a, rev); err != nil {
			return err
		}
		if err := tx.CreateRevocation(rev); err != nil {
			return err
		}
		var err error
		conns, err = revokedConnectors(tx, rev)
		return err
	}) {
		return
	}
	if s.revoked != nil {
		s.revoked(rev)
	}
	writeJSON(w, http.StatusCreated, revokeResponse(rev, conns, withdrawn))
}

// withdrawAtStores withdraws, at the store, the URLs rev reaches where the
// store can: it replaces the stored access policies of the revocable Azure
// connectors, once per container, and merges into the bucket policy of S3
// role connectors a deny on the role's sessions issued before rev. It
// returns the outcome per team (a nil error: done). It runs before the
// revocation is stored, so a replica that sees the revocation and opens
// its driver again reads the new policies. It does nothing when a may not
// store rev; the transaction that stores it then refuses it. If storing
// fails after a rotation, the URLs were withdrawn anyway, which errs on
// the safe side.
func (s *Server) withdrawAtStores(ctx context.Context, a signet.Actor, rev *signet.Revocation) map[string]error {
	type target struct {
		c    *signet.Connector
		cred *signet.Credential
	}
	var targets []target
	err := s.store.View(ctx, func(tx signet.Tx) error {
		if err := mayRevoke(tx, a, rev); err != nil {
			return err
		}
		conns, err := revokedConnectors(tx, rev)
		if err != nil {
			return err
		}
		for _, c := range conns {
			if !azureRevocable(c) && !s3RoleSigned(c) {
				continue
			}
			// As presign opens it, so the rotation updates the cached
			// driver that signs.
			cc, cred, err := connector(tx, c.Team)
			if err != nil {
				return err
			}
			targets = append(targets, target{cc, cred})
		}
		return nil
	})
	if err != nil || len(targets) == 0 {
		return nil
	}
	out := map[string]error{}
	done := map[string]error{}
	for _, t := range targets {
		if t.c.Backend == signet.BackendS3 {
			out[t.c.Team] = s.denyOlderSessions(ctx, rev, t.c, t.cred)
			continue
		}
		where := t.c.Endpoint + "\x00" + t.c.Options["account"] + "\x00" + t.c.Bucket
		err, ok := done[where]
		if !ok {
			var be driver.Backend
			if be, err = s.openBackend(ctx, t.c, t.cred); err == nil {
				if rot, ok := be.(accessPolicyRotator); ok && rot.Revocable() {
					err = rot.RotateAccessPolicies(ctx)
				} else {
					err = signet.Errorf(signet.Unimplemented, "the azure driver of this build cannot rotate stored access policies")
				}
			}
			if err != nil {
				s.logger.Error("revocation: rotating Azure stored access policies", "revocation", rev.ID, "team", t.c.Team, "container", t.c.Bucket, "err", err)
			}
			done[where] = err
		}
		out[t.c.Team] = err
	}
	return out
}

// denyOlderSessions merges into the bucket policy of c, an S3 connector
// signing with a role, the statement that denies the role's sessions
// issued before rev.
func (s *Server) denyOlderSessions(ctx context.Context, rev *signet.Revocation, c *signet.Connector, cred *signet.Credential) error {
	be, err := s.openBackend(ctx, c, cred)
	if err == nil {
		if sr, ok := be.(sessionRevoker); ok {
			_, err = sr.ApplyRevocation(ctx, c.Team, rev.IssuedBefore)
		} else {
			err = signet.Errorf(signet.Unimplemented, "the s3 driver of this build cannot apply a revocation")
		}
	}
	if err != nil {
		s.logger.Error("revocation: denying older S3 role sessions", "revocation", rev.ID, "team", c.Team, "bucket", c.Bucket, "err", err)
	}
	return err
}

// revokedConnectors returns the connectors whose URLs rev can reach.
func revokedConnectors(tx signet.Tx, rev *signet.Revocation) ([]*signet.Connector, error) {
	if rev.Team != "" {
		c, err := tx.Connector(rev.Team)
		if signet.ErrorCode(err) == signet.NotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*signet.Connector{c}, nil
	}
	return tx.Connectors()
}

// describeRevocation names what rev selects, for the audit record.
func describeRevocation(rev *signet.Revocation) string {
	s := ""
	add := func(k, v string) {
		if v != "" {
			if s != "" {
				s += " "
			}
			s += k + "=" + v
		}
	}
	add("team", rev.Team)
	add("user", rev.User)
	add("key", rev.KeyID)
	if !rev.IssuedAfter.IsZero() {
		add("issued_after", rev.IssuedAfter.Format(time.RFC3339Nano))
	}
	add("issued_before", rev.IssuedBefore.Format(time.RFC3339Nano))
	return s
}

// revokeResponse states what rev does to each connector's URLs; withdrawn
// holds the outcome of withdrawing them at the store (withdrawAtStores).
func revokeResponse(rev *signet.Revocation, conns []*signet.Connector, withdrawn map[string]error) *RevokeResponse {
	out := &RevokeResponse{Revocation: rev, Stores: []StoreRevocation{}}
	for _, c := range conns {
		sr := StoreRevocation{Team: c.Team, Backend: c.Backend}
		switch c.Backend {
		case signet.BackendLocal:
			sr.Effect = RevokeEnforced
		case signet.BackendS3:
			s3Revocation(&sr, c, rev, withdrawn)
		case signet.BackendAzure:
			sr.Effect, sr.Limitations = azureRevocation(c, withdrawn)
		case signet.BackendGCS:
			sr.Effect = RevokeNotEnforced
			sr.Limitations = append(sr.Limitations, "GCS signed URLs stay valid until they expire; only deleting the signing service account key or HMAC key withdraws them early")
		default:
			sr.Effect = RevokeNotEnforced
			sr.Limitations = append(sr.Limitations, fmt.Sprintf("backend %q: signet cannot withdraw issued URLs", c.Backend))
		}
		for _, l := range sr.Limitations {
			out.Limitations = append(out.Limitations, "team "+c.Team+": "+l)
		}
		out.Stores = append(out.Stores, sr)
	}
	return out
}

// s3Revocation states in sr what rev did to an S3 connector's URLs.
func s3Revocation(sr *StoreRevocation, c *signet.Connector, rev *signet.Revocation, withdrawn map[string]error) {
	if !s3RoleSigned(c) {
		sr.Effect = RevokeNotEnforced
		sr.Limitations = []string{"S3 URLs signed with static access keys stay valid until they expire; " +
			"only rotating (deactivating) the access key withdraws them early"}
		return
	}
	sr.Effect = RevokeSessionReplaced
	sr.PolicyStatement = json.RawMessage(s3blob.RevokeSessionsStatement(c.Region, c.Bucket, c.Prefix, c.Team, c.Options["role_arn"], rev.IssuedBefore))
	err, ok := withdrawn[c.Team]
	if !ok {
		err = signet.Errorf(signet.Unavailable, "the bucket policy was not changed")
	}
	if err == nil {
		sr.PolicyApplied = true
	} else {
		sr.Limitations = append(sr.Limitations, "adding policy_statement to the bucket policy failed ("+errorText(err)+
			"): S3 URLs issued before the revocation stay valid until they expire; add it by hand, or revoke again to retry")
	}
	sr.Limitations = append(sr.Limitations,
		"the statement denies every URL signed by the team's earlier role sessions: it cannot single out a user, a key or a time window")
}

// azureRevocation states what a revocation did to an Azure connector's
// URLs.
func azureRevocation(c *signet.Connector, rotated map[string]error) (string, []string) {
	if c.CredentialsRef == "" {
		return RevokeNotEnforced, []string{
			"Azure user delegation SAS URLs stay valid until they expire: a user delegation SAS cannot name a stored access policy, " +
				"and user delegation keys can only be revoked account-wide through the management plane, which withdraws every user delegation SAS of the account: " +
				AzureRevokeDelegationKeys,
		}
	}
	if !azureRevocable(c) {
		return RevokeNotEnforced, []string{
			"Azure SAS URLs stay valid until they expire: the connector does not sign them against stored access policies; " +
				"set it with --revocable (option revocable=true) so revocations withdraw them, or rotate the account key, which withdraws every SAS of the account",
		}
	}
	err, ok := rotated[c.Team]
	if !ok {
		err = signet.Errorf(signet.Unavailable, "the stored access policies were not rotated")
	}
	if err != nil {
		return RevokeNotEnforced, []string{
			"rotating the stored access policies of container " + c.Bucket + " failed (" + errorText(err) + "): Azure SAS URLs issued before the revocation stay valid until they expire; revoke again to retry",
		}
	}
	return RevokePoliciesRotated, []string{
		"every URL signed for container " + c.Bucket + " before the revocation is withdrawn, whatever its user, API key or issue time, including those of other teams on the same container",
		"Azure applies a changed container ACL within 30 seconds: URLs issued before the revocation may work for up to 30 s more, and URLs issued within those 30 s may be refused until it has",
	}
}

func (s *Server) handleListRevocations(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	team := r.URL.Query().Get("team")
	var out []*signet.Revocation
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		var teams []string // nil: every team (instance admins)
		if !a.Admin {
			ms, err := tx.Memberships(a.User)
			if err != nil {
				return err
			}
			teams = []string{}
			for _, m := range ms {
				if m.Role == signet.RoleAdmin {
					teams = append(teams, m.Team)
				}
			}
			if len(teams) == 0 {
				return signet.Errorf(signet.PermissionDenied, "only instance admins and team admins may list revocations")
			}
		}
		all, err := tx.Revocations(time.Time{})
		if err != nil {
			return err
		}
		out = []*signet.Revocation{}
		for _, rev := range all {
			if team != "" && rev.Team != team || teams != nil && !slices.Contains(teams, rev.Team) {
				continue
			}
			out = append(out, rev)
		}
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// errorText names err for a revocation answer: its code and safe message.
func errorText(err error) string {
	msg := string(signet.ErrorCode(err))
	var se *signet.Error
	if errors.As(err, &se) && se.Msg != "" {
		msg += ": " + se.Msg
	}
	return msg
}
