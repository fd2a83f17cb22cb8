package http

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// PartURLLifetime is how long a part URL lives (never past its session's
// deadline). Part URLs are short-lived handles on a session that lasts the
// team's upload cap; clients ask for fresh ones as they go.
const PartURLLifetime = time.Hour

// CreateUploadRequest starts a chunked upload.
type CreateUploadRequest struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	PartSize    int64  `json:"part_size,omitempty"`
}

// UploadInfo describes a chunked upload session.
type UploadInfo struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	PartSize    int64     `json:"part_size"`
	PartCount   int       `json:"part_count"`
	ContentType string    `json:"content_type,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	State       string    `json:"state"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Parts the store already holds; only in answers to the state call.
	Parts []driver.Part `json:"parts,omitempty"`
}

func uploadInfo(u *signet.Upload) *UploadInfo {
	return &UploadInfo{
		ID: u.ID, Key: u.Key, Size: u.Size, PartSize: u.PartSize, PartCount: u.PartCount,
		ContentType: u.ContentType, SHA256: u.SHA256, State: u.State, ExpiresAt: u.ExpiresAt,
	}
}

// PartsRequest asks for URLs for some parts of an upload.
type PartsRequest struct {
	Numbers []int `json:"numbers"`
}

// PartURL is a pre-signed URL for one part.
type PartURL struct {
	Number    int               `json:"number"`
	Size      int64             `json:"size"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"` // {} when none
	ExpiresAt time.Time         `json:"expires_at"`
}

// PartsResponse answers a PartsRequest in request order.
type PartsResponse struct {
	Parts []PartURL `json:"parts"`
}

// CompleteRequest lists every part of the upload with the ETag the store
// returned for it.
type CompleteRequest struct {
	Parts []CompletePart `json:"parts"`
}

// CompletePart is one entry of a CompleteRequest.
type CompletePart struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
}

func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ev := s.event(r, signet.ActionUploadCreate)
	ev.Team = r.PathValue("team")
	var req CreateUploadRequest
	if err := decode(w, r, &req); err != nil {
		if key, ok := refusedKey(err); ok {
			ev.ObjectKey = auditKey(key)
		}
		s.deny(w, r, ev, err)
		return
	}
	acc, err := s.teamBucket(r, ev.Team, signet.PermWrite)
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	t, bucket, conn := acc.team, acc.bucket, acc.conn
	ev.Store, ev.Bucket, ev.ObjectKey = conn.Backend, conn.Bucket, auditKey(bucket.StoreKey(req.Key))
	now := s.now()
	u := &signet.Upload{
		ID: signet.NewID(12), Team: ev.Team, Key: req.Key, Size: req.Size,
		ContentType: req.ContentType, SHA256: strings.ToLower(req.SHA256),
		Backend: conn.Backend, Bucket: conn.Bucket, StoreKey: bucket.StoreKey(req.Key),
		State: signet.UploadActive, CreatedBy: a.User, CreatedAt: now,
	}
	ev.UploadID = u.ID
	var sum []byte
	err = storage.ValidateKey(req.Key)
	if err == nil && req.SHA256 != "" {
		sum, err = parseSHA256(req.SHA256)
	}
	if err == nil {
		u.PartSize, u.PartCount, err = storage.PlanParts(req.Size, req.PartSize)
	}
	if err == nil {
		u.ExpiresAt, err = signet.ResolveExpiry(now, 0, t.ExpiryCap(true))
	}
	if err == nil {
		u.StoreUploadID, err = bucket.CreateMultipart(r.Context(), req.Key, &driver.MultipartOptions{
			ContentType: req.ContentType, Size: req.Size, PartSize: u.PartSize, SHA256: sum,
		})
	}
	if err != nil {
		if signet.ErrorCode(err) == signet.InvalidKey {
			// A refused key names no object under the prefix: record it
			// exactly as the client sent it.
			ev.ObjectKey = auditKey(req.Key)
		}
		s.deny(w, r, ev, err)
		return
	}
	ev.ExpiresAt = u.ExpiresAt
	if err := s.commit(r.Context(), func(tx signet.Tx) error { return tx.CreateUpload(u) }, ev); err != nil {
		// The session was not recorded: discard it at the store too.
		if aerr := bucket.AbortMultipart(context.WithoutCancel(r.Context()), req.Key, u.StoreUploadID); aerr != nil {
			s.logger.WarnContext(r.Context(), "aborting unrecorded upload", "upload_id", u.ID, "err", aerr)
		}
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	writeJSON(w, http.StatusCreated, uploadInfo(u))
}

// upload loads an active upload of the team after authorising the caller.
// An upload of another team is NotFound.
func (s *Server) upload(r *http.Request, ev *signet.AuditEvent) (*access, *signet.Upload, error) {
	acc, err := s.teamBucket(r, ev.Team, signet.PermWrite)
	if err != nil {
		return nil, nil, err
	}
	conn, bucket := acc.conn, acc.bucket
	ev.Store, ev.Bucket = conn.Backend, conn.Bucket
	var u *signet.Upload
	err = s.store.View(r.Context(), func(tx signet.Tx) (err error) {
		u, err = tx.Upload(ev.Team, r.PathValue("id"))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	ev.ObjectKey = u.StoreKey
	if u.Backend != conn.Backend || u.Bucket != conn.Bucket || u.StoreKey != bucket.StoreKey(u.Key) {
		return nil, nil, signet.Errorf(signet.Conflict, "the team's connector changed since upload %s started; start a new upload", u.ID)
	}
	return acc, u, nil
}

func requireActive(u *signet.Upload, now time.Time) error {
	if u.State != signet.UploadActive {
		return signet.Errorf(signet.Conflict, "upload %s is %s", u.ID, u.State)
	}
	if !now.Before(u.ExpiresAt) {
		return signet.Errorf(signet.Conflict, "upload %s expired at %s", u.ID, u.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func (s *Server) handleUploadParts(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUploadParts)
	ev.Team, ev.UploadID = r.PathValue("team"), r.PathValue("id")
	ev.Method = http.MethodPut
	var req PartsRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	acc, u, err := s.upload(r, ev)
	now := s.now()
	if err == nil {
		err = requireActive(u, now)
	}
	if err == nil {
		err = checkPartNumbers(req.Numbers, u.PartCount)
	}
	var expires time.Time
	if err == nil {
		expires, err = signet.ResolveExpiry(now, 0, min(PartURLLifetime, acc.team.ExpiryCap(true)))
		if !u.ExpiresAt.After(expires) {
			expires = u.ExpiresAt
		}
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	ev.GrantID, ev.ExpiresAt = signet.NewID(10), expires
	ev.Target = "parts " + partList(req.Numbers)
	out := PartsResponse{Parts: make([]PartURL, len(req.Numbers))}
	for i, n := range req.Numbers {
		size := storage.PartSize(u.Size, u.PartSize, n)
		su, err := acc.sign(r.Context(), u.Key, &driver.SignOptions{
			Method: http.MethodPut, Now: now, Expires: expires, Size: size,
			GrantID: ev.GrantID, UploadID: u.StoreUploadID, PartNumber: n,
		})
		if err != nil {
			s.deny(w, r, ev, err)
			return
		}
		exp := realExpiry(su, expires)
		out.Parts[i] = PartURL{Number: n, Size: size, Method: su.Method, URL: su.URL, Headers: headersOf(su), ExpiresAt: exp}
		if exp.Before(ev.ExpiresAt) {
			ev.ExpiresAt = exp // the record states the earliest
		}
	}
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	s.metrics.urls.WithLabelValues(u.Backend, "PUT").Add(float64(len(out.Parts)))
	writeJSON(w, http.StatusOK, out)
}

func checkPartNumbers(ns []int, count int) error {
	if len(ns) == 0 {
		return signet.Errorf(signet.InvalidPart, "numbers must name at least one part")
	}
	for _, n := range ns {
		if n < 1 || n > count {
			return signet.Errorf(signet.InvalidPart, "part number %d is outside 1..%d", n, count)
		}
	}
	return nil
}

// partList renders part numbers for the audit record, bounded in length.
func partList(ns []int) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(',')
		}
		if b.Len() > 200 {
			fmt.Fprintf(&b, "... (%d parts)", len(ns))
			break
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func (s *Server) handleUploadState(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUploadState)
	ev.Team, ev.UploadID = r.PathValue("team"), r.PathValue("id")
	acc, u, err := s.upload(r, ev)
	var parts []driver.Part
	if err == nil && u.State == signet.UploadActive {
		parts, err = acc.bucket.ListParts(r.Context(), u.Key, u.StoreUploadID)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := s.commit(r.Context(), nil, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	info := uploadInfo(u)
	info.Parts = parts
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleCompleteUpload(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUploadComplete)
	ev.Team, ev.UploadID = r.PathValue("team"), r.PathValue("id")
	var req CompleteRequest
	if err := decode(w, r, &req); err != nil {
		s.deny(w, r, ev, err)
		return
	}
	acc, u, err := s.upload(r, ev)
	if err == nil {
		err = requireActive(u, s.now())
	}
	var parts []driver.Part
	if err == nil {
		parts, err = completeParts(req.Parts, u)
	}
	var sum []byte
	if err == nil && u.SHA256 != "" {
		sum, err = parseSHA256(u.SHA256)
	}
	if err == nil {
		err = acc.bucket.CompleteMultipart(r.Context(), u.Key, u.StoreUploadID, parts, sum)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := s.commit(r.Context(), func(tx signet.Tx) error {
		return tx.SetUploadState(u.Team, u.ID, signet.UploadCompleted)
	}, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	u.State = signet.UploadCompleted
	writeJSON(w, http.StatusOK, uploadInfo(u))
}

// completeParts checks that ps names every part exactly once, in order.
func completeParts(ps []CompletePart, u *signet.Upload) ([]driver.Part, error) {
	if len(ps) != u.PartCount {
		return nil, signet.Errorf(signet.InvalidPart, "upload has %d parts; %d listed", u.PartCount, len(ps))
	}
	out := make([]driver.Part, len(ps))
	for i, p := range ps {
		if p.Number != i+1 {
			return nil, signet.Errorf(signet.InvalidPart, "parts must be listed in order 1..%d; entry %d is part %d", u.PartCount, i+1, p.Number)
		}
		if p.ETag == "" {
			return nil, signet.Errorf(signet.InvalidPart, "part %d has no etag", p.Number)
		}
		out[i] = driver.Part{Number: p.Number, ETag: p.ETag, Size: storage.PartSize(u.Size, u.PartSize, p.Number)}
	}
	return out, nil
}

func (s *Server) handleAbortUpload(w http.ResponseWriter, r *http.Request) {
	ev := s.event(r, signet.ActionUploadAbort)
	ev.Team, ev.UploadID = r.PathValue("team"), r.PathValue("id")
	acc, u, err := s.upload(r, ev)
	if err == nil && u.State != signet.UploadActive {
		err = signet.Errorf(signet.Conflict, "upload %s is %s", u.ID, u.State)
	}
	if err == nil {
		err = acc.bucket.AbortMultipart(r.Context(), u.Key, u.StoreUploadID)
	}
	if err != nil {
		s.deny(w, r, ev, err)
		return
	}
	if err := s.commit(r.Context(), func(tx signet.Tx) error {
		return tx.SetUploadState(u.Team, u.ID, signet.UploadAborted)
	}, ev); err != nil {
		s.writeError(w, r, auditUnavailable(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
