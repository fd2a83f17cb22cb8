package fileblob_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// TestOnServe checks the report the store gives of each request made with
// a grant id: served, refused after its signature checked out, and of
// every operation; requests whose signature does not check out, or
// without a grant id, are not reported.
func TestOnServe(t *testing.T) {
	var mu sync.Mutex
	var got []*signet.UsageEvent
	e := MustOpen(t, fileblob.Options{OnServe: func(ev *signet.UsageEvent) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
	}})
	// last returns the one report made since the previous call.
	last := func(t *testing.T) *signet.UsageEvent {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		defer func() { got = nil }()
		if len(got) != 1 {
			t.Fatalf("%d reports, want 1", len(got))
		}
		return got[0]
	}
	grant := func(g string) func(*driver.SignOptions) {
		return func(o *driver.SignOptions) { o.GrantID = g }
	}
	var secrets []string // signatures of the URLs used
	sigOf := func(u string) string {
		pu, _ := url.Parse(u)
		secrets = append(secrets, pu.Query().Get("sig"))
		return u
	}

	put := e.sign(http.MethodPut, "k", grant("g-put"))
	w := e.do(http.MethodPut, sigOf(put.URL), nil, []byte("12345"))
	ev := last(t)
	if w.Code != http.StatusOK || *ev != (signet.UsageEvent{
		Time: e.clock.Now(), Source: signet.UsageSourceLocal, RequestID: w.Header().Get("X-Request-Id"),
		GrantID: "g-put", Bucket: "bkt", ObjectKey: "team/k", Method: "PUT", Operation: "PutObject",
		Status: 200, BytesReceived: 5, RemoteAddr: "192.0.2.1",
	}) || ev.RequestID == "" {
		t.Errorf("PUT answered %d, reported %+v", w.Code, ev)
	}

	get := e.sign(http.MethodGet, "k", grant("g-get"))
	w = e.do(http.MethodGet, sigOf(get.URL), nil, nil)
	if ev := last(t); w.Code != 200 || ev.GrantID != "g-get" || ev.Operation != "GetObject" || ev.Method != "GET" ||
		ev.Status != 200 || ev.BytesSent != 5 || ev.BytesReceived != 0 || !ev.Succeeded() {
		t.Errorf("GET answered %d, reported %+v", w.Code, ev)
	}
	head := e.sign(http.MethodHead, "k", grant("g-head"))
	e.do(http.MethodHead, sigOf(head.URL), nil, nil)
	if ev := last(t); ev.Operation != "HeadObject" || ev.Status != 200 || ev.BytesSent != 0 {
		t.Errorf("HEAD reported %+v", ev)
	}

	// Refused after the signature checked out: a PUT URL used for GET.
	w = e.do(http.MethodGet, put.URL, nil, nil)
	if ev := last(t); w.Code != http.StatusForbidden || ev.GrantID != "g-put" || ev.Operation != "GetObject" || ev.Succeeded() ||
		ev.Status != 403 || ev.BytesSent != int64(w.Body.Len()) || ev.RequestID != w.Header().Get("X-Request-Id") {
		t.Errorf("GET with a PUT URL answered %d, reported %+v", w.Code, ev)
	}

	id, err := e.b.CreateMultipart(context.Background(), "big", &driver.MultipartOptions{Size: storage.MinPartSize + 5, PartSize: storage.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	part := e.sign(http.MethodPut, "big", func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.GrantID = id, 2, "g-part" })
	w = e.do(http.MethodPut, sigOf(part.URL), nil, []byte("abcde"))
	if ev := last(t); w.Code != 200 || ev.Operation != "PutObjectPart" || ev.BytesReceived != 5 || ev.ObjectKey != "team/big" {
		t.Errorf("part PUT answered %d, reported %+v", w.Code, ev)
	}

	// Not reported: no grant id, a malformed query, a method never served,
	// a tampered signature with the grant of a real URL, a grant id
	// changed in the query (the signature no longer matches): only a URL
	// the store signed makes it report anything.
	noGrant := e.sign(http.MethodGet, "k", nil)
	e.do(http.MethodGet, noGrant.URL, nil, nil)
	if w := e.do(http.MethodGet, strings.Replace(get.URL, "sig=", "sig=A", 1), nil, nil); w.Code != http.StatusForbidden {
		t.Errorf("tampered GET answered %d", w.Code)
	}
	if w := e.do(http.MethodGet, strings.Replace(get.URL, "grant=g-get", "grant=g-other", 1), nil, nil); w.Code != http.StatusForbidden {
		t.Errorf("GET with another grant answered %d", w.Code)
	}
	e.do(http.MethodGet, strings.Replace(get.URL, "grant=", "grant=%00", 1), nil, nil)
	e.do(http.MethodGet, "/blob/bkt/team/k", nil, nil)
	e.do(http.MethodDelete, get.URL, nil, nil)
	if len(got) != 0 {
		t.Errorf("requests without a grant id the store signed reported: %+v", got)
	}

	// The reports hold no query and no signature.
	all, _ := json.Marshal(got)
	for _, s := range secrets {
		if s == "" || strings.Contains(string(all), s) {
			t.Errorf("a report holds a signature (or a URL had none): %q", s)
		}
	}
}
