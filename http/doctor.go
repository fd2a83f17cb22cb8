package http

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// DoctorTimeout bounds the checks of one connector.
const DoctorTimeout = 30 * time.Second

// DoctorReport is the answer of GET /v1/teams/{team}/doctor.
type DoctorReport struct {
	Team    string         `json:"team"`
	Backend string         `json:"backend"`
	Bucket  string         `json:"bucket"`
	Prefix  string         `json:"prefix,omitempty"`
	OK      bool           `json:"ok"` // no check failed
	Checks  []driver.Check `json:"checks"`
}

// handleDoctor checks the team's connector against its store: team
// admins and instance admins only, with the store's read-only calls, each
// run audited. Query parameter origin (repeatable) names the browser
// origins CORS must allow.
func (s *Server) handleDoctor(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionConnectorCheck)
	ev.Team = r.PathValue("team")
	origins, err := doctorOrigins(r.URL.Query()["origin"])
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	var (
		team *signet.Team
		conn *signet.Connector
		cred *signet.Credential
	)
	err = s.store.View(r.Context(), func(tx signet.Tx) error {
		var err error
		if team, _, err = teamRole(tx, actorOf(r), ev.Team, signet.PermManage); err != nil {
			return err
		}
		conn, cred, err = connector(tx, ev.Team)
		return err
	})
	var doc driver.Doctor
	if err == nil {
		ev.Store, ev.Bucket, ev.ObjectKey = conn.Backend, conn.Bucket, conn.Prefix
		var be driver.Backend
		if be, err = s.openBackend(r.Context(), conn, cred); err == nil {
			var ok bool
			if doc, ok = be.(driver.Doctor); !ok {
				err = signet.Errorf(signet.Unimplemented, "signet doctor cannot check %s connectors yet; see docs/%s.md for the settings to check by hand", conn.Backend, conn.Backend)
			}
		}
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DoctorTimeout)
	defer cancel()
	checks, err := doc.Diagnose(ctx, &driver.DiagnoseOptions{Origins: origins, Networks: team.AllowNetworks, Team: team.Name})
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	rep := &DoctorReport{Team: team.Name, Backend: conn.Backend, Bucket: conn.Bucket, Prefix: conn.Prefix, OK: true, Checks: checks}
	var failed []string
	for _, c := range checks {
		if c.Status == driver.CheckFail {
			rep.OK = false
			failed = append(failed, c.Name)
		}
	}
	if !rep.OK {
		ev.Reason = "failed checks: " + strings.Join(failed, ", ")
	}
	if s.do(w, r, ev, func(signet.Tx) error { return nil }) {
		writeJSON(w, http.StatusOK, rep)
	}
}

// doctorOrigins validates browser origins: scheme and host, nothing else.
func doctorOrigins(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, o := range in {
		if o == "*" {
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return nil, signet.Errorf(signet.Invalid, "origin %q must be a scheme and host such as https://app.example.com", o)
		}
		out = append(out, o)
	}
	return out, nil
}

// Doctor runs the connector checks of a team.
func (c *Client) Doctor(ctx context.Context, team string, origins []string) (*DoctorReport, error) {
	path := teamPath(team, "doctor")
	if len(origins) > 0 {
		path += "?" + url.Values{"origin": origins}.Encode()
	}
	var out DoctorReport
	return &out, c.do(ctx, "GET", path, nil, &out)
}
