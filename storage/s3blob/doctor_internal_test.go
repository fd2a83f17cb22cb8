package s3blob

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/signetdev/signet/storage/driver"
)

// TestCORSRules checks the CORS rule evaluation on its own, since not every
// S3-compatible test server implements bucket CORS.
func TestCORSRules(t *testing.T) {
	rules := []types.CORSRule{
		{AllowedOrigins: []string{"https://*.example.com"}, AllowedMethods: []string{"get", "HEAD"}, ExposeHeaders: []string{"etag"}},
		{AllowedOrigins: []string{"https://app.example.com"}, AllowedMethods: []string{"PUT"}},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}},
	}
	for _, tc := range []struct {
		origin string
		want   []string
	}{
		{"https://app.example.com", nil},
		{"https://other.example.com", []string{"https://other.example.com PUT"}},
		{"https://evil.com", []string{"https://evil.com HEAD", "https://evil.com PUT", "https://evil.com (ETag not exposed)"}},
		{"http://app.example.com", []string{"http://app.example.com HEAD", "http://app.example.com PUT", "http://app.example.com (ETag not exposed)"}},
	} {
		if got := corsMissing(rules, []string{tc.origin}); !slices.Equal(got, tc.want) {
			t.Errorf("%s: missing %q, want %q", tc.origin, got, tc.want)
		}
	}
	if originMatches("https://*.example.com", "https://example.com") {
		t.Error("wildcard matched the bare domain")
	}
}

func TestDeniedOutside(t *testing.T) {
	const policy = `{"Statement":[
	 {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*","Condition":{"NotIpAddress":{"aws:SourceIp":"9.9.9.9/32"}}},
	 {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"NotIpAddress":{"aws:SourceIp":"8.8.8.8/32"}}},
	 {"Effect":"Deny","Action":["s3:*"],"Resource":["arn:aws:s3:::b/other/*"],"Condition":{"NotIpAddress":{"aws:SourceIp":"7.7.7.7/32"}}},
	 {"Effect":"Deny","Action":["s3:*"],"Resource":["arn:aws:s3:::b/ml/*"],"Condition":{"NotIpAddress":{"aws:SourceIp":["10.1.2.3/16","2001:db8::1"]}}}]}`
	got, err := deniedOutside(policy, "b", "ml/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.1.0.0/16", "2001:db8::1/128"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, _ := deniedOutside(policy, "b", "ml2/"); got != nil {
		t.Errorf("prefix ml2/ covered by %q", got)
	}
	if got, _ := deniedOutside(policy, "b", "other/x/"); !slices.Equal(got, []string{"7.7.7.7/32"}) {
		t.Errorf("nested prefix: %q", got)
	}
	if _, err := deniedOutside(`{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::b/*","Condition":{"NotIpAddress":{"aws:SourceIp":"nonsense"}}}]}`, "b", ""); err == nil {
		t.Error("a malformed address was accepted")
	}
	if _, err := deniedOutside("not json", "b", ""); err == nil {
		t.Error("not JSON accepted")
	}
}

// TestCORSProbe checks the browser-style probe against a store that
// allows one origin and exposes no headers: the test S3 server allows
// every origin, so it cannot show the refusals.
func TestCORSProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.URL.RawQuery != "" {
			t.Errorf("probe sent credentials or a query: %v", r.URL)
		}
		if !strings.HasSuffix(r.URL.Path, "/bkt/ml/signet-doctor-cors-probe") {
			t.Errorf("probe path %q", r.URL.Path)
		}
		if r.Header.Get("Origin") == "https://ok.example.com" {
			w.Header().Set("Access-Control-Allow-Origin", "https://ok.example.com")
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	b, err := Open(context.Background(), Config{Bucket: "bkt", Prefix: "ml/", Endpoint: srv.URL, PathStyle: true,
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.probeCORS(context.Background(), []string{"https://ok.example.com", "https://no.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://ok.example.com PUT", "https://ok.example.com (ETag not exposed)",
		"https://no.example.com GET", "https://no.example.com HEAD", "https://no.example.com PUT", "https://no.example.com (ETag not exposed)"}
	if !slices.Equal(got, want) {
		t.Errorf("missing %q\nwant %q", got, want)
	}
}

// TestCheckCredentialsStaticSession: the doctor tells permanent static
// keys from temporary ones, and shows how long the latter have left.
func TestCheckCredentialsStaticSession(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		token   string
		expires time.Time
		status  string
		detail  string
	}{
		{"", time.Time{}, driver.CheckOK, "does not expire"},
		{"tok", now.Add(2 * time.Hour), driver.CheckOK, "valid for 2h0m0s"},
		{"tok", now.Add(10 * time.Minute), driver.CheckWarn, "valid for 10m0s"},
		{"tok", now.Add(-time.Minute), driver.CheckFail, "temporary static keys"},
		{"tok", time.Time{}, driver.CheckFail, "unknown expiry"},
	} {
		b, err := Open(context.Background(), Config{
			Bucket: "bucket", AccessKeyID: "a", SecretAccessKey: "s", SessionToken: c.token, SessionExpires: c.expires,
			Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		got := b.checkCredentials(context.Background())
		if got.Status != c.status || !strings.Contains(got.Detail, c.detail) {
			t.Errorf("token %q, expires %v: %s %q, want %s with %q", c.token, c.expires, got.Status, got.Detail, c.status, c.detail)
		}
	}
}
