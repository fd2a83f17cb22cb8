package storage_test

import (
	"context"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// answering is a driver whose listing answers a fixed page, to check what
// the portable layer does with a store that misbehaves. Real stores are
// checked by the conformance suite.
type answering struct {
	driver.Backend
	page  *driver.ListPage
	asked *driver.ListOptions
}

func (a *answering) List(_ context.Context, _ string, o *driver.ListOptions) (*driver.ListPage, error) {
	a.asked = o
	return a.page, nil
}

func TestListChecksTheStore(t *testing.T) {
	ctx := context.Background()
	objs := objsOf
	cases := []struct {
		name string
		page *driver.ListPage
		want []string
		code signet.Code
	}{
		{"ok", &driver.ListPage{Objects: objs("team/a/1", "team/a/2")}, []string{"a/1", "a/2"}, ""},
		{"invalid keys left out", &driver.ListPage{Objects: objs("team/a//x", "team/a/1")}, []string{"a/1"}, ""},
		{"outside the prefix", &driver.ListPage{Objects: objs("team/a/1", "other/a/2")}, nil, signet.Internal},
		{"outside the listing", &driver.ListPage{Objects: objs("team/b")}, nil, signet.Internal},
		{"the prefix itself", &driver.ListPage{Objects: objs("team/")}, nil, signet.Internal},
		{"out of order", &driver.ListPage{Objects: objs("team/a/2", "team/a/1")}, nil, signet.Internal},
		{"repeated", &driver.ListPage{Objects: objs("team/a/1", "team/a/1")}, nil, signet.Internal},
		{"too many", &driver.ListPage{Objects: objs("team/a/1", "team/a/2", "team/a/3")}, nil, signet.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := &answering{Backend: MustOpenStore(t), page: c.page}
			b := storage.Open(be, &signet.Connector{Backend: "test", Bucket: "bkt", Prefix: "team/"})
			res, err := b.List(ctx, "a/", "", 2)
			if signet.ErrorCode(err) != c.code {
				t.Fatalf("List: %v, want code %q", err, c.code)
			}
			if be.asked.Prefix != "team/a/" || be.asked.Limit != 2 {
				t.Errorf("the driver was asked %+v, want prefix team/a/ and limit 2", be.asked)
			}
			if err != nil {
				return
			}
			var got []string
			for _, o := range res.Objects {
				got = append(got, o.Key)
			}
			if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) || (len(got) > 1 && got[1] != c.want[1]) {
				t.Errorf("List = %q, want %q", got, c.want)
			}
		})
	}
}

func TestListCursor(t *testing.T) {
	ctx := context.Background()
	be := &answering{Backend: MustOpenStore(t), page: &driver.ListPage{Objects: objsOf("team/a/1"), Next: "driver-cursor"}}
	b := storage.Open(be, &signet.Connector{Backend: "test", Bucket: "bkt", Prefix: "team/"})
	res, err := b.List(ctx, "a/", "", 1)
	if err != nil || res.Next == "" {
		t.Fatalf("List: %+v, %v; want a next page", res, err)
	}
	if _, err := b.List(ctx, "a/", res.Next, 1); err != nil || be.asked.Cursor != "driver-cursor" || be.asked.Prefix != "team/a/" {
		t.Errorf("second page: %v, driver asked %+v; want the driver's cursor below team/a/", err, be.asked)
	}
	for _, bad := range []string{res.Next + "x", "not base64!", "e30", res.Next[:len(res.Next)-2]} {
		if _, err := b.List(ctx, "a/", bad, 1); signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("cursor %q: %v, want invalid", bad, err)
		}
	}
	if _, err := b.List(ctx, "b/", res.Next, 1); signet.ErrorCode(err) != signet.Invalid {
		t.Errorf("another prefix's cursor: %v, want invalid", err)
	}
	// No Lister: Unimplemented.
	plain := storage.Open(struct{ driver.Backend }{MustOpenStore(t)}, &signet.Connector{Backend: "test", Bucket: "bkt"})
	if _, err := plain.List(ctx, "", "", 0); signet.ErrorCode(err) != signet.Unimplemented {
		t.Errorf("List without a Lister: %v, want unimplemented", err)
	}
}

func objsOf(keys ...string) []driver.ObjectInfo {
	var os []driver.ObjectInfo
	for _, k := range keys {
		os = append(os, driver.ObjectInfo{Key: k})
	}
	return os
}

func TestValidateListPrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "a/b", "runs/4", "a/..x", "a/.", "a/..", "ü/%2e%2e/", "a b"} {
		if err := storage.ValidateListPrefix(p); err != nil {
			t.Errorf("ValidateListPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "/a", "../", "a/../b", "./a", "a//", "a\\b", "a\x00", "a\x7f", "\xff"} {
		if err := storage.ValidateListPrefix(p); signet.ErrorCode(err) != signet.InvalidKey {
			t.Errorf("ValidateListPrefix(%q) = %v, want invalid_key", p, err)
		}
	}
}
