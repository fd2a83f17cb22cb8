package transfer

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

// emptyUnbound uploads an empty object to a store that cannot bind a size
// or SHA-256 to a single upload URL (Azure: a SAS binds no request body),
// where a chunked upload, which needs at least one byte, cannot stand in.
// It sends the empty body through a URL that binds neither, then reads
// the object back through a download URL and requires it to be empty: the
// upload is verified like every other, and bytes someone else wrote
// through the URL meanwhile fail it with ChecksumMismatch.
func (u *uploader) emptyUnbound(ctx context.Context) error {
	req := &sighttp.PresignRequest{
		Operation: "upload",
		Objects:   []sighttp.ObjectRequest{{Key: u.key, ContentType: u.o.ContentType}},
	}
	sign := func(ctx context.Context) (*target, error) { return u.presign(ctx, req) }
	t, err := sign(ctx)
	if err != nil {
		return err
	}
	if _, err := u.put(ctx, t, sign, u.name(), 0, 0); err != nil {
		return err
	}
	return u.checkEmpty(ctx)
}

// checkEmpty reads the object back and fails unless it holds no bytes.
func (u *uploader) checkEmpty(ctx context.Context) error {
	what := "reading back " + u.name()
	req := &sighttp.PresignRequest{Operation: "download", Objects: []sighttp.ObjectRequest{{Key: u.key}}}
	sign := func(ctx context.Context) (*target, error) { return u.presign(ctx, req) }
	t, err := sign(ctx)
	if err != nil {
		return err
	}
	rt := &retrier{j: &u.job, what: what}
	for {
		if t.stale(time.Now()) {
			if t, err = sign(ctx); err != nil {
				return err
			}
		}
		hreq, err := u.newRequest(ctx, t, nil, 0)
		if err != nil {
			return err
		}
		resp, err := u.o.HTTP.Do(hreq)
		if err != nil {
			if err := rt.transient(ctx, sanitize(err, t), 0); err != nil {
				return err
			}
			continue
		}
		switch classify(resp.StatusCode) {
		case statusOK:
			n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1))
			resp.Body.Close()
			switch {
			case err != nil:
				if err := rt.transient(ctx, u.errorf(signet.Unavailable, err, "%s", what), 0); err != nil {
					return err
				}
				continue
			case n != 0 || resp.StatusCode != http.StatusOK:
				return u.errorf(signet.ChecksumMismatch, nil, "%s: the store holds bytes, not the empty object uploaded", u.name())
			}
			return nil
		case statusRefused:
			discard(resp)
			if err := rt.refused(resp); err != nil {
				return err
			}
			if t, err = sign(ctx); err != nil {
				return err
			}
		case statusTransient:
			serr := u.storeError(what, resp)
			wish := retryAfter(resp)
			discard(resp)
			if err := rt.transient(ctx, serr, wish); err != nil {
				return err
			}
		default:
			serr := u.storeError(what, resp)
			discard(resp)
			return serr
		}
	}
}
