package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
)

// Client calls signet's HTTP API. Its errors are *signet.Error values
// carrying the server's stable code and message.
type Client struct {
	// Addr is the server's base URL, e.g. http://127.0.0.1:8080.
	Addr string
	// Token is the API key sent as a bearer token.
	Token string
	// HTTP is the client used for API calls; http.DefaultClient when nil.
	HTTP *http.Client
	// UserAgent, when set, is sent with every request.
	UserAgent string
}

// NewClient returns a Client for the server at addr.
func NewClient(addr, token string) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{Addr: strings.TrimRight(addr, "/"), Token: token}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Response, error) {
	if in == nil {
		return c.send(ctx, method, path, "", nil)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, path, "application/json", bytes.NewReader(b))
}

// send sends body (of type ctype, when not empty) and returns the answer,
// or the server's problem as an error.
func (c *Client) send(ctx context.Context, method, path, ctype string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Addr+path, body)
	if err != nil {
		return nil, signet.E("client", signet.Invalid, "bad server address "+strconv.Quote(c.Addr), err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, signet.E("client", signet.Unavailable, "cannot reach signet at "+c.Addr, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	return resp, nil
}

// do sends in as JSON (when non-nil) and decodes the answer into out (when
// non-nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return signet.E("client", signet.Internal, "malformed answer from server", err)
	}
	return nil
}

func readProblem(resp *http.Response) error {
	var p Problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &p); err != nil || p.Code == "" {
		code := signet.Internal
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			code = signet.Unauthenticated
		case resp.StatusCode == http.StatusNotFound:
			code = signet.NotFound
		case resp.StatusCode == http.StatusServiceUnavailable:
			code = signet.Unavailable
		}
		return &signet.Error{Code: code, Msg: fmt.Sprintf("server answered %s", resp.Status)}
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return &signet.Error{Code: signet.Code(p.Code), Msg: msg}
}

func teamPath(team string, rest ...string) string {
	p := "/v1/teams/" + url.PathEscape(team)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// WhoAmI describes the caller.
func (c *Client) WhoAmI(ctx context.Context) (*WhoAmI, error) {
	var out WhoAmI
	return &out, c.do(ctx, "GET", "/v1/whoami", nil, &out)
}

// CreateTeam creates a team (instance admins only).
func (c *Client) CreateTeam(ctx context.Context, name string) (*TeamInfo, error) {
	var out TeamInfo
	return &out, c.do(ctx, "POST", "/v1/teams", createTeamRequest{Name: name}, &out)
}

// Teams lists the teams the caller can see.
func (c *Client) Teams(ctx context.Context) ([]TeamInfo, error) {
	var out []TeamInfo
	return out, c.do(ctx, "GET", "/v1/teams", nil, &out)
}

// Team returns one team.
func (c *Client) Team(ctx context.Context, name string) (*TeamInfo, error) {
	var out TeamInfo
	return &out, c.do(ctx, "GET", teamPath(name), nil, &out)
}

// UpdateTeam changes a team's expiry caps.
func (c *Client) UpdateTeam(ctx context.Context, name string, req UpdateTeamRequest) (*TeamInfo, error) {
	var out TeamInfo
	return &out, c.do(ctx, "PATCH", teamPath(name), req, &out)
}

// Members lists a team's members.
func (c *Client) Members(ctx context.Context, team string) ([]*signet.Member, error) {
	var out []*signet.Member
	return out, c.do(ctx, "GET", teamPath(team, "members"), nil, &out)
}

// AddMember adds a user to a team or changes their role.
func (c *Client) AddMember(ctx context.Context, team, user string, role signet.Role) (*signet.Member, error) {
	var out signet.Member
	return &out, c.do(ctx, "POST", teamPath(team, "members"), addMemberRequest{User: user, Role: role}, &out)
}

// RemoveMember removes a user from a team.
func (c *Client) RemoveMember(ctx context.Context, team, user string) error {
	return c.do(ctx, "DELETE", teamPath(team, "members", user), nil, nil)
}

// CreateUser creates a user or, with service set, a service account.
func (c *Client) CreateUser(ctx context.Context, name string, service, admin bool) (*signet.User, error) {
	var out signet.User
	return &out, c.do(ctx, "POST", "/v1/users", createUserRequest{Name: name, Service: service, Admin: admin}, &out)
}

// Users lists users (instance admins only).
func (c *Client) Users(ctx context.Context) ([]*signet.User, error) {
	var out []*signet.User
	return out, c.do(ctx, "GET", "/v1/users", nil, &out)
}

// CreateKey creates an API key for user (the caller when empty). The
// token in the answer is shown only this once.
func (c *Client) CreateKey(ctx context.Context, user string) (*CreatedKey, error) {
	var out CreatedKey
	return &out, c.do(ctx, "POST", "/v1/keys", createKeyRequest{User: user}, &out)
}

// Keys lists API keys, of one user when user is not empty.
func (c *Client) Keys(ctx context.Context, user string) ([]*signet.APIKey, error) {
	var out []*signet.APIKey
	p := "/v1/keys"
	if user != "" {
		p += "?user=" + url.QueryEscape(user)
	}
	return out, c.do(ctx, "GET", p, nil, &out)
}

// RevokeKey revokes an API key by id.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/keys/"+url.PathEscape(id), nil, nil)
}

// SetConnector sets a team's storage connector.
func (c *Client) SetConnector(ctx context.Context, team string, req ConnectorRequest) (*signet.Connector, error) {
	var out signet.Connector
	return &out, c.do(ctx, "PUT", teamPath(team, "connector"), req, &out)
}

// Connector returns a team's storage connector.
func (c *Client) Connector(ctx context.Context, team string) (*signet.Connector, error) {
	var out signet.Connector
	return &out, c.do(ctx, "GET", teamPath(team, "connector"), nil, &out)
}

// Presign asks for URLs for a batch of objects.
func (c *Client) Presign(ctx context.Context, team string, req *PresignRequest) (*PresignResponse, error) {
	var out PresignResponse
	return &out, c.do(ctx, "POST", teamPath(team, "presign"), req, &out)
}

// CreateUpload starts a chunked upload.
func (c *Client) CreateUpload(ctx context.Context, team string, req *CreateUploadRequest) (*UploadInfo, error) {
	var out UploadInfo
	return &out, c.do(ctx, "POST", teamPath(team, "uploads"), req, &out)
}

// UploadParts returns fresh URLs for the given parts.
func (c *Client) UploadParts(ctx context.Context, team, id string, numbers []int) (*PartsResponse, error) {
	var out PartsResponse
	return &out, c.do(ctx, "POST", teamPath(team, "uploads", id, "parts"), PartsRequest{Numbers: numbers}, &out)
}

// UploadState returns an upload and the parts the store already holds.
func (c *Client) UploadState(ctx context.Context, team, id string) (*UploadInfo, error) {
	var out UploadInfo
	return &out, c.do(ctx, "GET", teamPath(team, "uploads", id), nil, &out)
}

// CompleteUpload assembles the upload from its parts.
func (c *Client) CompleteUpload(ctx context.Context, team, id string, parts []CompletePart) (*UploadInfo, error) {
	var out UploadInfo
	return &out, c.do(ctx, "POST", teamPath(team, "uploads", id, "complete"), CompleteRequest{Parts: parts}, &out)
}

// AbortUpload discards an upload.
func (c *Client) AbortUpload(ctx context.Context, team, id string) error {
	return c.do(ctx, "DELETE", teamPath(team, "uploads", id), nil, nil)
}

// AuditQuery selects audit events for Audit and ExportAudit.
type AuditQuery struct {
	Team    string
	Actor   string
	Action  string
	Outcome string
	Prefix  string // object key prefix
	// Since and Until bound the events' time: Since <= time < Until.
	Since  time.Time
	Until  time.Time
	Cursor string
	// Limit is the page size, 1 to signet.MaxAuditPage; 0 asks for the
	// server's default (100). Any other value is sent as it is, so that
	// the server refuses it rather than answering its default page.
	Limit int
}

func (q AuditQuery) values() url.Values {
	v := url.Values{}
	if q.Team != "" {
		v.Set("team", q.Team)
	}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	for name, val := range map[string]string{"action": q.Action, "outcome": q.Outcome, "prefix": q.Prefix} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Audit returns one page of audit events.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	var out AuditPage
	return &out, c.do(ctx, "GET", "/v1/audit?"+q.values().Encode(), nil, &out)
}

// ExportAudit copies every matching audit event to w as JSON lines.
func (c *Client) ExportAudit(ctx context.Context, q AuditQuery, w io.Writer) error {
	v := q.values()
	v.Set("format", "jsonl")
	resp, err := c.request(ctx, "GET", "/v1/audit?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Revoke withdraws the URLs req selects and reports what that does to
// each store.
func (c *Client) Revoke(ctx context.Context, req *RevokeRequest) (*RevokeResponse, error) {
	var out RevokeResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/revocations", req, &out)
}

// Revocations lists revocations, of one team when team is not empty.
func (c *Client) Revocations(ctx context.Context, team string) ([]*signet.Revocation, error) {
	path := "/v1/revocations"
	if team != "" {
		path += "?team=" + url.QueryEscape(team)
	}
	var out []*signet.Revocation
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// NetworkPolicy renders the store-side policy that restricts the team's
// objects to its networks (instance admins).
func (c *Client) NetworkPolicy(ctx context.Context, team string) (*NetworkPolicyInfo, error) {
	var out NetworkPolicyInfo
	return &out, c.do(ctx, http.MethodGet, teamPath(team, "policy"), nil, &out)
}

// ApplyNetworkPolicy puts the team's network policy in force at its store,
// or removes signet's part when the team has no networks (instance admins).
func (c *Client) ApplyNetworkPolicy(ctx context.Context, team string) (*NetworkPolicyInfo, error) {
	var out NetworkPolicyInfo
	return &out, c.do(ctx, http.MethodPut, teamPath(team, "policy"), nil, &out)
}
