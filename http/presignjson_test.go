package http

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// jsonEncoded is what writeJSON sends for v.
func jsonEncoded(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// presignStrings are the values the answers are built from: the plain
// ones the fast path copies, and every kind encoding/json escapes.
var presignStrings = []string{
	"", "datasets/shard-00001.tar", "GET", "PUT",
	"http://127.0.0.1:8080/blob/ml/a?X-Signet-Expires=1&X-Signet-Signature=ab%2Fcd&grant=x",
	"https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261127",
	`quote " and backslash \`, "<script>&amp;</script>", "tab\tnewline\nreturn\r",
	"\b\f\x00\x01\x1f\x7f", "naïve – 日本語 🙂", "bad \xff\xfe utf-8", "line\u2028para\u2029",
	"x-amz-server-side-encryption", "Content-Type", "application/octet-stream", "\"etag-1\"",
	"InvalidKey", "invalid key: must not contain \"..\" segments",
}

func randomResult(r *rand.Rand) ObjectResult {
	pick := func() string { return presignStrings[r.IntN(len(presignStrings))] }
	o := ObjectResult{Key: pick(), Method: pick(), URL: pick(), ETag: pick(), SHA256: pick()}
	switch r.IntN(3) {
	case 1:
		o.Headers = map[string]string{}
	case 2:
		o.Headers = map[string]string{}
		for range 1 + r.IntN(4) {
			o.Headers[pick()] = pick()
		}
	}
	if r.IntN(2) == 0 {
		at := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
		if r.IntN(2) == 0 {
			at = at.Truncate(time.Second) // no fraction
		}
		if r.IntN(4) == 0 {
			at = at.In(time.FixedZone("", -7*3600))
		}
		o.ExpiresAt = &at
	}
	if r.IntN(3) == 0 {
		o.Error = &ObjectError{Code: pick(), Message: pick()}
	}
	if r.IntN(2) == 0 {
		n := r.Int64N(1<<40) - 5
		o.Size = &n
	}
	return o
}

func TestPresignJSON(t *testing.T) {
	// appendJSON names every field by hand: a field added to these types
	// must be added there and to randomResult too.
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[PresignResponse](): 1, reflect.TypeFor[ObjectResult](): 9, reflect.TypeFor[ObjectError](): 2,
	} {
		if typ.NumField() != n {
			t.Fatalf("%s has %d fields, appendJSON and randomResult know %d", typ, typ.NumField(), n)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []PresignResponse{{}, {Objects: []ObjectResult{}}}
	for range 5000 {
		resp := PresignResponse{Objects: make([]ObjectResult, 1+r.IntN(3))}
		for i := range resp.Objects {
			resp.Objects[i] = randomResult(r)
		}
		cases = append(cases, resp)
	}
	// Years encoding/json writes but the fast path leaves to it.
	for _, y := range []int{0, 9999, 10000, -1} {
		at := time.Date(y, 1, 2, 3, 4, 5, 6, time.UTC)
		cases = append(cases, PresignResponse{Objects: []ObjectResult{{Key: "k", ExpiresAt: &at}}})
	}
	for i, resp := range cases {
		got := resp.appendJSON(nil)
		want, err := json.Marshal(resp)
		if err != nil {
			// encoding/json refuses a year past 9999; the answer must
			// still be JSON, and expiries are never that far.
			if !json.Valid(got) {
				t.Errorf("case %d: not JSON: %s", i, got)
			}
			continue
		}
		want = append(want, '\n')
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestWritePresign(t *testing.T) {
	at := time.Date(2026, 11, 27, 19, 0, 0, 123456000, time.UTC)
	resp := &PresignResponse{Objects: []ObjectResult{{
		Key: "a&b", Method: "GET", URL: "http://x/a?b=1&c=2", Headers: map[string]string{}, ExpiresAt: &at,
	}}}
	var direct, viaJSON *httptest.ResponseRecorder = httptest.NewRecorder(), httptest.NewRecorder()
	writePresign(direct, resp)
	writeJSON(viaJSON, 200, resp)
	if direct.Code != viaJSON.Code || !bytes.Equal(direct.Body.Bytes(), viaJSON.Body.Bytes()) {
		t.Errorf("writePresign: %d %s\nwriteJSON: %d %s", direct.Code, direct.Body, viaJSON.Code, viaJSON.Body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if direct.Header().Get(h) != viaJSON.Header().Get(h) {
			t.Errorf("%s: %q, writeJSON sends %q", h, direct.Header().Get(h), viaJSON.Header().Get(h))
		}
	}
}

// BenchmarkPresignJSON: a one-object answer as presign sends it, with
// encoding/json (the baseline) and directly, in the same run.
func BenchmarkPresignJSON(b *testing.B) {
	at := time.Now().Add(time.Hour).UTC()
	resp := &PresignResponse{Objects: []ObjectResult{{
		Key: "datasets/shard-00001.tar", Method: "GET",
		URL:     "http://127.0.0.1:8080/blob/default/datasets/shard-00001.tar?X-Signet-Expires=1795800000&X-Signet-Grant=01abcdefghijklmnopqrstuv&X-Signet-Method=GET&X-Signet-Signature=3q2-7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs",
		Headers: map[string]string{}, ExpiresAt: &at,
	}}}
	var ref float64
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			json.NewEncoder(&buf).Encode(resp)
		}
		ref = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("direct", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			buf.Write(resp.appendJSON(make([]byte, 0, 1024)))
		}
		if ref > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ref, "x-encoding-json")
		}
	})
}
