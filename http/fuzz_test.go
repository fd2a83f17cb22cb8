package http_test

import (
	"encoding/json"
	"testing"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/storage"
)

// FuzzPresignRequest sends arbitrary bodies to the presign endpoint of a
// real server. Whatever arrives, the server must not fail internally, and
// every URL it issues must be for a valid key.
func FuzzPresignRequest(f *testing.F) {
	for _, s := range []string{
		`{"operation":"download","objects":[{"key":"a"}]}`,
		`{"operation":"upload","objects":[{"key":"a/b","size":3,"content_type":"text/plain","sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}],"expires_in":60}`,
		`{"operation":"download","objects":[{"key":"../x"},{"key":"ok"}]}`,
		`{"operation":"upload","objects":[{"key":"a\u0000b"}]}`,
		`[[[[[[`,
		`{"operation":"download","objects":[{"key":"a"}]}trailing`,
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	tok := e.seed("ml", "member")["member"]
	f.Fuzz(func(t *testing.T, body []byte) {
		et := *e
		et.t = t
		a := et.do("POST", "/v1/teams/ml/presign", tok, string(body))
		if a.Status >= 500 {
			t.Fatalf("status %d for %q: %s", a.Status, body, a.Body)
		}
		if a.Status != 200 {
			return
		}
		var resp sighttp.PresignResponse
		if err := json.Unmarshal(a.Body, &resp); err != nil {
			t.Fatalf("200 with malformed body: %v", err)
		}
		for _, o := range resp.Objects {
			if o.URL != "" {
				if err := storage.ValidateKey(o.Key); err != nil {
					t.Fatalf("URL issued for invalid key %q", o.Key)
				}
			}
		}
	})
}
