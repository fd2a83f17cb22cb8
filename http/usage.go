package http

import (
	"net/http"
	"strconv"

	"github.com/signetdev/signet"
)

// UsagePage is one page of a usage report: the grants issued in the
// window, oldest first, each with what the stores reported of its use.
// NextCursor, when set, fetches the next page.
type UsagePage struct {
	Grants     []*signet.GrantUsage `json:"grants"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// usageQuery is a parsed usage request.
type usageQuery struct {
	f       signet.GrantFilter
	unused  bool // only grants never used
	outside bool // only grants used from outside the team's networks
}

// maxUsageScan bounds how many issued grants one request looks at when
// --unused or --outside filter most of them away; the page then ends
// early with a cursor.
const maxUsageScan = 20000

func parseUsageQuery(r *http.Request) (usageQuery, error) {
	q := r.URL.Query()
	var u usageQuery
	var err error
	if u.f.Since, u.f.Until, err = timeRange(q); err != nil {
		return u, err
	}
	if u.f.AfterID, u.f.Limit, err = pageQuery(q); err != nil {
		return u, err
	}
	if u.f.Limit == 0 {
		u.f.Limit = 100
	}
	for name, p := range map[string]*bool{"unused": &u.unused, "outside": &u.outside} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return u, signet.Errorf(signet.Invalid, "%s must be true or false", name)
			}
			*p = b
		}
	}
	return u, nil
}

// handleTeamUsage reports on the grants issued for one team. Team admins
// and instance admins.
func (s *Server) handleTeamUsage(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUsageRead)
	ev.Team = r.PathValue("team")
	q, err := parseUsageQuery(r)
	if err == nil {
		q.f.Team = ev.Team
		err = s.store.View(r.Context(), func(tx signet.Tx) error {
			_, _, err := teamRole(tx, actorOf(r), ev.Team, signet.PermManage)
			return err
		})
	}
	s.usage(w, r, ev, q, err)
}

// handleUsage reports on the grants of every team. Instance admins only.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUsageRead)
	q, err := parseUsageQuery(r)
	if err == nil {
		err = requireAdmin(actorOf(r))
	}
	s.usage(w, r, ev, q, err)
}

// usage records the read (or its refusal, when err is set) and answers
// with one page of the report.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, ev *signet.AuditEvent, q usageQuery, err error) {
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	page := UsagePage{Grants: []*signet.GrantUsage{}}
	limit := q.f.Limit
	scanned := 0
	for len(page.Grants) < limit && scanned < maxUsageScan {
		var issued []*signet.AuditEvent
		var usage []*signet.AddressUsage
		teams := make(map[string]*signet.Team)
		err := s.store.View(r.Context(), func(tx signet.Tx) error {
			ut, err := signet.UsageOf(tx)
			if err != nil {
				return err
			}
			q.f.Limit = limit - len(page.Grants)
			if q.unused || q.outside {
				q.f.Limit = signet.MaxAuditPage
			}
			issued, err = ut.IssuedGrants(q.f)
			if err != nil || len(issued) == 0 {
				return err
			}
			ids := make([]string, len(issued))
			for i, e := range issued {
				ids[i] = e.GrantID
				if _, ok := teams[e.Team]; !ok && e.Team != "" {
					t, err := tx.Team(e.Team)
					switch signet.ErrorCode(err) {
					case "":
						teams[e.Team] = t
					case signet.NotFound: // a team since removed: no networks to judge by
						teams[e.Team] = nil
					default:
						return err
					}
				}
			}
			usage, err = ut.GrantUsage(ids)
			return err
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		scanned += len(issued)
		for _, g := range signet.JoinUsage(issued, usage, teams) {
			if len(page.Grants) == limit {
				break
			}
			q.f.AfterID = g.AuditID
			if q.unused && g.Used || q.outside && !g.Outside {
				continue
			}
			page.Grants = append(page.Grants, g)
		}
		if len(issued) < q.f.Limit {
			q.f.AfterID = 0 // the end
			break
		}
	}
	if q.f.AfterID != 0 {
		page.NextCursor = strconv.FormatInt(q.f.AfterID, 10)
	}
	writeJSON(w, http.StatusOK, page)
}
