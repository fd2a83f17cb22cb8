package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// put uploads body to key of team through a presigned URL.
func objPut(t *testing.T, c *sighttp.Client, team, key string, body []byte) {
	t.Helper()
	resp, err := c.Presign(context.Background(), team, &sighttp.PresignRequest{Operation: "upload", Objects: []sighttp.ObjectRequest{{Key: key}}})
	if err != nil {
		t.Fatalf("presign upload %s: %v", key, err)
	}
	o := resp.Objects[0]
	req, _ := http.NewRequest(o.Method, o.URL, bytes.NewReader(body))
	for k, v := range o.Headers {
		req.Header.Set(k, v)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("PUT %s: %v %v", key, r, err)
	}
	r.Body.Close()
}

func objSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestListObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.seed("ml", "viewer", "member", "")
	cvTok := e.seed("cv", "member")["member"]
	// Both teams keep their objects in one bucket, below their prefixes.
	err := e.DB.Update(ctx, func(tx signet.Tx) error {
		if err := tx.SetConnector(&signet.Connector{Team: "ml", Backend: "local", Bucket: "shared", Prefix: "p/"}); err != nil {
			return err
		}
		return tx.SetConnector(&signet.Connector{Team: "cv", Backend: "local", Bucket: "shared", Prefix: "q/"})
	})
	if err != nil {
		t.Fatal(err)
	}
	member := sighttp.NewClient(e.URL, tok["member"])
	bodies := map[string][]byte{
		"runs/1/a": []byte("alpha"), "runs/1/b c+ü": []byte("beta!"), "runs/10/x": []byte("x"), "top": []byte("top"),
	}
	for k, b := range bodies {
		objPut(t, member, "ml", k, b)
	}
	objPut(t, sighttp.NewClient(e.URL, cvTok), "cv", "runs/1/secret", []byte("cv's"))

	viewer := sighttp.NewClient(e.URL, tok["viewer"])
	t.Run("Viewer", func(t *testing.T) {
		l, err := viewer.ListObjects(ctx, "ml", "runs/1/", "", 0)
		if err != nil {
			t.Fatalf("ListObjects: %v", err)
		}
		var keys []string
		for _, o := range l.Objects {
			keys = append(keys, o.Key)
			b := bodies[o.Key]
			if o.Size != int64(len(b)) || o.SHA256 != objSum(b) || o.ETag == "" || o.LastModified == nil {
				t.Errorf("%s listed as %+v; want size %d, sha256 %s, an ETag and a time", o.Key, o, len(b), objSum(b))
			}
		}
		if want := []string{"runs/1/a", "runs/1/b c+ü"}; !slices.Equal(keys, want) || l.NextCursor != "" {
			t.Errorf("listed %q (next %q), want %q", keys, l.NextCursor, want)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		var keys []string
		cur := ""
		for range 10 {
			l, err := viewer.ListObjects(ctx, "ml", "", cur, 1)
			if err != nil {
				t.Fatalf("ListObjects: %v", err)
			}
			if len(l.Objects) > 1 {
				t.Fatalf("a page of limit 1 holds %d objects", len(l.Objects))
			}
			for _, o := range l.Objects {
				keys = append(keys, o.Key)
			}
			if cur = l.NextCursor; cur == "" {
				break
			}
		}
		// Only ml's keys, relative to its prefix, never cv's.
		if want := []string{"runs/1/a", "runs/1/b c+ü", "runs/10/x", "top"}; !slices.Equal(keys, want) {
			t.Errorf("paged listing %q, want %q", keys, want)
		}
	})
	t.Run("ErrInput", func(t *testing.T) {
		cases := []struct {
			who, query, code string
			status           int
		}{
			{"", "", "permission_denied", 403},
			{"viewer", "?prefix=" + url.QueryEscape("../q/"), "invalid_key", 400},
			{"viewer", "?prefix=" + url.QueryEscape("/abs"), "invalid_key", 400},
			{"viewer", "?limit=0", "invalid", 400},
			{"viewer", "?limit=1001", "invalid", 400},
			{"viewer", "?cursor=bm9wZQ", "invalid", 400},
		}
		for _, c := range cases {
			a := e.do("GET", "/v1/teams/ml/objects"+c.query, tok[c.who], "")
			if a.Status != c.status || a.code() != c.code {
				t.Errorf("%s GET objects%s: %d %s, want %d %s", c.who, c.query, a.Status, a.Body, c.status, c.code)
			}
		}
		l, err := viewer.ListObjects(ctx, "ml", "runs/", "", 1)
		if err != nil || l.NextCursor == "" {
			t.Fatalf("ListObjects: %v, %+v", err, l)
		}
		_, err = viewer.ListObjects(ctx, "ml", "top", l.NextCursor, 1)
		if signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("a cursor of another prefix: %v, want invalid", err)
		}
	})
	t.Run("Audit", func(t *testing.T) {
		var allowed, denied int
		for _, ev := range e.audit() {
			if ev.Action != signet.ActionObjectList {
				continue
			}
			switch ev.Outcome {
			case signet.OutcomeAllowed:
				allowed++
				if ev.Team != "ml" || ev.Store != "local" || ev.Bucket != "shared" || ev.ObjectKey[:2] != "p/" {
					t.Errorf("listing recorded as %+v; want team ml, the store and the full prefix", ev)
				}
				if ev.ObjectKey == "p/runs/1/" && ev.ActorUser == "" {
					t.Errorf("listing recorded without its actor: %+v", ev)
				}
			case signet.OutcomeDenied:
				denied++
			}
		}
		if allowed < 6 || denied < 6 {
			t.Errorf("audited %d allowed and %d denied listings; want every page and every refusal", allowed, denied)
		}
	})
	t.Run("PresignSHA256", func(t *testing.T) {
		resp, err := viewer.Presign(ctx, "ml", &sighttp.PresignRequest{Operation: "download", WithSHA256: true,
			Objects: []sighttp.ObjectRequest{{Key: "top"}, {Key: "missing"}}})
		if err != nil {
			t.Fatalf("Presign: %v", err)
		}
		top, missing := resp.Objects[0], resp.Objects[1]
		if top.URL == "" || top.SHA256 != objSum(bodies["top"]) || top.Size == nil || *top.Size != 3 || top.ETag == "" {
			t.Errorf("download with sha256 of top: %+v", top)
		}
		if missing.Error == nil || missing.Error.Code != string(signet.NotFound) || missing.URL != "" {
			t.Errorf("download with sha256 of a missing key: %+v, want not_found", missing)
		}
		resp, err = viewer.Presign(ctx, "ml", &sighttp.PresignRequest{Operation: "download", Objects: []sighttp.ObjectRequest{{Key: "top"}}})
		if err != nil || resp.Objects[0].SHA256 != "" {
			t.Errorf("plain download presign: %+v %v; want no look-up", resp, err)
		}
		_, err = member.Presign(ctx, "ml", &sighttp.PresignRequest{Operation: "upload", WithSHA256: true, Objects: []sighttp.ObjectRequest{{Key: "x"}}})
		if signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("with_sha256 on an upload: %v, want invalid", err)
		}
	})
}
