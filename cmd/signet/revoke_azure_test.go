package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/azureblob"
)

// azureStatus fetches u and returns the status.
func azureStatus(t *testing.T, u string) int {
	t.Helper()
	st, _ := fetch(t, u)
	return st
}

// revokeJSON runs signet revoke with args and decodes the answer by team.
func revokeJSON(t *testing.T, c cli, args ...string) map[string]sighttp.StoreRevocation {
	t.Helper()
	var out sighttp.RevokeResponse
	if err := json.Unmarshal([]byte(c.must(append([]string{"revoke", "--json"}, args...)...)), &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]sighttp.StoreRevocation{}
	for _, s := range out.Stores {
		m[s.Team] = s
	}
	return m
}

// azureUpload uploads four bytes to key in team through a presigned PUT,
// which Azure answers 201 Created.
func azureUpload(t *testing.T, c cli, team, key string) {
	t.Helper()
	put := presignJSON(t, c, "put", team, key)
	if st := send(t, put.Method, put.URL, put.Headers, []byte("data")); st != http.StatusCreated {
		t.Fatalf("upload %s/%s answered %d", team, key, st)
	}
}

func azureContainer(t *testing.T, peer *testpeer.AzuritePeer, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(peer.Account, peer.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(peer.Endpoint+"/"+name, cred,
		&container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: peer.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRevokeAzure revokes Azure URLs through the CLI against Azurite: a
// revocable connector's URLs issued before `signet revoke` (by team, then
// by user) are refused after it and new ones work; another team on the
// same container loses its older URLs too (the policies are the
// container's); the container's own policies survive; and connectors
// that cannot be revoked say why.
func TestRevokeAzure(t *testing.T) {
	peer := testpeer.Azurite(t)
	shared, plainContainer := peer.Container(t), peer.Container(t)
	ctx := context.Background()
	cc := azureContainer(t, peer, shared)
	keepID, perm := "ops-keep", "r"
	if _, err := cc.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{ContainerACL: []*container.SignedIdentifier{
		{ID: &keepID, AccessPolicy: &container.AccessPolicy{Permission: &perm}},
	}}); err != nil {
		t.Fatal(err)
	}

	admin := serverWithTeams(t, "cv", "cv2", "plain", "entra")
	setAzureConnector(admin, peer, "cv", shared, "--prefix", "cv/", "--revocable")
	setAzureConnector(admin, peer, "cv2", shared, "--prefix", "cv2/", "--revocable")
	setAzureConnector(admin, peer, "plain", plainContainer)
	if r := admin.run("connector", "set", "entra", "--backend", "azure", "--account", peer.Account,
		"--container", shared, "--endpoint", "https://"+peer.Account+".blob.core.windows.net", "--revocable"); r.code == 0 || !strings.Contains(r.stderr, "revocable needs an account key") {
		t.Errorf("a revocable connector without an account key: exit %d %q, want refusal", r.code, r.stderr)
	}
	admin.must("connector", "set", "entra", "--backend", "azure", "--account", peer.Account,
		"--container", shared, "--endpoint", "https://"+peer.Account+".blob.core.windows.net")

	azureUpload(t, admin, "cv", "a")
	azureUpload(t, admin, "cv2", "b")
	old := presignGet(t, admin, "cv", "a")
	if st := azureStatus(t, strings.Replace(old, "sig=", "sig=A", 1)); st != http.StatusForbidden {
		t.Fatalf("Azurite answered %d to a tampered SAS; invalid environment", st)
	}
	if !strings.Contains(old, "si="+azureblob.PolicyPrefix+"r-") || strings.Contains(old, "&sp=") {
		t.Fatalf("revocable URL does not name signet's read policy instead of carrying sp: %s", old[:strings.IndexByte(old, '?')])
	}
	oldOther := presignGet(t, admin, "cv2", "b")
	for what, u := range map[string]string{"cv": old, "cv2": oldOther} {
		if st := azureStatus(t, u); st != http.StatusOK {
			t.Fatalf("%s URL before the revocation answered %d", what, st)
		}
	}

	t0 := time.Now()
	stores := revokeJSON(t, admin, "--team", "cv")
	took := time.Since(t0)
	if s := stores["cv"]; s.Effect != sighttp.RevokePoliciesRotated || len(s.Limitations) != 2 || !strings.Contains(s.Limitations[1], "30 seconds") {
		t.Errorf("cv: %+v, want policies_rotated with the 30 s limitation", s)
	}
	if st := azureStatus(t, old); st != http.StatusForbidden {
		t.Errorf("URL issued before revoke --team answered %d, want 403", st)
	}
	if st := azureStatus(t, oldOther); st != http.StatusForbidden {
		t.Errorf("another team's URL on the same container, issued before the revocation, answered %d, want 403 (the policies are the container's)", st)
	}
	t.Logf("signet revoke --team (rotation included) took %v; the older URLs were refused at the first request after it", took)
	for _, team := range []string{"cv", "cv2"} {
		key := map[string]string{"cv": "a", "cv2": "b"}[team]
		if st := azureStatus(t, presignGet(t, admin, team, key)); st != http.StatusOK {
			t.Errorf("%s URL issued after the revocation answered %d, want 200", team, st)
		}
	}
	azureUpload(t, admin, "cv", "c")

	// By user: every URL of the revocable containers issued before.
	before := presignGet(t, admin, "cv", "c")
	stores = revokeJSON(t, admin, "--user", "admin")
	if st := azureStatus(t, before); st != http.StatusForbidden {
		t.Errorf("URL issued before revoke --user answered %d, want 403", st)
	}
	if st := azureStatus(t, presignGet(t, admin, "cv", "c")); st != http.StatusOK {
		t.Errorf("URL issued after revoke --user answered %d, want 200", st)
	}
	for team, want := range map[string]string{
		"cv":    sighttp.RevokePoliciesRotated,
		"cv2":   sighttp.RevokePoliciesRotated,
		"plain": sighttp.RevokeNotEnforced,
		"entra": sighttp.RevokeNotEnforced,
	} {
		if s := stores[team]; s.Effect != want {
			t.Errorf("team %s: effect %q, want %q", team, s.Effect, want)
		}
	}
	if l := strings.Join(stores["plain"].Limitations, " "); !strings.Contains(l, "--revocable") {
		t.Errorf("plain shared-key connector: limitations %q do not point to --revocable", l)
	}
	if l := strings.Join(stores["entra"].Limitations, " "); !strings.Contains(l, sighttp.AzureRevokeDelegationKeys) {
		t.Errorf("Entra ID connector: limitations %q lack the management-plane command", l)
	}

	// The container's own policy is kept; signet's are three, all new.
	resp, err := cc.GetAccessPolicy(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	kept := false
	for _, si := range resp.SignedIdentifiers {
		ids = append(ids, *si.ID)
		kept = kept || *si.ID == keepID && si.AccessPolicy != nil && *si.AccessPolicy.Permission == perm
	}
	if !kept || len(ids) != 4 {
		t.Errorf("container policies %v: want %s kept next to signet's three", ids, keepID)
	}
}

// TestRevokeAzureReplicas runs two replicas on one PostgreSQL database: a
// revocation through replica 1 rotates the container's policies, and
// replica 2, whose driver signed with the old ones, signs with the new
// ones once it has seen the revocation (within RevocationMaxStale).
func TestRevokeAzureReplicas(t *testing.T) {
	peer := testpeer.Azurite(t)
	name := peer.Container(t)
	mains, token := mustRunReplicas(t, 2)
	r1 := cli{tb: t, addr: mains[0].URL(), token: token}
	r2 := cli{tb: t, addr: mains[1].URL(), token: token}
	r1.must("team", "create", "cv")
	setAzureConnector(r1, peer, "cv", name, "--revocable")
	azureUpload(t, r1, "cv", "f")
	old2 := presignGet(t, r2, "cv", "f") // replica 2 caches its driver and the policies
	if st := azureStatus(t, old2); st != http.StatusOK {
		t.Fatalf("replica 2's URL answered %d", st)
	}
	start := time.Now()
	r1.must("revoke", "--team", "cv")
	if st := azureStatus(t, old2); st != http.StatusForbidden {
		t.Errorf("replica 2's URL issued before the revocation answered %d, want 403", st)
	}
	var took time.Duration
	for {
		st := azureStatus(t, presignGet(t, r2, "cv", "f"))
		took = time.Since(start)
		if st == http.StatusOK {
			break
		}
		if took > RevocationMaxStale+time.Second {
			t.Fatalf("replica 2 still signs with withdrawn policies %v after the revocation (last answer %d)", took, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replica 2 signed working URLs again %v after the revocation through replica 1", took)
}
