package http

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strconv"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// OptionTeamNetworks is the S3 connector option through which the team's
// allow-list reaches the driver: signet sets it from the team on every use
// of a role-signing connector (a stored value is ignored), so the STS
// session policy carries the networks and the driver cache, keyed by the
// connector, opens a new driver when they change.
const OptionTeamNetworks = "team_networks"

// withTeamNetworks returns c as the driver must see it: for an S3
// connector that signs through a role, with the team's networks in
// OptionTeamNetworks. Other connectors are returned as they are, minus any
// stored OptionTeamNetworks.
func withTeamNetworks(tx signet.Tx, c *signet.Connector) (*signet.Connector, error) {
	if c.Backend != signet.BackendS3 {
		return c, nil
	}
	_, stored := c.Options[OptionTeamNetworks]
	role := s3RoleSigned(c)
	if !stored && !role {
		return c, nil
	}
	cc := *c
	cc.Options = maps.Clone(c.Options)
	delete(cc.Options, OptionTeamNetworks)
	if role {
		t, err := tx.Team(c.Team)
		if err != nil {
			return nil, err
		}
		if len(t.AllowNetworks) > 0 {
			cc.Options[OptionTeamNetworks] = signet.FormatNetworks(t.AllowNetworks)
		}
	}
	return &cc, nil
}

// NetworkPolicyInfo is a store-side network policy for a team: the answer
// of GET (render) and PUT (apply) /v1/teams/{team}/policy.
type NetworkPolicyInfo struct {
	Team     string   `json:"team"`
	Backend  string   `json:"backend"`
	Bucket   string   `json:"bucket"`
	Prefix   string   `json:"prefix,omitempty"`
	Networks []string `json:"networks"`
	// Kind is "s3-bucket-policy" or "gcs-ip-filter".
	Kind string `json:"kind"`
	// ID is the Sid of signet's statement in an S3 bucket policy.
	ID string `json:"id,omitempty"`
	// Document is the rendered policy; after apply, the bucket's whole
	// policy now in force (absent when none is left).
	Document json.RawMessage `json:"document,omitempty"`
	Applied  bool            `json:"applied"`
	// Removed is set when apply removed signet's statement because the
	// team has no networks.
	Removed bool `json:"removed,omitempty"`
	// Kept counts other statements apply left in the bucket policy.
	Kept  int      `json:"kept_statements"`
	Notes []string `json:"notes,omitempty"`
}

// policyTarget loads what render and apply need, for instance admins only.
func (s *Server) policyTarget(ctx context.Context, r *http.Request, ev *signet.AuditEvent) (*signet.Team, *signet.Connector, driver.NetworkPolicer, error) {
	if err := requireAdmin(actorOf(r)); err != nil {
		return nil, nil, nil, err
	}
	var t *signet.Team
	var c *signet.Connector
	var cred *signet.Credential
	err := s.store.View(ctx, func(tx signet.Tx) (err error) {
		if t, err = tx.Team(ev.Team); err != nil {
			return err
		}
		c, cred, err = connector(tx, ev.Team)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	ev.Store, ev.Bucket, ev.ObjectKey = c.Backend, c.Bucket, c.Prefix
	ev.Reason = "networks " + signet.FormatNetworks(t.AllowNetworks)
	if len(t.AllowNetworks) == 0 {
		ev.Reason = "no networks"
	}
	be, err := s.openBackend(ctx, c, cred)
	if err != nil {
		return nil, nil, nil, err
	}
	np, ok := be.(driver.NetworkPolicer)
	if !ok {
		return nil, nil, nil, signet.Errorf(signet.Unimplemented,
			"the %s backend has no store-side network policy; URLs are checked at issuance (and bound to the network where the store can: local, azure); see docs/security.md, \"Networks\"", c.Backend)
	}
	return t, c, np, nil
}

func policyInfo(t *signet.Team, c *signet.Connector, p *driver.NetworkPolicy, applied bool) NetworkPolicyInfo {
	info := NetworkPolicyInfo{
		Team: t.Name, Backend: c.Backend, Bucket: c.Bucket, Prefix: c.Prefix,
		Networks: signet.NetworkStrings(t.AllowNetworks), Kind: p.Kind, ID: p.ID,
		Applied: applied, Removed: p.Removed, Kept: p.Kept, Notes: p.Notes,
	}
	if p.Document != "" {
		info.Document = json.RawMessage(p.Document)
	}
	return info
}

// handleRenderPolicy answers the store-side policy that restricts the
// team's objects to its networks. Instance admins only; audited.
func (s *Server) handleRenderPolicy(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionPolicyRender)
	ev.Team = r.PathValue("team")
	t, c, np, err := s.policyTarget(r.Context(), r, ev)
	var p *driver.NetworkPolicy
	if err == nil {
		p, err = np.RenderNetworkPolicy(t.Name, t.AllowNetworks)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.Target = p.Kind + " " + p.ID
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	writeJSON(w, http.StatusOK, policyInfo(t, c, p, false))
}

// handleApplyPolicy puts the policy in force at the store, merged with
// the bucket's other statements; for a team without networks it removes
// signet's statement. Instance admins only; audited.
func (s *Server) handleApplyPolicy(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionPolicyApply)
	ev.Team = r.PathValue("team")
	t, c, np, err := s.policyTarget(r.Context(), r, ev)
	var p *driver.NetworkPolicy
	if err == nil {
		p, err = np.ApplyNetworkPolicy(r.Context(), t.Name, t.AllowNetworks)
	}
	if err != nil {
		if signet.ErrorCode(err) == signet.Internal || signet.ErrorCode(err) == signet.Unavailable {
			s.logger.ErrorContext(r.Context(), "applying a network policy", "request_id", requestID(r), "err", err)
		}
		s.deny(w, r, ev, err)
		return
	}
	ev.Target = p.Kind + " " + p.ID
	if p.Removed {
		ev.Reason += "; statement removed"
	}
	ev.Reason += "; kept " + strconv.Itoa(p.Kept) + " other statements"
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	writeJSON(w, http.StatusOK, policyInfo(t, c, p, true))
}
