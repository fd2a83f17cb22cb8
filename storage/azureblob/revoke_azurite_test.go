package azureblob_test

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/azureblob"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/storagetest"
)

// TestAzuriteStoredAccessPolicy records what Azurite does with stored
// access policies, the one way to withdraw a service SAS before it
// expires short of rotating the account key (docs/security.md,
// "Revocation"):
//
//   - a SAS naming a policy (si=) works while the container's ACL holds
//     it and is refused (403) once the policy is replaced: revocation by
//     replacement works;
//   - Azurite refuses a policy with no fields (400), and answers 500 to a
//     SAS that sets its own permissions (sp) under a policy without them.
//     So signet uses the other legal split (Config.Revocable): the policy
//     holds only the permissions, one policy per permission set, and the
//     SAS its own start, expiry, IP range and protocol
//     (TestAzuriteRevocable).
func TestAzuriteStoredAccessPolicy(t *testing.T) {
	p := testpeer.Azurite(t)
	name := p.Container(t)
	cred, err := container.NewSharedKeyCredential(p.Account, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(p.Endpoint+"/"+name, cred,
		&container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: p.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.NewBlockBlobClient("x").UploadBuffer(ctx, []byte("data"), nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	start, read := now.Add(-time.Minute), "r"
	setPolicy := func(id string, ap *container.AccessPolicy) error {
		_, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{
			ContainerACL: []*container.SignedIdentifier{{ID: &id, AccessPolicy: ap}},
		})
		return err
	}
	get := func(id string, v sas.BlobSignatureValues) int {
		t.Helper()
		v.Protocol, v.ContainerName, v.BlobName, v.Identifier = sas.ProtocolHTTPSandHTTP, name, "x", id
		qp, err := v.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.Client().Get(p.Endpoint + "/" + name + "/x?" + qp.Encode())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	withExpiry := sas.BlobSignatureValues{ExpiryTime: now.Add(time.Hour)}

	// Revocation by replacing the policy.
	if err := setPolicy("signet-1", &container.AccessPolicy{Start: &start, Permission: &read}); err != nil {
		t.Fatal(err)
	}
	if st := get("signet-1", withExpiry); st != http.StatusOK {
		t.Fatalf("SAS under its policy: %d, want 200", st)
	}
	if st := get("signet-missing", withExpiry); st != http.StatusForbidden {
		t.Errorf("SAS naming an unknown policy: %d, want 403", st)
	}
	if err := setPolicy("signet-2", &container.AccessPolicy{Start: &start, Permission: &read}); err != nil {
		t.Fatal(err)
	}
	if st := get("signet-1", withExpiry); st != http.StatusForbidden {
		t.Errorf("SAS after its policy was replaced: %d, want 403", st)
	}
	if st := get("signet-2", withExpiry); st != http.StatusOK {
		t.Errorf("SAS under the new policy: %d, want 200", st)
	}

	// The form signet would need.
	errEmpty := setPolicy("signet-3", &container.AccessPolicy{})
	if err := setPolicy("signet-4", &container.AccessPolicy{Start: &start}); err != nil {
		t.Fatal(err)
	}
	stOwnPerms := get("signet-4", sas.BlobSignatureValues{ExpiryTime: now.Add(time.Hour), Permissions: "r"})
	t.Logf("Azurite: field-less policy: %v; SAS with its own sp under a policy without permissions: %d", errEmpty != nil, stOwnPerms)
	if errEmpty == nil && stOwnPerms == http.StatusOK {
		t.Log("Azurite now serves the field-less policy form too")
	}
}

// TestRevocableNeedsSharedKey: a user delegation SAS cannot name a stored
// access policy, so Revocable with Entra ID is refused.
func TestRevocableNeedsSharedKey(t *testing.T) {
	_, err := azureblob.Open(context.Background(), azureblob.Config{
		Account: "acct", Container: "cont", Revocable: true, Credential: staticToken{"t"},
	})
	wantCode(t, "Open with Revocable and Entra ID", err, signet.Invalid)
}

// TestAzuriteRevocable proves revocable signing (Config.Revocable) on
// Azurite: the whole conformance suite passes with SAS that name a
// container policy holding only the permissions; a tampered SAS is
// refused; RotateAccessPolicies withdraws URLs issued before it and
// keeps the container's other policies and public access; a replica that
// missed the rotation signs with the new policies within PolicyMaxAge.
//
// Azurite takes a SAS's start and expiry from the policy when the SAS
// names one (and never checks sip), so it does not enforce the SAS's own
// st, se and sip under a policy; Azure does. Here they are proved signed:
// a URL with any of them changed is refused.
func TestAzuriteRevocable(t *testing.T) {
	p := testpeer.Azurite(t)
	revocable := func(c *azureblob.Config) { c.Revocable = true }
	ctx := context.Background()

	// The conformance suite as testConformance runs it, through a client
	// that refuses an expired SAS naming a policy as Azure does, since
	// Azurite does not (see above); Rotate proves se is signed.
	t.Run("Conformance", func(t *testing.T) {
		e := newEnv(t, p, func(c *azureblob.Config) { c.Prefix = "team/"; c.Revocable = true })
		storagetest.Run(t, &storagetest.Harness{
			Backend: conformanceBackend{e.be}, Name: signet.BackendAzure, Bucket: e.container, Prefix: "team/",
			Client: &http.Client{Transport: expiryGate{p.Client()}}, PutStatus: http.StatusCreated,
			Multipart: true, PartETag: blockIDOf, PartsOutliveUpload: true,
			MultipartContentType: true, MultipartChecksum: true,
		})
	})

	t.Run("Rotate", func(t *testing.T) {
		name := p.Container(t)
		c := containerClient(t, p, name)
		// An operator's own policy, set before signet touches the container.
		start, expiry, perm := time.Now().UTC().Truncate(time.Second), time.Now().UTC().Add(24*time.Hour).Truncate(time.Second), "rl"
		appID, access := "app-read", container.PublicAccessType("")
		if _, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{ContainerACL: []*container.SignedIdentifier{
			{ID: &appID, AccessPolicy: &container.AccessPolicy{Start: &start, Expiry: &expiry, Permission: &perm}},
		}}); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, p, func(cfg *azureblob.Config) { revocable(cfg); cfg.Container = name })
		before := readACL(t, c)
		checkACL(t, before, appID, start, expiry, perm, access)

		e.put(t, "rot/a", []byte("a"))
		get := e.sign(t, http.MethodGet, "rot/a", nil)
		put := e.sign(t, http.MethodPut, "rot/b", nil)
		q := mustQuery(t, get.URL)
		if q.Get("sp") != "" || q.Get("si") != before.ids["r"] || q.Get("st") == "" || q.Get("se") == "" || q.Get("sr") != "b" {
			t.Errorf("read SAS %v: want si=%s, no sp, st, se, sr=b", redact(q), before.ids["r"])
		}
		if got := mustQuery(t, put.URL).Get("si"); got != before.ids["cw"] {
			t.Errorf("upload SAS names %q, want the cw policy %q", got, before.ids["cw"])
		}
		if st, body, _ := e.do(t, get.Method, get.URL, nil, nil); st != http.StatusOK || string(body) != "a" {
			t.Fatalf("GET under the read policy answered %d", st)
		}
		for _, tc := range []struct{ what, url string }{
			{"signature", tamper(t, get.URL, "sig")},
			{"expiry moved later", withParam(t, get.URL, "se", time.Now().Add(48*time.Hour).UTC().Format("2006-01-02T15:04:05Z"))},
			{"start moved", withParam(t, get.URL, "st", time.Now().Add(-48*time.Hour).UTC().Format("2006-01-02T15:04:05Z"))},
			{"network added", withParam(t, get.URL, "sip", "127.0.0.0-127.255.255.255")},
			{"permissions added", withParam(t, get.URL, "sp", "rcw")},
			{"write policy named", withParam(t, get.URL, "si", before.ids["cw"])},
			{"another blob", strings.Replace(get.URL, "/rot/a", "/rot/c", 1)},
		} {
			if st, _, _ := e.do(t, http.MethodGet, tc.url, nil, nil); st != http.StatusForbidden {
				t.Errorf("GET with the %s answered %d, want 403", tc.what, st)
			}
		}
		// Least permissions: the read policy does not write, the upload
		// policy does not read.
		if st, _, _ := e.do(t, http.MethodPut, get.URL, map[string]string{azureblob.BlobTypeHeader: azureblob.BlockBlob}, []byte("over")); st != http.StatusForbidden {
			t.Errorf("PUT with a read SAS answered %d, want 403", st)
		}
		if st, _, _ := e.do(t, http.MethodGet, put.URL, nil, nil); st != http.StatusForbidden {
			t.Errorf("GET with an upload SAS answered %d, want 403", st)
		}

		t0 := time.Now()
		if err := e.be.RotateAccessPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		rotated := time.Since(t0)
		var st int
		for {
			if st, _, _ = e.do(t, get.Method, get.URL, nil, nil); st != http.StatusOK || time.Since(t0) > 35*time.Second {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("rotation (read, write, read back) took %v; the old read URL was refused %v after it began", rotated, time.Since(t0))
		if st != http.StatusForbidden {
			t.Fatalf("GET with a URL issued before the rotation answered %d, want 403", st)
		}
		if st, _, _ := e.do(t, put.Method, put.URL, put.Headers, []byte("b")); st != http.StatusForbidden {
			t.Errorf("PUT with a URL issued before the rotation answered %d, want 403", st)
		}
		if st, body, _ := e.get(t, "rot/a"); st != http.StatusOK || string(body) != "a" {
			t.Errorf("GET with a URL issued after the rotation answered %d", st)
		}
		e.put(t, "rot/b", []byte("b"))
		after := readACL(t, c)
		checkACL(t, after, appID, start, expiry, perm, access)
		for _, pm := range []string{"r", "cw", "w"} {
			if after.ids[pm] == before.ids[pm] {
				t.Errorf("policy %s kept its identifier %q across the rotation", pm, after.ids[pm])
			}
		}
	})

	// Writing the ACL sets the public access level too: signet keeps it.
	t.Run("KeepsPublicAccess", func(t *testing.T) {
		name := p.Container(t)
		c := containerClient(t, p, name)
		start, expiry, perm := time.Now().UTC().Truncate(time.Second), time.Now().UTC().Add(time.Hour).Truncate(time.Second), "r"
		appID, access := "app-pub", container.PublicAccessTypeBlob
		if _, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{Access: &access, ContainerACL: []*container.SignedIdentifier{
			{ID: &appID, AccessPolicy: &container.AccessPolicy{Start: &start, Expiry: &expiry, Permission: &perm}},
		}}); err != nil {
			t.Fatal(err)
		}
		be, err := azureblob.Open(ctx, azureblob.Config{Account: p.Account, Container: name, Endpoint: p.Endpoint,
			SharedKey: p.Key, HTTPClient: p.Client(), Revocable: true})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if _, err := be.SignedURL(ctx, &driver.SignOptions{Bucket: name, Key: "k", Method: http.MethodGet, Now: now,
			Expires: now.Truncate(time.Second).Add(time.Minute), Size: -1}); err != nil {
			t.Fatal(err)
		}
		checkACL(t, readACL(t, c), appID, start, expiry, perm, access)
		if err := be.RotateAccessPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		checkACL(t, readACL(t, c), appID, start, expiry, perm, access)
	})

	t.Run("Replica", func(t *testing.T) {
		name := p.Container(t)
		a := newEnv(t, p, func(cfg *azureblob.Config) { revocable(cfg); cfg.Container = name })
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		b := newEnv(t, p, func(cfg *azureblob.Config) {
			revocable(cfg)
			cfg.Container = name
			cfg.Now = func() time.Time { return time.Unix(0, clock.Load()) }
		})
		a.put(t, "rep/x", []byte("x"))
		if err := a.be.RotateAccessPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		// b still holds the withdrawn identifiers: its URLs fail, which is
		// safe, until it reads the container's policies again.
		if st, _, _ := b.get(t, "rep/x"); st != http.StatusForbidden {
			t.Errorf("a URL signed by a replica with withdrawn policies answered %d, want 403", st)
		}
		clock.Add(int64(azureblob.PolicyMaxAge))
		if st, _, _ := b.get(t, "rep/x"); st != http.StatusOK {
			t.Errorf("after PolicyMaxAge the replica's URL answered %d, want 200", st)
		}
		// Told of a revocation, it reads them again at once.
		if err := a.be.RotateAccessPolicies(ctx); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := b.get(t, "rep/x"); st != http.StatusForbidden {
			t.Errorf("a URL signed by a replica with withdrawn policies answered %d, want 403", st)
		}
		b.be.ExpireAccessPolicies()
		if st, _, _ := b.get(t, "rep/x"); st != http.StatusOK {
			t.Errorf("after ExpireAccessPolicies the replica's URL answered %d, want 200", st)
		}
	})

	t.Run("ErrTooManyPolicies", func(t *testing.T) {
		name := p.Container(t)
		c := containerClient(t, p, name)
		var acl []*container.SignedIdentifier
		for _, id := range []string{"ops-1", "ops-2", "ops-3"} {
			perm := "r"
			acl = append(acl, &container.SignedIdentifier{ID: &id, AccessPolicy: &container.AccessPolicy{Permission: &perm}})
		}
		if _, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{ContainerACL: acl}); err != nil {
			t.Fatal(err)
		}
		be, err := azureblob.Open(ctx, azureblob.Config{Account: p.Account, Container: name, Endpoint: p.Endpoint,
			SharedKey: p.Key, HTTPClient: p.Client(), Revocable: true})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		_, err = be.SignedURL(ctx, &driver.SignOptions{Bucket: name, Key: "k", Method: http.MethodGet, Now: now,
			Expires: now.Truncate(time.Second).Add(time.Minute), Size: -1})
		wantCode(t, "signing with 3 other policies on the container", err, signet.Conflict)
		wantCode(t, "rotating with 3 other policies on the container", be.RotateAccessPolicies(ctx), signet.Conflict)
		if got := readACL(t, c); len(got.all) != 3 {
			t.Errorf("the container's policies were changed: %v", got.all)
		}
	})

	t.Run("ErrNotRevocable", func(t *testing.T) {
		e := newEnv(t, p, nil)
		wantCode(t, "rotating a backend that is not revocable", e.be.RotateAccessPolicies(ctx), signet.Unimplemented)
	})
}

// expiryGate refuses (403) a request whose SAS names a policy (si) and
// whose own expiry (se) has passed, which Azure checks and Azurite does
// not; everything else goes to Azurite.
type expiryGate struct{ c *http.Client }

func (g expiryGate) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	if se, err := time.Parse(time.RFC3339, q.Get("se")); q.Get("si") != "" && err == nil && time.Now().After(se) {
		if r.Body != nil {
			r.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	if g.c.Transport == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	return g.c.Transport.RoundTrip(r)
}

func containerClient(t *testing.T, p *testpeer.AzuritePeer, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(p.Account, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(p.Endpoint+"/"+name, cred,
		&container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: p.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acl is a container's ACL as read: signet's policy for each permission
// set, every identifier, and the public access level.
type acl struct {
	ids    map[string]string
	all    map[string]*container.AccessPolicy
	access container.PublicAccessType
}

func readACL(t *testing.T, c *container.Client) acl {
	t.Helper()
	resp, err := c.GetAccessPolicy(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := acl{ids: map[string]string{}, all: map[string]*container.AccessPolicy{}}
	if resp.BlobPublicAccess != nil {
		a.access = *resp.BlobPublicAccess
	}
	for _, si := range resp.SignedIdentifiers {
		a.all[*si.ID] = si.AccessPolicy
		if strings.HasPrefix(*si.ID, azureblob.PolicyPrefix) && si.AccessPolicy != nil && si.AccessPolicy.Permission != nil {
			a.ids[*si.AccessPolicy.Permission] = *si.ID
		}
	}
	return a
}

// checkACL wants signet's three policies (permissions only) next to the
// operator's policy id, unchanged, and the public access level kept.
func checkACL(t *testing.T, a acl, id string, start, expiry time.Time, perm string, access container.PublicAccessType) {
	t.Helper()
	if len(a.all) != 4 || len(a.ids) != 3 || a.ids["r"] == "" || a.ids["cw"] == "" || a.ids["w"] == "" {
		t.Errorf("container policies %v: want the operator's and signet's r, cw and w", a.all)
	}
	for pm, sid := range a.ids {
		if ap := a.all[sid]; ap.Start != nil || ap.Expiry != nil || !strings.HasPrefix(sid, azureblob.PolicyPrefix+pm+"-") {
			t.Errorf("signet policy %s = %+v: want permissions only", sid, ap)
		}
	}
	ap := a.all[id]
	if ap == nil || ap.Start == nil || !ap.Start.Equal(start) || ap.Expiry == nil || !ap.Expiry.Equal(expiry) || ap.Permission == nil || *ap.Permission != perm {
		t.Errorf("the operator's policy %s = %+v, want it unchanged", id, ap)
	}
	if a.access != access {
		t.Errorf("public access %q, want %q kept", a.access, access)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// redact drops the signature from q, for messages.
func redact(q url.Values) url.Values {
	q = maps.Clone(q)
	q.Del("sig")
	return q
}
