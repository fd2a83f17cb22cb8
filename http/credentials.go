package http

import (
	"encoding/json"

	"github.com/signetdev/signet"
)

// Store credentials arrive once, with the connector, and are kept only
// sealed. They are never returned, logged or audited; the audit record
// names their reference.

// sealContext binds a sealed credential to its row.
func sealContext(ref, team string) string { return ref + "\x00" + team }

// sealSecret seals secret for team under a new reference.
func (s *Server) sealSecret(team string, secret map[string]string) (*signet.Credential, error) {
	if s.sealer == nil {
		return nil, signet.Errorf(signet.Unimplemented, "this server has no secret key configured to store credentials")
	}
	b, err := json.Marshal(secret)
	if err != nil {
		return nil, signet.E("sealSecret", signet.Internal, "", err)
	}
	ref := team + "-" + signet.NewID(8)
	return &signet.Credential{Ref: ref, Team: team, Sealed: s.sealer.Seal(b, sealContext(ref, team))}, nil
}

// openSecret unseals a stored credential; nil yields nil.
func (s *Server) openSecret(c *signet.Credential) (map[string]string, error) {
	if c == nil {
		return nil, nil
	}
	if s.sealer == nil {
		return nil, signet.Errorf(signet.Unavailable, "this server has no secret key configured to open stored credentials")
	}
	b, err := s.sealer.Open(c.Sealed, sealContext(c.Ref, c.Team))
	if err != nil {
		return nil, err
	}
	var secret map[string]string
	if err := json.Unmarshal(b, &secret); err != nil {
		return nil, signet.E("openSecret", signet.Unavailable, "stored credential is malformed", err)
	}
	return secret, nil
}
