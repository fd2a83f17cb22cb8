package http

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
)

// Names of teams and users: short, lower-case, safe in paths and tables.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func validName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return signet.Errorf(signet.Invalid, "%s name must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", kind)
	}
	return nil
}

func requireAdmin(a signet.Actor) error {
	if !a.Admin {
		return signet.Errorf(signet.PermissionDenied, "only instance admins may do this")
	}
	return nil
}

// TeamInfo is a team as the API shows it.
type TeamInfo struct {
	Name string `json:"name"`
	// Caps on URL lifetimes, in seconds.
	DownloadMaxExpiry int64 `json:"download_max_expiry"`
	UploadMaxExpiry   int64 `json:"upload_max_expiry"`
	// AllowNetworks are the client networks allowed to obtain URLs; empty
	// allows every network.
	AllowNetworks []string  `json:"allow_networks"`
	CreatedAt     time.Time `json:"created_at"`
	Role          string    `json:"role,omitempty"` // the caller's role
}

func teamInfo(t *signet.Team, role signet.Role) TeamInfo {
	return TeamInfo{
		Name:              t.Name,
		DownloadMaxExpiry: int64(t.ExpiryCap(false) / time.Second),
		UploadMaxExpiry:   int64(t.ExpiryCap(true) / time.Second),
		AllowNetworks:     signet.NetworkStrings(t.AllowNetworks),
		CreatedAt:         t.CreatedAt,
		Role:              string(role),
	}
}

// WhoAmI describes the caller.
type WhoAmI struct {
	User  string           `json:"user"`
	KeyID string           `json:"key_id"`
	Admin bool             `json:"admin"`
	Teams []*signet.Member `json:"teams"`
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	out := WhoAmI{User: a.User, KeyID: a.KeyID, Admin: a.Admin}
	err := s.store.View(r.Context(), func(tx signet.Tx) (err error) {
		out.Teams, err = tx.Memberships(a.User)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type createTeamRequest struct {
	Name string `json:"name"`
}

func (s *Server) handleCreateTeam(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionTeamCreate)
	var req createTeamRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.Team = req.Name
	if err := requireAdmin(actorOf(r)); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := validName("team", req.Name); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	t := &signet.Team{Name: req.Name, CreatedAt: s.now()}
	if s.do(w, r, ev, func(tx signet.Tx) error { return tx.CreateTeam(t) }) {
		writeJSON(w, http.StatusCreated, teamInfo(t, ""))
	}
}

func (s *Server) handleListTeams(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	out := []TeamInfo{}
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		ms, err := tx.Memberships(a.User)
		if err != nil {
			return err
		}
		roles := map[string]signet.Role{}
		for _, m := range ms {
			roles[m.Team] = m.Role
		}
		ts, err := tx.Teams()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if role, ok := roles[t.Name]; ok || a.Admin {
				out = append(out, teamInfo(t, role))
			}
		}
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetTeam(w http.ResponseWriter, r *http.Request) {
	var info TeamInfo
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		t, role, err := teamRole(tx, actorOf(r), r.PathValue("team"), signet.PermRead)
		if err == nil {
			info = teamInfo(t, role)
		}
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// UpdateTeamRequest changes a team's URL lifetime caps, in seconds, and
// its allowed client networks. A team's caps only lower the instance
// defaults (R3: 1 h for downloads, 24 h for uploads): a value above the
// default is refused (InvalidExpiry) for everyone. Team admins may only
// lower the team's current caps; instance admins may also raise them back
// up to the defaults. AllowNetworks replaces the list when present; an
// empty list allows every network.
type UpdateTeamRequest struct {
	DownloadMaxExpiry *int64    `json:"download_max_expiry,omitempty"`
	UploadMaxExpiry   *int64    `json:"upload_max_expiry,omitempty"`
	AllowNetworks     *[]string `json:"allow_networks,omitempty"`
}

func (s *Server) handleUpdateTeam(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionTeamUpdate)
	ev.Team = r.PathValue("team")
	var req UpdateTeamRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	var info TeamInfo
	ok := s.do(w, r, ev, func(tx signet.Tx) error {
		t, role, err := teamRole(tx, a, ev.Team, signet.PermManage)
		if err != nil {
			return err
		}
		set := func(field string, v *int64, cur *time.Duration, upload bool) error {
			if v == nil {
				return nil
			}
			limit := signet.DefaultExpiry(upload)
			if *v < 1 || *v > int64(limit/time.Second) {
				return signet.Errorf(signet.InvalidExpiry, "%s must be between 1 and %d seconds: a team's cap may only lower the instance default (%s)",
					field, int64(limit/time.Second), limit)
			}
			d := time.Duration(*v) * time.Second
			if !a.Admin && d > t.ExpiryCap(upload) {
				return signet.Errorf(signet.PermissionDenied, "team admins may only lower %s", field)
			}
			*cur = d
			return nil
		}
		if err := set("download_max_expiry", req.DownloadMaxExpiry, &t.DownloadMaxExpiry, false); err != nil {
			return err
		}
		if err := set("upload_max_expiry", req.UploadMaxExpiry, &t.UploadMaxExpiry, true); err != nil {
			return err
		}
		if req.AllowNetworks != nil {
			nets, err := signet.ParseNetworks(*req.AllowNetworks...)
			if err != nil {
				return err
			}
			t.AllowNetworks = nets
			ev.Reason = "allow_networks " + signet.FormatNetworks(nets)
		}
		info = teamInfo(t, role)
		return tx.UpdateTeam(t)
	})
	if ok {
		writeJSON(w, http.StatusOK, info)
	}
}

func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request) {
	var out []*signet.Member
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		if _, _, err := teamRole(tx, actorOf(r), r.PathValue("team"), signet.PermRead); err != nil {
			return err
		}
		var err error
		out, err = tx.Members(r.PathValue("team"))
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if out == nil {
		out = []*signet.Member{}
	}
	writeJSON(w, http.StatusOK, out)
}

type addMemberRequest struct {
	User string      `json:"user"`
	Role signet.Role `json:"role"`
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionMemberAdd)
	ev.Team = r.PathValue("team")
	var req addMemberRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.Target = req.User
	if !req.Role.Valid() {
		s.deny(w, r, ev, signet.Errorf(signet.Invalid, "role must be admin, member or viewer"))
		return
	}
	m := &signet.Member{Team: ev.Team, User: req.User, Role: req.Role, CreatedAt: s.now()}
	ev.Reason = "role " + string(req.Role)
	if s.do(w, r, ev, func(tx signet.Tx) error {
		if _, _, err := teamRole(tx, actorOf(r), ev.Team, signet.PermManage); err != nil {
			return err
		}
		return tx.SetMember(m)
	}) {
		writeJSON(w, http.StatusOK, m)
	}
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionMemberRemove)
	ev.Team = r.PathValue("team")
	ev.Target = r.PathValue("user")
	if s.do(w, r, ev, func(tx signet.Tx) error {
		if _, _, err := teamRole(tx, actorOf(r), ev.Team, signet.PermManage); err != nil {
			return err
		}
		return tx.RemoveMember(ev.Team, ev.Target)
	}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

type createUserRequest struct {
	Name    string `json:"name"`
	Service bool   `json:"service"`
	Admin   bool   `json:"admin"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUserCreate)
	var req createUserRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.Target = req.Name
	if err := requireAdmin(actorOf(r)); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := validName("user", req.Name); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	u := &signet.User{Name: req.Name, Service: req.Service, Admin: req.Admin, CreatedAt: s.now()}
	if s.do(w, r, ev, func(tx signet.Tx) error { return tx.CreateUser(u) }) {
		writeJSON(w, http.StatusCreated, u)
	}
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	if err := requireAdmin(actorOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	var out []*signet.User
	err := s.store.View(r.Context(), func(tx signet.Tx) (err error) {
		out, err = tx.Users()
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if out == nil {
		out = []*signet.User{}
	}
	writeJSON(w, http.StatusOK, out)
}

type createKeyRequest struct {
	User string `json:"user"`
}

// CreatedKey is the answer to key creation: the only time the token is
// ever shown.
type CreatedKey struct {
	signet.APIKey
	Token string `json:"token"`
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionKeyCreate)
	var req createKeyRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if req.User == "" {
		req.User = a.User
	}
	if req.User != a.User && !a.Admin {
		s.deny(w, r, ev, signet.Errorf(signet.PermissionDenied, "only instance admins may create keys for other users"))
		return
	}
	token, id, hash := signet.NewAPIKeyToken()
	k := &signet.APIKey{ID: id, User: req.User, Hash: hash, CreatedAt: s.now()}
	ev.Target = "key " + id + " of " + req.User
	if s.do(w, r, ev, func(tx signet.Tx) error { return tx.CreateAPIKey(k) }) {
		writeJSON(w, http.StatusCreated, CreatedKey{APIKey: *k, Token: token})
	}
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	user := r.URL.Query().Get("user")
	if !a.Admin {
		if user != "" && user != a.User {
			s.writeError(w, r, signet.Errorf(signet.PermissionDenied, "only instance admins may list other users' keys"))
			return
		}
		user = a.User
	}
	var out []*signet.APIKey
	err := s.store.View(r.Context(), func(tx signet.Tx) (err error) {
		out, err = tx.APIKeys(user)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if out == nil {
		out = []*signet.APIKey{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionKeyRevoke)
	id := r.PathValue("id")
	ev.Target = "key " + id
	if s.do(w, r, ev, func(tx signet.Tx) error {
		k, err := tx.APIKey(id)
		if err != nil {
			return err
		}
		if k.User != a.User && !a.Admin {
			// Do not confirm that another user's key id exists.
			return signet.Errorf(signet.NotFound, "no key %q", id)
		}
		return tx.RevokeAPIKey(id, s.now())
	}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// ConnectorRequest sets a team's connector. Credentials, when given, are
// sealed and stored with it and never shown again; without them the
// connector signs with the server's ambient credentials (cloud backends),
// which only instance admins may grant, since those can reach any bucket
// the server can.
type ConnectorRequest struct {
	Backend     string            `json:"backend"`
	Bucket      string            `json:"bucket,omitempty"`
	Prefix      string            `json:"prefix,omitempty"`
	Region      string            `json:"region,omitempty"`
	Endpoint    string            `json:"endpoint,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

func (s *Server) handleSetConnector(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionConnectorSet)
	ev.Team = r.PathValue("team")
	// The caller's role comes first: whoever may not manage the team
	// learns nothing from how its body would have been judged, and no
	// credential is sealed nor store opened on their behalf. The
	// transaction below checks it again.
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		_, _, err := teamRole(tx, a, ev.Team, signet.PermManage)
		return err
	})
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	var req ConnectorRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := checkBackend(req.Backend); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	c := &signet.Connector{
		Team: ev.Team, Backend: req.Backend, Bucket: req.Bucket, Prefix: req.Prefix,
		Region: req.Region, Endpoint: req.Endpoint, Options: req.Options, UpdatedAt: s.now(),
	}
	if c.Backend == signet.BackendLocal && c.Bucket == "" {
		c.Bucket = c.Team
	}
	ev.Store, ev.Bucket, ev.ObjectKey = c.Backend, c.Bucket, c.Prefix
	err = storage.ValidatePrefix(c.Prefix)
	if err == nil && c.Bucket == "" {
		err = signet.Errorf(signet.Invalid, "bucket is required")
	}
	if err == nil && c.Backend == signet.BackendLocal && c.Bucket != c.Team && !a.Admin {
		// The built-in store is one for every team, and its URLs are
		// signed with the server's keys: a bucket named after another
		// team (or one it has yet to take) would let this team's URLs,
		// issued now, reach that team's objects later, out of reach of
		// that team's revocations.
		err = signet.Errorf(signet.PermissionDenied, "only instance admins may give a local connector a bucket other than the team's name, %q", c.Team)
	}
	if err == nil && c.Backend != signet.BackendLocal && len(req.Credentials) == 0 && !a.Admin {
		err = signet.Errorf(signet.PermissionDenied, "only instance admins may set a connector that signs with the server's own credentials; give the connector its credentials")
	}
	var cred *signet.Credential
	if err == nil && len(req.Credentials) > 0 {
		if c.Backend == signet.BackendLocal {
			err = signet.Errorf(signet.Invalid, "the local backend takes no credentials")
		} else if cred, err = s.sealSecret(c.Team, req.Credentials); err == nil {
			c.CredentialsRef = cred.Ref
			ev.Target = "credentials " + cred.Ref
		}
	}
	if err == nil {
		// Refuses backends this build cannot serve and unusable settings
		// before anything is stored.
		_, err = s.backends(r.Context(), c, req.Credentials)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if s.do(w, r, ev, func(tx signet.Tx) error {
		if _, _, err := teamRole(tx, a, ev.Team, signet.PermManage); err != nil {
			return err
		}
		if cred != nil {
			if err := tx.PutCredential(cred); err != nil {
				return err
			}
		}
		return tx.SetConnector(c)
	}) {
		writeJSON(w, http.StatusOK, c)
	}
}

// checkBackend refuses a connector's backend name that no build of signet
// knows, before any other setting is judged against it.
func checkBackend(name string) error {
	if slices.Contains(signet.Backends, name) {
		return nil
	}
	known := strings.Join(signet.Backends, ", ")
	if name == "" {
		return signet.Errorf(signet.Invalid, "backend is required (one of %s)", known)
	}
	if len(name) > 32 {
		name = name[:32] + "…"
	}
	return signet.Errorf(signet.Invalid, "unknown backend %q (known: %s)", name, known)
}

func (s *Server) handleGetConnector(w http.ResponseWriter, r *http.Request) {
	var c *signet.Connector
	err := s.store.View(r.Context(), func(tx signet.Tx) error {
		if _, _, err := teamRole(tx, actorOf(r), r.PathValue("team"), signet.PermRead); err != nil {
			return err
		}
		var err error
		c, err = tx.Connector(r.PathValue("team"))
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
