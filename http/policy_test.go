package http_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/driver"
)

// policyDriver is a driver that records what the server asks of it: the
// connectors it is opened with, and the networks it renders and applies.
type policyDriver struct {
	mu      sync.Mutex
	applied []netip.Prefix
}

func (d *policyDriver) SignedURL(context.Context, *driver.SignOptions) (*driver.SignedURL, error) {
	return nil, signet.Errorf(signet.Unavailable, "this test driver signs nothing")
}

func (d *policyDriver) RenderNetworkPolicy(team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	if len(nets) == 0 {
		return nil, signet.Errorf(signet.Invalid, "no networks")
	}
	return &driver.NetworkPolicy{Kind: driver.PolicyS3Bucket, ID: "signet-team-" + team + "-network", Document: `{"Statement":[]}`}, nil
}

func (d *policyDriver) ApplyNetworkPolicy(ctx context.Context, team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	d.mu.Lock()
	d.applied = nets
	d.mu.Unlock()
	return &driver.NetworkPolicy{Kind: driver.PolicyS3Bucket, ID: "x", Removed: len(nets) == 0, Kept: 3}, nil
}

// TestTeamNetworksReachDriver: the server hands a role-signing S3
// connector to the driver with the team's current networks in
// OptionTeamNetworks (a stored value is ignored), leaves other connectors
// alone, and serves render and apply to instance admins only, audited.
func TestTeamNetworksReachDriver(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var mu sync.Mutex
	seen := map[string]string{} // bucket -> team_networks option
	drv := &policyDriver{}
	srv := sighttp.NewServer(sighttp.Config{
		Store: db,
		Backends: func(_ context.Context, c *signet.Connector, _ map[string]string) (driver.Backend, error) {
			mu.Lock()
			defer mu.Unlock()
			v, ok := c.Options[sighttp.OptionTeamNetworks]
			if !ok {
				v = "(none)"
			}
			seen[c.Bucket] = v
			return drv, nil
		},
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e := &env{t: t, URL: ts.URL, DB: db}
	tok := e.seed("ml", "instance", "admin")
	e.seed("cv")
	err = db.Update(context.Background(), func(tx signet.Tx) error {
		if err := tx.SetConnector(&signet.Connector{Team: "ml", Backend: "s3", Bucket: "role-bkt",
			Options: map[string]string{"role_arn": "arn:aws:iam::1:role/r", sighttp.OptionTeamNetworks: "10.9.9.0/24"}}); err != nil {
			return err
		}
		return tx.SetConnector(&signet.Connector{Team: "cv", Backend: "s3", Bucket: "keys-bkt",
			Options: map[string]string{sighttp.OptionTeamNetworks: "10.9.9.0/24"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(bucket string) string {
		mu.Lock()
		defer mu.Unlock()
		return seen[bucket]
	}

	// Render opens the driver as presign does.
	if a := e.do("GET", "/v1/teams/ml/policy", tok["instance"], ""); a.code() != "invalid" {
		t.Errorf("render without networks: %d %s", a.Status, a.Body)
	}
	if got := lookup("role-bkt"); got != "(none)" {
		t.Errorf("without networks the driver saw team_networks %q; the stored value must be ignored", got)
	}
	if a := e.do("PATCH", "/v1/teams/ml", tok["instance"], `{"allow_networks":["10.0.0.0/8","2001:db8::/32"]}`); a.Status != 200 {
		t.Fatalf("set networks: %d %s", a.Status, a.Body)
	}
	if a := e.do("GET", "/v1/teams/ml/policy", tok["instance"], ""); a.Status != 200 {
		t.Errorf("render: %d %s", a.Status, a.Body)
	}
	if got := lookup("role-bkt"); got != "10.0.0.0/8,2001:db8::/32" {
		t.Errorf("the driver saw team_networks %q, want the team's networks", got)
	}
	// Presign reaches the driver the same way (its signing fails here:
	// this driver signs nothing).
	e.do("POST", "/v1/teams/ml/presign", tok["admin"], presignBody("download", "x"))
	if got := lookup("role-bkt"); got != "10.0.0.0/8,2001:db8::/32" {
		t.Errorf("presign: the driver saw team_networks %q", got)
	}
	// Without a role the option is removed, whatever is stored.
	e.do("GET", "/v1/teams/cv/policy", tok["instance"], "")
	if got := lookup("keys-bkt"); got != "(none)" {
		t.Errorf("a connector without a role reached the driver with team_networks %q", got)
	}

	// Team admins may not render or apply; instance admins may.
	for _, m := range []string{"GET", "PUT"} {
		if a := e.do(m, "/v1/teams/ml/policy", tok["admin"], ""); a.Status != 403 {
			t.Errorf("%s policy by a team admin: %d, want 403", m, a.Status)
		}
	}
	if a := e.do("PUT", "/v1/teams/ml/policy", tok["instance"], ""); a.Status != 200 {
		t.Errorf("apply: %d %s", a.Status, a.Body)
	}
	drv.mu.Lock()
	if len(drv.applied) != 2 {
		t.Errorf("apply gave the driver %v, want the team's two networks", drv.applied)
	}
	drv.mu.Unlock()
	var render, apply, denied int
	for _, ev := range e.audit() {
		switch {
		case ev.Action == signet.ActionPolicyRender && ev.Outcome == signet.OutcomeAllowed && ev.Team == "ml":
			render++
		case ev.Action == signet.ActionPolicyApply && ev.Outcome == signet.OutcomeAllowed:
			apply++
		case (ev.Action == signet.ActionPolicyApply || ev.Action == signet.ActionPolicyRender) && ev.Outcome == signet.OutcomeDenied && ev.Team == "ml":
			denied++
		}
	}
	if render != 1 || apply != 1 || denied != 3 {
		t.Errorf("audit: %d renders, %d applies, %d refusals; want 1, 1, 3", render, apply, denied)
	}
}
