package http_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// from returns an HTTP client whose connections leave from the loopback
// address src, so one machine can play several client networks.
func from(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func doFrom(t *testing.T, c *http.Client, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestTeamNetworks: a team restricted to 127.0.0.2/32 gets URLs only from
// there, and the local store's URLs are bound to that network, so a URL
// carried to another address is refused by the store itself.
func TestTeamNetworks(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "admin", "member")
	for _, bad := range []string{`["10.0.0.1/8"]`, `["nonsense"]`, `["::ffff:10.0.0.0/104"]`} {
		if a := e.do("PATCH", "/v1/teams/ml", tok["admin"], `{"allow_networks":`+bad+`}`); a.Status != 400 {
			t.Errorf("allow_networks %s: %d, want 400", bad, a.Status)
		}
	}
	if a := e.do("PATCH", "/v1/teams/ml", tok["admin"], `{"allow_networks":["127.0.0.2/32","2001:db8::/32"]}`); a.Status != 200 {
		t.Fatalf("set networks: %d %s", a.Status, a.Body)
	}
	c2, c3 := from("127.0.0.2"), from("127.0.0.3")

	// Issuance is refused from outside, and the refusal is on the record.
	if st, _ := doFrom(t, c3, "POST", e.URL+"/v1/teams/ml/presign", tok["member"], presignBody("upload", "x")); st != 403 {
		t.Errorf("presign from 127.0.0.3: %d, want 403", st)
	}
	if st, _ := doFrom(t, c3, "POST", e.URL+"/v1/teams/ml/uploads", tok["member"], `{"key":"big","size":10}`); st != 403 {
		t.Errorf("chunked upload from 127.0.0.3: %d, want 403", st)
	}
	denied := false
	for _, ev := range e.audit() {
		if ev.ClientIP == "127.0.0.3" && ev.Outcome == signet.OutcomeDenied && ev.Code == signet.PermissionDenied {
			denied = true
		}
	}
	if !denied {
		t.Error("the refusal from outside the team's networks is not audited")
	}

	// From inside: a URL bound to 127.0.0.2/32.
	st, body := doFrom(t, c2, "POST", e.URL+"/v1/teams/ml/presign", tok["member"], presignBody("upload", "x"))
	if st != 200 {
		t.Fatalf("presign from 127.0.0.2: %d %s", st, body)
	}
	var resp sighttp.PresignResponse
	json.Unmarshal(body, &resp)
	u := resp.Objects[0].URL
	if !strings.Contains(u, "ip=127.0.0.2%2F32") {
		t.Errorf("URL is not bound to the client's network")
	}
	if st, _ := doFrom(t, c3, "PUT", u, "", "data"); st != 403 {
		t.Errorf("bound URL used from 127.0.0.3: %d, want 403", st)
	}
	if st, _ := doFrom(t, c2, "PUT", u, "", "data"); st != 200 {
		t.Errorf("bound URL used from 127.0.0.2: %d, want 200", st)
	}

	// Lifting the restriction.
	if a := e.do("PATCH", "/v1/teams/ml", tok["admin"], `{"allow_networks":[]}`); a.Status != 200 {
		t.Fatalf("clear networks: %d", a.Status)
	}
	if st, _ := doFrom(t, c3, "POST", e.URL+"/v1/teams/ml/presign", tok["member"], presignBody("download", "x")); st != 200 {
		t.Errorf("presign from 127.0.0.3 after clearing: %d", st)
	}
}
