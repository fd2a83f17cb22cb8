package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// Listing limits.
const (
	// MaxListLimit is the most objects one page of a listing holds.
	MaxListLimit = 1000
	// maxCursorLen bounds the cursor a client sends back.
	maxCursorLen = 4096
)

// ListResult is one page of a listing. Keys are relative to the team's
// space.
type ListResult struct {
	Objects []driver.ObjectInfo
	// Next is the opaque cursor of the next page; "" when done.
	Next string
}

// cursor is what the portable layer hands out as a listing cursor: the
// driver's cursor bound to the listing's prefix. It is not secret and not
// signed: whatever a client puts in it, the driver is asked for keys below
// the listing's prefix only.
type cursor struct {
	Prefix string `json:"p"`
	Driver string `json:"d"`
}

// ValidateListPrefix reports whether p may select keys in a listing: ""
// (every key), or the start of a valid key, which may end with "/" (a
// folder) or part way through a segment. The error is a *signet.Error
// with code InvalidKey.
func ValidateListPrefix(p string) error {
	if msg := listPrefixProblem(p); msg != "" {
		return &signet.Error{Op: "storage.ValidateListPrefix", Code: signet.InvalidKey, Msg: "invalid prefix: " + msg}
	}
	return nil
}

func listPrefixProblem(p string) string {
	if p == "" {
		return ""
	}
	if !utf8.ValidString(p) {
		return "must be valid UTF-8"
	}
	for _, r := range p {
		switch {
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return "must not contain control characters"
		case r == '\\':
			return `must not contain a backslash ("\")`
		}
	}
	if p[0] == '/' {
		return `must not start with "/"`
	}
	segs := strings.Split(p, "/")
	// Every segment but the last is complete and must be a valid one; the
	// last may be the beginning of a name.
	for _, seg := range segs[:len(segs)-1] {
		switch seg {
		case "":
			return `must not contain an empty segment ("//")`
		case ".", "..":
			return `must not contain a "." or ".." segment`
		}
	}
	return ""
}

// lister returns the backend's Lister capability or Unimplemented.
func (b *Bucket) lister(op string) (driver.Lister, error) {
	if b.err != nil {
		return nil, b.err
	}
	l, ok := b.backend.(driver.Lister)
	if !ok {
		return nil, errorf(op, signet.Unimplemented, "backend %s cannot list objects", b.name)
	}
	return l, nil
}

// List returns one page of the objects whose keys, relative to the team's
// space, start with prefix, in ascending key order. The driver is asked
// for keys below the connector's prefix only, and every key it answers is
// checked to be there, in ascending order, before the
// prefix is cut off. cursor is "" for the first page, else the Next of the
// page before for the same prefix. limit is 1 to MaxListLimit; 0 means
// MaxListLimit.
//
// Codes: Unimplemented when the backend cannot list; InvalidKey for a bad
// prefix; Invalid for a bad limit or a cursor that is malformed or from
// another listing; Internal when the driver answers a key outside the
// listing; otherwise the driver's.
func (b *Bucket) List(ctx context.Context, prefix, cur string, limit int) (*ListResult, error) {
	const op = "storage.List"
	l, err := b.lister(op)
	if err != nil {
		return nil, err
	}
	if err := ValidateListPrefix(prefix); err != nil {
		return nil, err
	}
	full := b.prefix + prefix
	if len(full) > MaxKeyLen {
		return nil, errorf(op, signet.InvalidKey, "invalid prefix: with the team's prefix it is longer than %d bytes", MaxKeyLen)
	}
	switch {
	case limit == 0:
		limit = MaxListLimit
	case limit < 0 || limit > MaxListLimit:
		return nil, errorf(op, signet.Invalid, "limit must be between 1 and %d", MaxListLimit)
	}
	var c cursor
	if cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(cur) > maxCursorLen || json.Unmarshal(raw, &c) != nil || c.Driver == "" {
			return nil, errorf(op, signet.Invalid, "malformed cursor")
		}
		if c.Prefix != prefix {
			return nil, errorf(op, signet.Invalid, "the cursor belongs to a listing of another prefix")
		}
	}
	page, err := l.List(ctx, b.bucket, &driver.ListOptions{Prefix: full, Cursor: c.Driver, Limit: limit})
	if err != nil {
		return nil, err
	}
	if len(page.Objects) > limit {
		return nil, errorf(op, signet.Internal, "the store answered more objects than asked")
	}
	res := &ListResult{Objects: make([]driver.ObjectInfo, 0, len(page.Objects))}
	last := ""
	for _, o := range page.Objects {
		rel, ok := strings.CutPrefix(o.Key, b.prefix)
		if !ok || !strings.HasPrefix(o.Key, full) || rel == "" {
			return nil, errorf(op, signet.Internal, "the store listed a key outside the listing")
		}
		if rel <= last {
			return nil, errorf(op, signet.Internal, "the store listed keys out of order")
		}
		last = rel
		if ValidateKey(rel) != nil {
			// Not a key signet can sign (for example "a//b", written to
			// the store by something else): leave it out.
			continue
		}
		o.Key = rel
		res.Objects = append(res.Objects, o)
	}
	if page.Next != "" {
		data, _ := json.Marshal(cursor{Prefix: prefix, Driver: page.Next})
		res.Next = base64.RawURLEncoding.EncodeToString(data)
		if len(res.Next) > maxCursorLen {
			return nil, errorf(op, signet.Internal, "the store's cursor is too long")
		}
	}
	return res, nil
}

// Stat describes the object key (relative to the team's space), with its
// SHA-256 when the store knows it. Codes: Unimplemented when the backend
// cannot describe objects; InvalidKey; NotFound; otherwise the driver's.
func (b *Bucket) Stat(ctx context.Context, key string) (*driver.ObjectInfo, error) {
	const op = "storage.Stat"
	if b.err != nil {
		return nil, b.err
	}
	st, ok := b.backend.(driver.Stater)
	if !ok {
		return nil, errorf(op, signet.Unimplemented, "backend %s cannot describe objects", b.name)
	}
	full, err := b.fullKey(key)
	if err != nil {
		return nil, err
	}
	info, err := st.Stat(ctx, b.bucket, full)
	if err != nil {
		return nil, err
	}
	o := *info
	o.Key = key
	if o.SHA256 != nil && len(o.SHA256) != 32 {
		o.SHA256 = nil
	}
	return &o, nil
}
