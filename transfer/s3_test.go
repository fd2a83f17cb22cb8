package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
	"github.com/signetdev/signet/transfer"
)

// The tests in this file prove the upload engine against a real S3 server
// (MinIO, from internal/testpeer): the store itself checks every signature,
// expiry, part and checksum. They skip when MinIO is not installed, and fail
// instead when SIGNET_TEST_PEERS=require.

const (
	// s3Prefix is the team's prefix in the bucket: object key K of team
	// "t" is s3Prefix+K in MinIO.
	s3Prefix = "t/"
	// s3PartSize is S3's smallest part size (for all parts but the last).
	s3PartSize = 5 << 20
)

// s3Env is a real signet server (SQLite metadata, http.NewServer) on
// httptest whose team "t" keeps its objects in a fresh bucket of the MinIO
// peer, below s3Prefix. The clients it hands out record what they send: the
// API client each call's route, the store client each part's PUT.
type s3Env struct {
	peer   *testpeer.MinIOPeer
	bucket string
	db     *sqlite.DB
	srv    *sighttp.Server
	// clock is the server's clock. MinIO checks URLs against real time
	// and refuses those dated in the future: a test that moves the clock
	// forward may not use the URLs issued after.
	clock *clock
	// c is an instance admin's API client, through api.
	c   *sighttp.Client
	api *apiRecorder
	// HTTP is the client for store URLs, through store.
	HTTP  *http.Client
	store *storeRecorder
	log   *eventLog
}

// newS3Env starts the server with team "t" on a new bucket, after proving
// that MinIO refuses a tampered URL. At cleanup it checks that no goroutine
// of package transfer is left running.
func newS3Env(t *testing.T) *s3Env {
	t.Helper()
	peer := testpeer.MinIO(t)
	t.Cleanup(func() { checkNoLeaks(t) })
	ctx := context.Background()
	bucket := peer.Bucket(t)

	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "signet.db"))
	if err != nil {
		t.Fatalf("opening database: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	conn := &signet.Connector{
		Team: team, Backend: signet.BackendS3, Bucket: bucket, Prefix: s3Prefix,
		Region: peer.Region, Endpoint: peer.Endpoint, Options: map[string]string{"path_style": "true"},
	}
	// The connector has no stored credentials; the backend signs with
	// MinIO's root keys, as a server's ambient credentials would.
	blob, err := s3blob.Open(ctx, s3blob.Config{
		Bucket: conn.Bucket, Prefix: conn.Prefix, Region: conn.Region, Endpoint: conn.Endpoint,
		PathStyle:   conn.Options["path_style"] == "true",
		AccessKeyID: peer.AccessKeyID, SecretAccessKey: peer.SecretAccessKey,
	})
	if err != nil {
		t.Fatalf("opening the S3 backend: %v", err)
	}
	backends := func(_ context.Context, c *signet.Connector, _ map[string]string) (driver.Backend, error) {
		if c.Backend != conn.Backend || c.Bucket != conn.Bucket || c.Prefix != conn.Prefix || c.Endpoint != conn.Endpoint {
			return nil, signet.Errorf(signet.Unimplemented, "backend %q bucket %q is not available", c.Backend, c.Bucket)
		}
		return blob, nil
	}
	clk := new(clock)
	srv := sighttp.NewServer(sighttp.Config{Store: db, Backends: backends, Now: clk.now})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	token := seed(t, db, conn)

	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DisableCompression = true
	t.Cleanup(base.CloseIdleConnections)
	log := new(eventLog)
	api := &apiRecorder{base: base, log: log}
	store := &storeRecorder{base: base, log: log}
	c := sighttp.NewClient(ts.URL, token)
	c.HTTP = &http.Client{Transport: api}
	e := &s3Env{
		peer: peer, bucket: bucket, db: db, srv: srv, clock: clk,
		c: c, api: api, HTTP: &http.Client{Transport: store}, store: store, log: log,
	}
	e.checkTamperedRefused(t, base)
	return e
}

// checkTamperedRefused fails the test unless MinIO refuses an upload URL
// whose signature was changed and accepts the URL as issued: without that,
// nothing these tests observe would mean anything.
func (e *s3Env) checkTamperedRefused(t *testing.T, rt http.RoundTripper) {
	t.Helper()
	body := []byte("probe")
	size := int64(len(body))
	resp, err := e.c.Presign(context.Background(), team, &sighttp.PresignRequest{
		Operation: "upload",
		Objects:   []sighttp.ObjectRequest{{Key: "probe", Size: &size, SHA256: sum(body)}},
	})
	if err != nil || len(resp.Objects) != 1 || resp.Objects[0].URL == "" {
		t.Fatalf("presigning a probe upload: %v", err)
	}
	u := resp.Objects[0]
	tampered := strings.Replace(u.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	if tampered == u.URL {
		t.Fatal("the probe URL carries no X-Amz-Signature")
	}
	put := func(rawURL string) int {
		req, err := http.NewRequest(u.Method, rawURL, bytes.NewReader(body))
		if err != nil {
			t.Fatal("building the probe request failed") // err quotes the URL
		}
		for k, v := range u.Headers {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatalf("probe PUT to MinIO: %v", sanitizeURL(err))
		}
		discardBody(resp)
		return resp.StatusCode
	}
	if st := put(tampered); st != http.StatusForbidden {
		t.Fatalf("MinIO answered %d to a tampered URL, want 403; the peer does not verify signatures", st)
	}
	if st := put(u.URL); st != http.StatusOK {
		t.Fatalf("MinIO answered %d to the probe URL as issued, want 200", st)
	}
}

// setUploadCap sets team t's upload URL lifetime cap, as `signet team set
// --upload-max` does. It may run on a transfer's goroutine: it reports
// failures with Errorf.
func (e *s3Env) setUploadCap(t *testing.T, d time.Duration) {
	err := e.db.Update(context.Background(), func(tx signet.Tx) error {
		tm, err := tx.Team(team)
		if err != nil {
			return err
		}
		tm.UploadMaxExpiry = d
		return tx.UpdateTeam(tm)
	})
	if err != nil {
		t.Errorf("setting the team's upload cap: %v", err)
	}
}

// multipartUploads returns the ids of the multipart uploads MinIO holds for
// the team's key.
func (e *s3Env) multipartUploads(t *testing.T, key string) []string {
	t.Helper()
	out, err := e.peer.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(e.bucket), Prefix: aws.String(s3Prefix + key),
	})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var ids []string
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) == s3Prefix+key {
			ids = append(ids, aws.ToString(u.UploadId))
		}
	}
	return ids
}

// storedParts returns the size of each part MinIO holds for upload id of
// the team's key.
func (e *s3Env) storedParts(t *testing.T, key, id string) map[int]int64 {
	t.Helper()
	parts := map[int]int64{}
	in := &s3.ListPartsInput{Bucket: aws.String(e.bucket), Key: aws.String(s3Prefix + key), UploadId: aws.String(id)}
	for p := s3.NewListPartsPaginator(e.peer.Client(), in); p.HasMorePages(); {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListParts: %v", err)
		}
		for _, part := range out.Parts {
			parts[int(aws.ToInt32(part.PartNumber))] = aws.ToInt64(part.Size)
		}
	}
	return parts
}

// settledParts returns storedParts once MinIO has finished the requests it
// was still reading when the client went away: the same answer twice,
// 300 ms apart.
func (e *s3Env) settledParts(t *testing.T, key, id string) map[int]int64 {
	t.Helper()
	e.store.idle(t)
	last := e.storedParts(t, key, id)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		cur := e.storedParts(t, key, id)
		if maps.Equal(cur, last) {
			return cur
		}
		last = cur
	}
	t.Fatal("the parts MinIO holds still change after 10s")
	return nil
}

// headStatus returns the status MinIO answers to HEAD of the team's key.
func (e *s3Env) headStatus(t *testing.T, key string) int {
	t.Helper()
	_, err := e.peer.Client().HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(s3Prefix + key),
	})
	if err == nil {
		return http.StatusOK
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	t.Fatalf("HeadObject: %v", err)
	return 0
}

// putPart sends part n of data for upload info with a freshly minted URL,
// as a client would, and returns the ETag MinIO answered.
func (e *s3Env) putPart(t *testing.T, info *sighttp.UploadInfo, n int, data []byte) string {
	t.Helper()
	ctx := context.Background()
	resp, err := e.c.UploadParts(ctx, team, info.ID, []int{n})
	if err != nil || len(resp.Parts) != 1 {
		t.Fatalf("UploadParts(%d): %v", n, err)
	}
	p := resp.Parts[0]
	off := int64(n-1) * info.PartSize
	req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, bytes.NewReader(data[off:off+p.Size]))
	if err != nil {
		t.Fatal("building a part request failed") // err quotes the URL
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	r, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatalf("PUT part %d: %v", n, sanitizeURL(err))
	}
	discardBody(r)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("MinIO answered %d to part %d, want 200", r.StatusCode, n)
	}
	return r.Header.Get("ETag")
}

// download fetches the team's key through signet in parallel ranges and
// returns its bytes. S3 reports no SHA-256 on a pre-signed GET, so the
// caller compares the bytes with what it uploaded.
func (e *s3Env) download(t *testing.T, key string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "download")
	res, err := transfer.DownloadFile(context.Background(), e.c, team, key, dst,
		&transfer.Options{PartSize: s3PartSize, Concurrency: 4})
	if err != nil {
		t.Fatalf("DownloadFile(%s): %v", key, err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(b)) || res.SHA256 != sum(b) {
		t.Errorf("DownloadFile(%s) = size %d, sha256 %s; the file holds %d bytes with sha256 %s", key, res.Size, res.SHA256, len(b), sum(b))
	}
	return b
}

// checkNoS3Secret fails the test if err's text quotes a signed S3 URL or a
// credential.
func (e *s3Env) checkNoS3Secret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{"X-Amz-Signature", "X-Amz-Credential", e.peer.SecretAccessKey, e.c.Token} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q quotes a signed URL or a credential", err)
		}
	}
}

// eventLog is the ordered record of the API calls and part PUTs of one
// test, shared by both recorders.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// apiRecorder is the API client's transport. It logs each call as its
// route ("parts 1,2,3" for the part numbers asked of .../parts) and runs
// before, when set, before a call is sent.
type apiRecorder struct {
	base   http.RoundTripper
	log    *eventLog
	mu     sync.Mutex
	before func(route string)
}

func (a *apiRecorder) set(before func(route string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.before = before
}

func (a *apiRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	route := req.Method + " " + req.URL.Path
	if strings.HasSuffix(req.URL.Path, "/parts") && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		var pr sighttp.PartsRequest
		if err := json.Unmarshal(b, &pr); err != nil {
			return nil, err
		}
		nums := make([]string, len(pr.Numbers))
		for i, n := range pr.Numbers {
			nums[i] = strconv.Itoa(n)
		}
		route = "parts " + strings.Join(nums, ",")
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	a.mu.Lock()
	before := a.before
	a.mu.Unlock()
	if before != nil {
		before(route)
	}
	a.log.add("%s", route)
	return a.base.RoundTrip(req)
}

// partsCalls returns the part numbers asked of .../parts, one entry per
// call, in order.
func (e *s3Env) partsCalls() []string {
	var calls []string
	for _, ev := range e.log.all() {
		if nums, ok := strings.CutPrefix(ev, "parts "); ok {
			calls = append(calls, nums)
		}
	}
	return calls
}

// partPut is one PUT of a part to the store.
type partPut struct {
	part int
	// sent counts the body bytes the transport read, i.e. handed to the
	// connection; read it once the request is over.
	sent atomic.Int64
	// status is MinIO's answer, 0 when none came (the request was cut).
	status int
}

// storeRecorder is the transport for store URLs. It counts the body bytes
// of each part PUT and records MinIO's answer; before and after, when set,
// run around each PUT of a part.
type storeRecorder struct {
	base   http.RoundTripper
	log    *eventLog
	active atomic.Int64

	mu     sync.Mutex
	puts   []*partPut
	before func(req *http.Request, part int)
	after  func(part, status int)
}

func (s *storeRecorder) set(before func(req *http.Request, part int), after func(part, status int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before, s.after = before, after
}

func (s *storeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	n, err := strconv.Atoi(req.URL.Query().Get("partNumber"))
	if req.Method != http.MethodPut || err != nil {
		return s.base.RoundTrip(req)
	}
	s.active.Add(1)
	defer s.active.Add(-1)
	p := &partPut{part: n}
	s.mu.Lock()
	s.puts = append(s.puts, p)
	before, after := s.before, s.after
	s.mu.Unlock()
	if before != nil {
		before(req, n)
	}
	req = req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &countingBody{r: req.Body, n: &p.sent}
		if getBody := req.GetBody; getBody != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := getBody()
				if err != nil {
					return nil, err
				}
				return &countingBody{r: b, n: &p.sent}, nil
			}
		}
	}
	resp, err := s.base.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	s.mu.Lock()
	p.status = status
	s.mu.Unlock()
	s.log.add("PUT part %d: %d", n, status)
	if after != nil {
		after(n, status)
	}
	return resp, err
}

// idle waits until no part PUT is in progress.
func (s *storeRecorder) idle(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.active.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("part PUTs still in progress after 10s")
		}
	}
}

// take waits until no part PUT is in progress, then returns the PUTs
// recorded so far and forgets them.
func (s *storeRecorder) take(t *testing.T) []*partPut {
	t.Helper()
	s.idle(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	puts := s.puts
	s.puts = nil
	return puts
}

// sentBytes returns the body bytes of puts.
func sentBytes(puts []*partPut) int64 {
	var n int64
	for _, p := range puts {
		n += p.sent.Load()
	}
	return n
}

// urlExpiry returns when a SigV4 pre-signed URL expires, from its
// X-Amz-Date and X-Amz-Expires.
func urlExpiry(req *http.Request) (time.Time, error) {
	q := req.URL.Query()
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, errors.New("the part URL has no valid X-Amz-Date")
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		return time.Time{}, errors.New("the part URL has no valid X-Amz-Expires")
	}
	return date.Add(time.Duration(secs) * time.Second), nil
}

// sanitizeURL drops the URL that net/http quotes in its errors.
func sanitizeURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func discardBody(resp *http.Response) {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestS3UploadResume interrupts a chunked upload to MinIO by cancelling the
// client once the store has accepted three parts, runs it again, and counts
// the bytes that went to the store in both runs: the second run sends only
// the parts MinIO does not hold, so the total is the object's size plus
// the parts that were in flight when the first run was cut.
func TestS3UploadResume(t *testing.T) {
	e := newS3Env(t)
	const (
		parts = 9
		size  = (parts-1)*s3PartSize + 4321
	)
	partLen := func(n int) int64 { return min(s3PartSize, size-int64(n-1)*s3PartSize) }
	data := randomBytes(size, 30)
	src := writeFile(t, data)
	key := "resume/model.bin"
	o := transfer.Options{PartSize: s3PartSize, Concurrency: 4, HTTP: e.HTTP, ResumeDir: filepath.Join(t.TempDir(), "resume")}

	ctx, cancel := context.WithCancel(context.Background())
	var accepted atomic.Int32
	e.store.set(nil, func(_, status int) {
		if status == http.StatusOK && accepted.Add(1) == 3 {
			cancel()
		}
	})
	_, err := transfer.UploadFile(ctx, e.c, team, key, src, &o)
	cancel()
	e.store.set(nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted UploadFile: %v, want context.Canceled", err)
	}
	e.checkNoS3Secret(t, err)
	first := e.store.take(t)
	ids := e.multipartUploads(t, key)
	if len(ids) != 1 {
		t.Fatalf("MinIO holds %d multipart uploads of %s after the interrupted run, want 1 (kept for resuming)", len(ids), key)
	}
	held := e.settledParts(t, key, ids[0])
	if len(held) < 3 || len(held) == parts {
		t.Fatalf("MinIO holds %d parts after the interrupted run, want 3 to %d", len(held), parts-1)
	}
	var heldBytes int64
	for n, l := range held {
		heldBytes += l
		if l != partLen(n) {
			t.Errorf("MinIO holds part %d with %d bytes, want %d", n, l, partLen(n))
		}
	}

	res, err := transfer.UploadFile(context.Background(), e.c, team, key, src, &o)
	if err != nil {
		t.Fatalf("resumed UploadFile: %v", err)
	}
	second := e.store.take(t)
	want := transfer.Result{Key: key, Size: size, SHA256: sum(data), Parts: parts, ResumedParts: len(held), Verified: true}
	if *res != want {
		t.Errorf("resumed UploadFile = %+v, want %+v", *res, want)
	}

	// The second run sent exactly the parts MinIO did not hold, once each.
	var sentAgain []int
	for _, p := range second {
		sentAgain = append(sentAgain, p.part)
		if p.status != http.StatusOK || p.sent.Load() != partLen(p.part) {
			t.Errorf("second run: part %d sent %d bytes and answered %d; want %d bytes and 200", p.part, p.sent.Load(), p.status, partLen(p.part))
		}
	}
	slices.Sort(sentAgain)
	var missing []int
	for n := 1; n <= parts; n++ {
		if _, ok := held[n]; !ok {
			missing = append(missing, n)
		}
	}
	if !slices.Equal(sentAgain, missing) {
		t.Errorf("second run sent parts %v; want exactly the parts MinIO did not hold, %v", sentAgain, missing)
	}
	// The first run's surplus: parts in flight when it was cut, which
	// MinIO did not keep.
	var cut int64
	inFlight := 0
	for _, p := range first {
		if _, ok := held[p.part]; !ok && p.sent.Load() > 0 {
			cut += p.sent.Load()
			inFlight++
		}
	}
	if inFlight > o.Concurrency {
		t.Errorf("%d parts were cut in flight, more than the %d workers", inFlight, o.Concurrency)
	}
	total := sentBytes(first) + sentBytes(second)
	t.Logf("first run: %d bytes sent, MinIO kept %d parts (%d bytes), in-flight parts cut: %d (%d bytes); second run: %d bytes sent; total %d for an object of %d",
		sentBytes(first), len(held), heldBytes, inFlight, cut, sentBytes(second), total, size)
	if got := sentBytes(second); got != size-heldBytes {
		t.Errorf("second run sent %d bytes, want %d (the object's %d less the %d MinIO held)", got, size-heldBytes, size, heldBytes)
	}
	if total != size+cut {
		t.Errorf("both runs sent %d bytes, want %d: the object's %d plus the %d of the parts cut in flight", total, size+cut, size, cut)
	}
	// No part that MinIO accepted was sent to it again.
	acceptances := map[int]int{}
	for _, p := range slices.Concat(first, second) {
		if p.status == http.StatusOK {
			acceptances[p.part]++
		}
	}
	for n, times := range acceptances {
		if times > 1 {
			t.Errorf("MinIO accepted part %d %d times", n, times)
		}
	}

	if got := e.download(t, key); sum(got) != sum(data) {
		t.Errorf("the object in MinIO has sha256 %s (%d bytes), want %s (%d bytes)", sum(got), len(got), sum(data), len(data))
	}
	if ids := e.multipartUploads(t, key); len(ids) != 0 {
		t.Errorf("MinIO still holds %d multipart uploads of %s after completion", len(ids), key)
	}
	if ents, err := os.ReadDir(o.ResumeDir); err != nil || len(ents) != 0 {
		t.Errorf("resume directory after completion: %d files (%v), want none", len(ents), err)
	}
}

// TestS3PartURLExpires makes the URL of part 2 expire while the client
// holds it, against MinIO's real clock: the team's upload cap drops to 12 s
// once the session exists (the session keeps its 24 h deadline), and the
// store client stalls part 2 until its URL has expired. MinIO refuses it;
// the client fetches a fresh URL for that part and the upload succeeds.
func TestS3PartURLExpires(t *testing.T) {
	e := newS3Env(t)
	// Longer than the client's renewal margin (10 s), so that the client
	// does use the URL it holds.
	const life = 12 * time.Second
	const size = 3*s3PartSize - 1000
	data := randomBytes(size, 31)
	key := "expiring/model.bin"

	var capOnce sync.Once
	e.api.set(func(route string) {
		if strings.HasPrefix(route, "parts ") {
			capOnce.Do(func() { e.setUploadCap(t, life) })
		}
	})
	var stallOnce sync.Once
	var stalled time.Duration
	e.store.set(func(req *http.Request, part int) {
		if part != 2 {
			return
		}
		stallOnce.Do(func() {
			exp, err := urlExpiry(req)
			if err != nil {
				t.Error(err)
				return
			}
			stalled = time.Until(exp) + time.Second
			if stalled > 2*life {
				t.Errorf("part 2's URL expires in %v, want at most %v", time.Until(exp), life)
				stalled = 0
			}
			time.Sleep(stalled)
		})
	}, nil)
	res, err := transfer.Upload(context.Background(), e.c, team, key, bytes.NewReader(data), size,
		&transfer.Options{PartSize: s3PartSize, Threshold: -1, Concurrency: 1, HTTP: e.HTTP})
	e.api.set(nil)
	e.store.set(nil, nil)
	if err != nil {
		e.checkNoS3Secret(t, err)
		t.Fatalf("Upload: %v", err)
	}
	if res.Parts != 3 || res.SHA256 != sum(data) {
		t.Errorf("Upload = %+v, want 3 parts with sha256 %s", res, sum(data))
	}

	var part2 []int
	for _, p := range e.store.take(t) {
		if p.part == 2 {
			part2 = append(part2, p.status)
		}
	}
	if !slices.Equal(part2, []int{http.StatusForbidden, http.StatusOK}) {
		t.Errorf("MinIO answered part 2 with %v; want 403 (its URL expired, stalled %v), then 200", part2, stalled)
	}
	// After the refusal, the client asked signet for part 2 again before
	// sending it a second time.
	events := e.log.all()
	refused := slices.Index(events, "PUT part 2: 403")
	accepted := slices.Index(events, "PUT part 2: 200")
	refetched := refused >= 0 && accepted > refused && slices.ContainsFunc(events[refused:accepted], func(ev string) bool {
		nums, ok := strings.CutPrefix(ev, "parts ")
		return ok && slices.Contains(strings.Split(nums, ","), "2")
	})
	if !refetched {
		t.Errorf("calls and PUTs %q; want a parts call for part 2 between MinIO's 403 and its 200", events)
	}
	calls := e.partsCalls()
	askedFor2 := 0
	for _, nums := range calls {
		if slices.Contains(strings.Split(nums, ","), "2") {
			askedFor2++
		}
	}
	if askedFor2 < 2 {
		t.Errorf("parts calls %q named part 2 %d times, want at least 2 (minted, then re-fetched)", calls, askedFor2)
	}
	t.Logf("part 2 stalled %v; parts calls: %q", stalled.Round(time.Millisecond), calls)

	if got := e.download(t, key); sum(got) != sum(data) {
		t.Errorf("the object in MinIO has sha256 %s, want %s", sum(got), sum(data))
	}
}

// TestS3SweepAbandoned leaves a session with one part in MinIO, moves the
// server's clock past the session's deadline and sweeps: the multipart
// upload is gone from MinIO, the session is aborted, and the sweep is
// audited.
func TestS3SweepAbandoned(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	key := "abandoned/model.bin"
	data := randomBytes(s3PartSize+1<<20, 32)
	info, err := e.c.CreateUpload(ctx, team, &sighttp.CreateUploadRequest{
		Key: key, Size: int64(len(data)), SHA256: sum(data), PartSize: s3PartSize,
	})
	if err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	e.putPart(t, info, 1, data)
	ids := e.multipartUploads(t, key)
	if len(ids) != 1 {
		t.Fatalf("MinIO holds %d multipart uploads of %s, want 1", len(ids), key)
	}
	if held := e.storedParts(t, key, ids[0]); len(held) != 1 {
		t.Fatalf("MinIO holds %d parts, want 1", len(held))
	}

	if n, err := e.srv.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("Sweep before the deadline = %d, %v; want 0, nil", n, err)
	}
	if ids := e.multipartUploads(t, key); len(ids) != 1 {
		t.Errorf("MinIO holds %d multipart uploads of %s after a sweep before the deadline, want 1", len(ids), key)
	}

	// The client is gone; the deadline passes.
	e.clock.advance(time.Until(info.ExpiresAt) + time.Minute)
	if n, err := e.srv.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep after the deadline = %d, %v; want 1, nil", n, err)
	}
	if ids := e.multipartUploads(t, key); len(ids) != 0 {
		t.Errorf("MinIO still holds %d multipart uploads of %s after the sweep, want none", len(ids), key)
	}
	st, err := e.c.UploadState(ctx, team, info.ID)
	if err != nil {
		t.Fatalf("UploadState: %v", err)
	}
	if st.State != signet.UploadAborted {
		t.Errorf("session state after the sweep = %q, want %q", st.State, signet.UploadAborted)
	}
	if n, err := e.srv.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v; want 0, nil", n, err)
	}

	var expired []*signet.AuditEvent
	q := sighttp.AuditQuery{Team: team}
	for {
		page, err := e.c.Audit(ctx, q)
		if err != nil {
			t.Fatalf("Audit: %v", err)
		}
		for _, ev := range page.Events {
			if ev.Action == signet.ActionUploadExpire && ev.UploadID == info.ID {
				expired = append(expired, ev)
			}
		}
		if page.NextCursor == "" || len(page.Events) == 0 {
			break
		}
		q.Cursor = page.NextCursor
	}
	if len(expired) != 1 || expired[0].ActorUser != "signet" || expired[0].ObjectKey != s3Prefix+key {
		t.Errorf("audit holds %d upload.expire events for the session (%+v), want 1 by signet for %s", len(expired), expired, s3Prefix+key)
	}
}

// TestS3ChecksumMismatch declares a SHA-256 that the bytes do not have:
// MinIO assembles the parts, signet reads the object back, refuses it with
// ChecksumMismatch and deletes it.
func TestS3ChecksumMismatch(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()

	t.Run("API", func(t *testing.T) {
		key := "mismatch/api.bin"
		data := randomBytes(2*s3PartSize+12345, 33)
		info, err := e.c.CreateUpload(ctx, team, &sighttp.CreateUploadRequest{
			Key: key, Size: int64(len(data)), SHA256: sum(append(bytes.Clone(data), 0)), PartSize: s3PartSize,
		})
		if err != nil {
			t.Fatalf("CreateUpload: %v", err)
		}
		var parts []sighttp.CompletePart
		for n := 1; n <= info.PartCount; n++ {
			parts = append(parts, sighttp.CompletePart{Number: n, ETag: e.putPart(t, info, n, data)})
		}
		_, err = e.c.CompleteUpload(ctx, team, info.ID, parts)
		if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
			t.Errorf("CompleteUpload with a wrong sha256: code %q (%v), want %q", code, err, signet.ChecksumMismatch)
		}
		e.checkNoS3Secret(t, err)
		if st := e.headStatus(t, key); st != http.StatusNotFound {
			t.Errorf("HEAD of the refused object answered %d, want 404", st)
		}
		if ids := e.multipartUploads(t, key); len(ids) != 0 {
			t.Errorf("MinIO holds %d multipart uploads of %s, want none", len(ids), key)
		}
	})

	// The data changes between the client's hashing pass and the upload.
	changed := func(t *testing.T, key string, o *transfer.Options) error {
		t.Helper()
		data := randomBytes(2*s3PartSize+1, 34)
		r := &changingReader{data: data, after: int64(len(data))}
		_, err := transfer.Upload(ctx, e.c, team, key, r, int64(len(data)), o)
		e.checkNoS3Secret(t, err)
		if st := e.headStatus(t, key); st != http.StatusNotFound {
			t.Errorf("HEAD of the refused object answered %d, want 404", st)
		}
		if ids := e.multipartUploads(t, key); len(ids) != 0 {
			t.Errorf("MinIO holds %d multipart uploads of %s, want none", len(ids), key)
		}
		return err
	}

	t.Run("ClientParts", func(t *testing.T) {
		err := changed(t, "mismatch/parts.bin", &transfer.Options{Threshold: -1, PartSize: s3PartSize, HTTP: e.HTTP})
		if code := signet.ErrorCode(err); code != signet.ChecksumMismatch {
			t.Errorf("chunked Upload of data that changed after hashing: code %q (%v), want %q", code, err, signet.ChecksumMismatch)
		}
	})

	t.Run("ClientSinglePut", func(t *testing.T) {
		// The URL binds x-amz-checksum-sha256 and MinIO refuses the body
		// (400 XAmzContentChecksumMismatch; AWS says BadDigest), which the
		// client reports as ChecksumMismatch.
		err := changed(t, "mismatch/single.bin", &transfer.Options{HTTP: e.HTTP})
		if signet.ErrorCode(err) != signet.ChecksumMismatch {
			t.Fatalf("single-PUT Upload of data that changed after hashing: %v, want checksum_mismatch", err)
		}
	})
}
