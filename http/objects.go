package http

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// ObjectInfo describes one object of a team's space in a listing.
type ObjectInfo struct {
	// Key is relative to the team's space, as in presign requests.
	Key          string     `json:"key"`
	Size         int64      `json:"size"`
	LastModified *time.Time `json:"last_modified,omitempty"`
	// ETag is the store's entity tag, quotes included.
	ETag string `json:"etag,omitempty"`
	// SHA256 (hex) is the object's SHA-256 when the store knows it in a
	// listing (the local store does; S3 lists none).
	SHA256 string `json:"sha256,omitempty"`
}

// ObjectList is one page of a listing.
type ObjectList struct {
	Objects []ObjectInfo `json:"objects"`
	// NextCursor, when set, asks for the next page (cursor=...).
	NextCursor string `json:"next_cursor,omitempty"`
}

// handleListObjects answers GET /v1/teams/{team}/objects?prefix=&cursor=&limit=
// with one page of the team's objects whose keys start with prefix. Any
// member with read permission may list; the team's network allow-list
// applies as for presign, and keys never leave the connector's prefix.
func (s *Server) handleListObjects(w http.ResponseWriter, r *http.Request) {
	team := r.PathValue("team")
	ev := s.event(r, signet.ActionObjectList)
	ev.Team = team
	q := r.URL.Query()
	prefix, cur := q.Get("prefix"), q.Get("cursor")
	limit := 0
	var err error
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > storage.MaxListLimit {
			err = signet.Errorf(signet.Invalid, "limit must be a number from 1 to %d", storage.MaxListLimit)
		}
	}
	ev.ObjectKey = auditKey(prefix)
	var acc *access
	if err == nil {
		acc, err = s.teamBucket(r, team, signet.PermRead)
	}
	if acc != nil {
		ev.Store, ev.Bucket = acc.conn.Backend, acc.conn.Bucket
		ev.ObjectKey = auditKey(acc.bucket.StoreKey(prefix))
	}
	var res *storage.ListResult
	if err == nil {
		res, err = acc.bucket.List(r.Context(), prefix, cur, limit)
	}
	if err != nil {
		if c := signet.ErrorCode(err); c == signet.Internal || c == signet.Unavailable {
			s.logger.ErrorContext(r.Context(), "listing", "request_id", requestID(r), "err", err)
		}
		s.deny(w, r, ev, err)
		return
	}
	out := ObjectList{Objects: make([]ObjectInfo, len(res.Objects)), NextCursor: res.Next}
	for i, o := range res.Objects {
		out.Objects[i] = objectInfo(&o)
	}
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func objectInfo(o *driver.ObjectInfo) ObjectInfo {
	info := ObjectInfo{Key: o.Key, Size: o.Size, ETag: o.ETag}
	if !o.LastModified.IsZero() {
		t := o.LastModified.UTC()
		info.LastModified = &t
	}
	if o.SHA256 != nil {
		info.SHA256 = hex.EncodeToString(o.SHA256)
	}
	return info
}

// maxStatParallel bounds the store requests one presign request makes to
// describe the objects it names.
const maxStatParallel = 8

// statResult is what the store says of one object of a download presign
// that asked for checksums.
type statResult struct {
	info *driver.ObjectInfo
	err  error
}

// statObjects describes each object of a download presign with
// with_sha256, a few at a time.
func statObjects(ctx context.Context, b *storage.Bucket, objs []ObjectRequest) []statResult {
	res := make([]statResult, len(objs))
	sem := make(chan struct{}, maxStatParallel)
	var wg sync.WaitGroup
	for i, o := range objs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res[i].info, res[i].err = b.Stat(ctx, o.Key)
		})
	}
	wg.Wait()
	return res
}

// applyStat fills a download result with what the store said of the
// object. A backend that cannot describe objects leaves the result as it
// is (the client then has no SHA-256 to check); a missing object, or a
// store that cannot be asked, fails the object.
func applyStat(res *ObjectResult, st statResult) error {
	switch signet.ErrorCode(st.err) {
	case "":
	case signet.Unimplemented:
		return nil
	default:
		return st.err
	}
	res.ETag = st.info.ETag
	size := st.info.Size
	res.Size = &size
	if st.info.SHA256 != nil {
		res.SHA256 = hex.EncodeToString(st.info.SHA256)
	}
	return nil
}

// ListObjects returns one page of the objects of team whose keys start
// with prefix; cursor is "" for the first page, else the NextCursor of
// the page before; limit 0 lets the server choose (at most 1000).
func (c *Client) ListObjects(ctx context.Context, team, prefix, cursor string, limit int) (*ObjectList, error) {
	q := make([]string, 0, 3)
	add := func(k, v string) { q = append(q, k+"="+url.QueryEscape(v)) }
	if prefix != "" {
		add("prefix", prefix)
	}
	if cursor != "" {
		add("cursor", cursor)
	}
	if limit > 0 {
		add("limit", strconv.Itoa(limit))
	}
	path := teamPath(team, "objects")
	for i, kv := range q {
		if i == 0 {
			path += "?" + kv
		} else {
			path += "&" + kv
		}
	}
	var out ObjectList
	return &out, c.do(ctx, "GET", path, nil, &out)
}
