package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// listAll follows every page of a listing of b with page size limit and
// returns the keys, checking each page's size and order.
func listAll(t *testing.T, b *storage.Bucket, prefix string, limit int) ([]driver.ObjectInfo, int) {
	t.Helper()
	var all []driver.ObjectInfo
	cur, pages := "", 0
	for {
		res, err := b.List(context.Background(), prefix, cur, limit)
		if err != nil {
			t.Fatalf("List(%q) page %d: %v", prefix, pages+1, err)
		}
		pages++
		if limit > 0 && len(res.Objects) > limit {
			t.Fatalf("List page holds %d objects, asked at most %d", len(res.Objects), limit)
		}
		all = append(all, res.Objects...)
		if res.Next == "" {
			break
		}
		if pages > 1000 {
			t.Fatal("List does not end")
		}
		cur = res.Next
	}
	return all, pages
}

func keysOf(objs []driver.ObjectInfo) []string {
	ks := make([]string, len(objs))
	for i, o := range objs {
		ks[i] = o.Key
	}
	return ks
}

func (s *suite) testList(t *testing.T) {
	ctx := context.Background()
	if _, ok := s.h.Backend.(driver.Lister); !ok {
		_, err := s.b.List(ctx, s.base, "", 0)
		WantCode(t, "List on a backend without listing", err, signet.Unimplemented)
		return
	}
	// Keys with characters that need escaping in URLs and XML, keys whose
	// order depends on "-" sorting before "/", and a sibling that shares
	// the listing's prefix as a string but not as a folder.
	dir := s.base + "list/"
	rels := []string{
		"a b", "a+b&c=d<e>", "a-b", "a/b", "a/c/d", "ü/x", "%2e%2ex/y", "z", "日本語.txt", "q?x#y",
	}
	bodies := map[string][]byte{}
	for i, r := range rels {
		body := RandomBytes(100 + i)
		bodies[dir+r] = body
		s.put(t, dir+r, body)
	}
	s.put(t, s.base+"listx", []byte("outside"))
	s.put(t, s.base+"lis", []byte("outside"))
	want := make([]string, len(rels))
	for i, r := range rels {
		want[i] = dir + r
	}
	slices.Sort(want)

	t.Run("All", func(t *testing.T) {
		objs, _ := listAll(t, s.b, dir, 0)
		if got := keysOf(objs); !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", dir, got, want)
		}
		now := s.now()
		for _, o := range objs {
			body := bodies[o.Key]
			if o.Size != int64(len(body)) {
				t.Errorf("%s: size %d, want %d", o.Key, o.Size, len(body))
			}
			if sum := sha256.Sum256(body); o.SHA256 != nil && !bytes.Equal(o.SHA256, sum[:]) {
				t.Errorf("%s: listed SHA-256 %x is not the object's %x", o.Key, o.SHA256, sum)
			}
			if d := o.LastModified.Sub(now); o.LastModified.IsZero() || d > time.Hour || d < -time.Hour {
				t.Errorf("%s: last modified %v, want about now (%v)", o.Key, o.LastModified, now)
			}
		}
	})
	t.Run("Paging", func(t *testing.T) {
		objs, pages := listAll(t, s.b, dir, 3)
		if got := keysOf(objs); !slices.Equal(got, want) {
			t.Fatalf("List(%q) in pages of 3 = %q, want %q", dir, got, want)
		}
		if pages < (len(want)+2)/3 {
			t.Errorf("List in pages of 3 took %d pages for %d keys", pages, len(want))
		}
		objs, _ = listAll(t, s.b, dir, 1)
		if got := keysOf(objs); !slices.Equal(got, want) {
			t.Fatalf("List(%q) in pages of 1 = %q, want %q", dir, got, want)
		}
	})
	t.Run("PartialPrefix", func(t *testing.T) {
		objs, _ := listAll(t, s.b, dir+"a", 2)
		wantA := []string{dir + "a b", dir + "a+b&c=d<e>", dir + "a-b", dir + "a/b", dir + "a/c/d"}
		slices.Sort(wantA)
		if got := keysOf(objs); !slices.Equal(got, wantA) {
			t.Errorf("List(%q) = %q, want %q", dir+"a", got, wantA)
		}
		objs, _ = listAll(t, s.b, s.base+"lis", 0)
		if n := len(objs); n != len(want)+2 {
			t.Errorf("List(%q) found %d objects, want %d", s.base+"lis", n, len(want)+2)
		}
		objs, _ = listAll(t, s.b, dir+"nothing-here/", 0)
		if len(objs) != 0 {
			t.Errorf("List of an empty prefix = %q, want nothing", keysOf(objs))
		}
	})
	t.Run("Confined", func(t *testing.T) {
		// A connector whose prefix is the listing's folder sees its keys
		// relative to it, and nothing of its siblings.
		inner := storage.Open(s.h.Backend, &signet.Connector{Backend: s.h.Name, Bucket: s.h.Bucket, Prefix: s.h.Prefix + dir})
		objs, _ := listAll(t, inner, "", 4)
		wantRel := slices.Clone(rels)
		slices.Sort(wantRel)
		if got := keysOf(objs); !slices.Equal(got, wantRel) {
			t.Errorf("List through a connector with prefix %q = %q, want %q", s.h.Prefix+dir, got, wantRel)
		}
	})
	t.Run("ErrBadRequest", func(t *testing.T) {
		res, err := s.b.List(ctx, dir, "", 1)
		if err != nil || res.Next == "" {
			t.Fatalf("List with limit 1 = %v, %v; want a next page", res, err)
		}
		_, err = s.b.List(ctx, s.base, res.Next, 1)
		WantCode(t, "List with another listing's cursor", err, signet.Invalid)
		_, err = s.b.List(ctx, dir, res.Next+"x", 1)
		WantCode(t, "List with a malformed cursor", err, signet.Invalid)
		_, err = s.b.List(ctx, "../", "", 1)
		WantCode(t, "List of ../", err, signet.InvalidKey)
		_, err = s.b.List(ctx, "/abs", "", 1)
		WantCode(t, "List of /abs", err, signet.InvalidKey)
		_, err = s.b.List(ctx, dir, "", storage.MaxListLimit+1)
		WantCode(t, "List with a limit too large", err, signet.Invalid)
	})
}

func (s *suite) testStat(t *testing.T) {
	ctx := context.Background()
	if _, ok := s.h.Backend.(driver.Stater); !ok {
		_, err := s.b.Stat(ctx, s.base+"stat")
		WantCode(t, "Stat on a backend without it", err, signet.Unimplemented)
		return
	}
	key := s.base + "stat/a b+ü.bin"
	body := RandomBytes(5000)
	sum := sha256.Sum256(body)
	if s.h.BindsChecksum {
		// An upload whose SHA-256 the store checked reports it.
		u := s.sign(t, http.MethodPut, key, func(o *driver.SignOptions) { o.SHA256 = sum[:] })
		if st, _, _ := s.do(t, u.Method, u.URL, u.Headers, body); st != http.StatusOK {
			t.Fatalf("setup: PUT with a checksum answered %d", st)
		}
	} else {
		s.put(t, key, body)
	}
	info, err := s.b.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(body)) {
		t.Errorf("Stat = key %q size %d, want %q and %d", info.Key, info.Size, key, len(body))
	}
	if s.h.BindsChecksum && !bytes.Equal(info.SHA256, sum[:]) {
		t.Errorf("Stat of an upload with a checked SHA-256 reports %x, want %x", info.SHA256, sum)
	}
	if info.SHA256 != nil && !bytes.Equal(info.SHA256, sum[:]) {
		t.Errorf("Stat reports SHA-256 %x, not the object's %x", info.SHA256, sum)
	}
	_, _, h := s.get(t, key)
	if e := h.Get("ETag"); info.ETag != "" && e != "" && trimQuotes(e) != trimQuotes(info.ETag) {
		t.Errorf("Stat reports ETag %s, GET answers %s", info.ETag, e)
	}

	// Overwritten without a checksum: no stale SHA-256 is reported.
	body2 := RandomBytes(4000)
	s.put(t, key, body2)
	sum2 := sha256.Sum256(body2)
	if info, err := s.b.Stat(ctx, key); err != nil {
		t.Errorf("Stat after overwrite: %v", err)
	} else if info.Size != int64(len(body2)) || info.SHA256 != nil && !bytes.Equal(info.SHA256, sum2[:]) {
		t.Errorf("Stat after overwrite = size %d SHA-256 %x, want size %d and no SHA-256 or %x", info.Size, info.SHA256, len(body2), sum2)
	}

	_, err = s.b.Stat(ctx, s.base+"stat/missing")
	WantCode(t, "Stat of a missing object", err, signet.NotFound)

	if !s.h.Multipart || !s.h.multipartChecksum() {
		return
	}
	// A chunked upload completed with a verified SHA-256 reports it.
	mkey := s.base + "stat/chunked ü.bin"
	data := RandomBytes(300 << 10)
	msum := sha256.Sum256(data)
	id, err := s.b.CreateMultipart(ctx, mkey, &driver.MultipartOptions{Size: int64(len(data)), PartSize: int64(len(data)), SHA256: msum[:]})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	etags := s.putParts(t, mkey, id, data, int64(len(data)), []int{1})
	if err := s.b.CompleteMultipart(ctx, mkey, id, []driver.Part{{Number: 1, ETag: etags[1], Size: int64(len(data))}}, msum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	info, err = s.b.Stat(ctx, mkey)
	if err != nil {
		t.Fatalf("Stat of a chunked upload: %v", err)
	}
	if !bytes.Equal(info.SHA256, msum[:]) {
		t.Errorf("Stat of a chunked upload completed with a verified SHA-256 reports %x, want %x", info.SHA256, msum)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Stat of a chunked upload: size %d, want %d", info.Size, len(data))
	}
}
