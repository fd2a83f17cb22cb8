package azureblob_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/azureblob"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/storagetest"
)

// azDiagnose runs Diagnose and returns its checks by name, checking that
// each failure and warning comes with a fix and that no check shows the
// account key.
func azDiagnose(t *testing.T, b *azureblob.Backend, opts *driver.DiagnoseOptions) map[string]driver.Check {
	t.Helper()
	checks := storagetest.Diagnose(t, b, opts, testpeer.AzuriteKey)
	if len(checks) != 8 {
		t.Errorf("%d checks, want 8", len(checks))
	}
	return checks
}

func azService(t *testing.T, p *testpeer.AzuritePeer) *service.Client {
	t.Helper()
	cred, err := service.NewSharedKeyCredential(p.Account, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.NewClientWithSharedKeyCredential(p.Endpoint+"/", cred,
		&service.ClientOptions{ClientOptions: policy.ClientOptions{Transport: p.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestAzureDiagnose checks an Azurite account as it comes (no CORS rules,
// no soft delete), then configured as signet recommends, and a missing
// container, a wrong key and a skewed clock. CORS and soft delete are Blob
// service properties of the account, so one peer serves both sides.
func TestAzureDiagnose(t *testing.T) {
	ctx := context.Background()
	p := testpeer.Azurite(t)
	const origin = "https://app.example.com"
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")}
	opts := &driver.DiagnoseOptions{Team: "ml", Origins: []string{origin}, Networks: nets}
	e := newEnv(t, p, func(c *azureblob.Config) { c.Prefix = "ml/" })

	bare := azDiagnose(t, e.be, opts)
	storagetest.WantCheck(t, bare, "credentials", driver.CheckOK, "account key")
	storagetest.WantCheck(t, bare, "bucket", driver.CheckOK, "listable")
	storagetest.WantCheck(t, bare, "clock", driver.CheckOK, "store clock is")
	storagetest.WantCheck(t, bare, "cors", driver.CheckFail, origin+" PUT")
	storagetest.WantCheck(t, bare, "versioning", driver.CheckWarn, "soft delete is off")
	storagetest.WantCheck(t, bare, "encryption", driver.CheckOK, "always encrypts")
	storagetest.WantCheck(t, bare, "lifecycle", driver.CheckSkip, "uncommitted blocks after 7 days")
	storagetest.WantCheck(t, bare, "network", driver.CheckOK, "sip")
	if f := bare["cors"].Fix; !strings.Contains(f, "az storage cors add") || !strings.Contains(f, origin) || !strings.Contains(f, "ETag") {
		t.Errorf("cors fix %q", f)
	}
	if f := bare["lifecycle"].Fix; !strings.HasPrefix(f, "az storage account management-policy create --account-name "+p.Account) {
		t.Errorf("lifecycle fix %q", f)
	}
	if f := bare["network"].Fix; !strings.Contains(f, "az storage account network-rule add") {
		t.Errorf("network fix %q", f)
	}
	// Without --origin and without an allow-list those checks are skipped.
	plain := azDiagnose(t, e.be, &driver.DiagnoseOptions{Team: "ml"})
	storagetest.WantCheck(t, plain, "cors", driver.CheckSkip, "no browser origins")
	storagetest.WantCheck(t, plain, "network", driver.CheckSkip, "no network allow-list")
	// IPv6 networks cannot travel in sip.
	v6 := azDiagnose(t, e.be, &driver.DiagnoseOptions{Team: "ml", Networks: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}})
	storagetest.WantCheck(t, v6, "network", driver.CheckWarn, "2001:db8::/32")

	// The CORS probe, which Diagnose uses when the account's properties
	// cannot be read, sees the same as the rules: nothing allowed yet.
	missing, err := azureblob.ProbeCORS(e.be, ctx, []string{origin})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if len(missing) != 4 {
		t.Errorf("probe of an account without CORS rules finds missing %q, want GET, HEAD, PUT and ETag", missing)
	}

	// Configure the account as signet recommends.
	svc := azService(t, p)
	props, err := svc.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Azurite's initial Blob service properties: %d CORS rules, delete retention %+v", len(props.CORS), props.DeleteRetentionPolicy)
	_, err = svc.SetProperties(ctx, &service.SetPropertiesOptions{
		CORS: []*service.CORSRule{{
			AllowedOrigins: to.Ptr(origin), AllowedMethods: to.Ptr("GET,HEAD,PUT"),
			AllowedHeaders: to.Ptr("x-ms-*,content-*"), ExposedHeaders: to.Ptr("ETag,x-ms-*"), MaxAgeInSeconds: to.Ptr(int32(3600)),
		}},
		DeleteRetentionPolicy: &service.RetentionPolicy{Enabled: to.Ptr(true), Days: to.Ptr(int32(7))},
	})
	if err != nil {
		t.Fatalf("Set Blob Service Properties: %v", err)
	}
	good := azDiagnose(t, e.be, opts)
	storagetest.WantCheck(t, good, "cors", driver.CheckOK, "ETag exposed")
	props, err = svc.GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := props.DeleteRetentionPolicy; r != nil && r.Enabled != nil && *r.Enabled {
		storagetest.WantCheck(t, good, "versioning", driver.CheckOK, "7 day(s)")
	} else {
		t.Logf("Azurite does not keep DeleteRetentionPolicy (it answers %+v): the passing soft-delete check is not shown", r)
		storagetest.WantCheck(t, good, "versioning", driver.CheckWarn, "soft delete is off")
	}
	if missing, err := azureblob.ProbeCORS(e.be, ctx, []string{origin}); err != nil || len(missing) != 0 {
		t.Errorf("probe with the recommended CORS rule: missing %q, %v", missing, err)
	}
	// Another origin is still refused, by the rules and by the probe.
	other := azDiagnose(t, e.be, &driver.DiagnoseOptions{Origins: []string{"https://evil.example"}})
	storagetest.WantCheck(t, other, "cors", driver.CheckFail, "https://evil.example GET")
	if missing, err := azureblob.ProbeCORS(e.be, ctx, []string{"https://evil.example"}); err != nil || len(missing) != 4 {
		t.Errorf("probe from another origin: missing %q, %v; want 4", missing, err)
	}

	t.Run("MissingContainer", func(t *testing.T) {
		be, err := azureblob.Open(ctx, azureblob.Config{Account: p.Account, Container: "signet-missing", Endpoint: p.Endpoint, SharedKey: p.Key, HTTPClient: p.Client()})
		if err != nil {
			t.Fatal(err)
		}
		checks := azDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "bucket", driver.CheckFail, "ContainerNotFound")
		if f := checks["bucket"].Fix; !strings.Contains(f, "az storage container create") {
			t.Errorf("bucket fix %q", f)
		}
		storagetest.WantCheck(t, checks, "clock", driver.CheckOK, "store clock is")
	})

	t.Run("WrongKey", func(t *testing.T) {
		be, err := azureblob.Open(ctx, azureblob.Config{Account: p.Account, Container: e.container, Endpoint: p.Endpoint,
			SharedKey: "d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=", HTTPClient: p.Client()})
		if err != nil {
			t.Fatal(err)
		}
		checks := azDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "credentials", driver.CheckFail, "AuthorizationFailure")
		storagetest.WantCheck(t, checks, "bucket", driver.CheckSkip, "refused")
	})

	t.Run("SkewedClock", func(t *testing.T) {
		be, err := azureblob.Open(ctx, azureblob.Config{Account: p.Account, Container: e.container, Endpoint: p.Endpoint,
			SharedKey: p.Key, HTTPClient: p.Client(), Now: func() time.Time { return time.Now().Add(10 * time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		checks := azDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "clock", driver.CheckFail, "behind signet's")
		if f := checks["clock"].Fix; !strings.Contains(f, "NTP") {
			t.Errorf("clock fix %q", f)
		}
	})
}

// failingToken is an Entra ID credential that cannot get a token.
type failingToken struct{}

func (failingToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("no identity")
}

// TestAzureDiagnoseEntraID checks the credentials of a user-delegation
// connector: a token Azurite accepts gives a key whose expiry is shown; no
// token fails with a fix.
func TestAzureDiagnoseEntraID(t *testing.T) {
	p := testpeer.AzuriteOAuth(t)
	ctr := p.Container(t)
	open := func(cred azcore.TokenCredential) *azureblob.Backend {
		be, err := azureblob.Open(context.Background(), azureblob.Config{
			Account: p.Account, Container: ctr, Endpoint: p.Endpoint, Credential: cred, HTTPClient: p.Client(),
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return be
	}
	checks := azDiagnose(t, open(staticToken{testpeer.AzuriteToken(time.Now())}), &driver.DiagnoseOptions{Origins: []string{"https://app.example.com"}})
	storagetest.WantCheck(t, checks, "credentials", driver.CheckOK, "valid for")
	storagetest.WantCheck(t, checks, "bucket", driver.CheckOK, "listable")
	t.Logf("with Entra ID, cors: %s (%s); versioning: %s (%s)", checks["cors"].Status, checks["cors"].Detail, checks["versioning"].Status, checks["versioning"].Detail)

	checks = azDiagnose(t, open(failingToken{}), nil)
	storagetest.WantCheck(t, checks, "credentials", driver.CheckFail, "cannot obtain a user delegation key")
	if f := checks["credentials"].Fix; !strings.Contains(f, "Entra ID identity") {
		t.Errorf("credentials fix %q", f)
	}
}
