package gcsblob_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// xmlMPU answers the XML API multipart calls the driver makes, as the XML
// API reference describes them, and refuses (403) every request whose
// signature the test's verifier rejects. It exists because fake-gcs-server
// has no XML multipart uploads: it proves what the driver sends (each
// control-plane request signed, well formed, with the right parameters)
// and that it parses the answers, not that GCS accepts them.
type xmlMPU struct {
	v  *verifier
	mu sync.Mutex
	// uploads maps an upload id to its key and parts.
	uploads map[string]*mpUpload
	objects map[string]*mpObject
	gen     int64
	// pageSize is the most parts one list answer holds.
	pageSize int
	// corrupt makes completion assemble wrong bytes.
	corrupt bool
}

type mpUpload struct {
	key, contentType string
	parts            map[int][]byte
}

type mpObject struct {
	data        []byte
	contentType string
	gen         int64
}

func (s *xmlMPU) errorXML(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>m</Message></Error>", code)
}

func (s *xmlMPU) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.v.verify(r); err != nil {
		s.errorXML(w, http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	up := s.uploads[q.Get("uploadId")]
	if q.Has("uploadId") && (up == nil || up.key != key) {
		s.errorXML(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		id := fmt.Sprintf("upload-%d", len(s.uploads)+1)
		s.uploads[id] = &mpUpload{key: key, contentType: r.Header.Get("Content-Type"), parts: map[int][]byte{}}
		fmt.Fprintf(w, "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>", key, id)
	case r.Method == http.MethodPut && up != nil:
		n, _ := strconv.Atoi(q.Get("partNumber"))
		up.parts[n] = body
		sum := md5.Sum(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	case r.Method == http.MethodGet && up != nil:
		var nums []int
		for n := range up.parts {
			marker, _ := strconv.Atoi(q.Get("part-number-marker"))
			if n > marker {
				nums = append(nums, n)
			}
		}
		sort.Ints(nums)
		truncated := len(nums) > s.pageSize
		if truncated {
			nums = nums[:s.pageSize]
		}
		fmt.Fprintf(w, "<ListPartsResult><IsTruncated>%v</IsTruncated>", truncated)
		if truncated {
			fmt.Fprintf(w, "<NextPartNumberMarker>%d</NextPartNumberMarker>", nums[len(nums)-1])
		}
		for _, n := range nums {
			sum := md5.Sum(up.parts[n])
			fmt.Fprintf(w, "<Part><PartNumber>%d</PartNumber><ETag>\"%x\"</ETag><Size>%d</Size></Part>", n, sum, len(up.parts[n]))
		}
		io.WriteString(w, "</ListPartsResult>")
	case r.Method == http.MethodPost && up != nil:
		var req struct {
			Parts []struct {
				PartNumber int    `xml:"PartNumber"`
				ETag       string `xml:"ETag"`
			} `xml:"Part"`
		}
		if xml.Unmarshal(body, &req) != nil || len(req.Parts) == 0 {
			s.errorXML(w, http.StatusBadRequest, "MalformedXML")
			return
		}
		var data []byte
		for _, p := range req.Parts {
			part, ok := up.parts[p.PartNumber]
			sum := md5.Sum(part)
			if !ok || p.ETag != fmt.Sprintf("%q", hex.EncodeToString(sum[:])) {
				s.errorXML(w, http.StatusBadRequest, "InvalidPart")
				return
			}
			data = append(data, part...)
		}
		if s.corrupt {
			data[0] ^= 1
		}
		s.gen++
		s.objects[key] = &mpObject{data: data, contentType: up.contentType, gen: s.gen}
		delete(s.uploads, q.Get("uploadId"))
		w.Header().Set("x-goog-generation", strconv.FormatInt(s.gen, 10))
		fmt.Fprintf(w, "<CompleteMultipartUploadResult><Key>%s</Key><ETag>\"x-1\"</ETag></CompleteMultipartUploadResult>", key)
	case r.Method == http.MethodDelete && up != nil:
		delete(s.uploads, q.Get("uploadId"))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet || r.Method == http.MethodDelete:
		o := s.objects[key]
		if o == nil {
			s.errorXML(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		if g := r.Header.Get("x-goog-if-generation-match"); g != "" && g != strconv.FormatInt(o.gen, 10) {
			s.errorXML(w, http.StatusPreconditionFailed, "PreconditionFailed")
			return
		}
		if r.Method == http.MethodDelete {
			delete(s.objects, key)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", o.contentType)
		w.Write(o.data)
	default:
		s.errorXML(w, http.StatusBadRequest, "InvalidRequest")
	}
}

// TestGCSMultipart drives chunked uploads through the driver against xmlMPU
// (see there): create, parallel part PUTs through part URLs, paged part
// lists, completion with ETag and size checks, SHA-256 verification,
// abort and unknown uploads.
func TestGCSMultipart(t *testing.T) {
	keyFile, _, pub := serviceAccount(t)
	s := &xmlMPU{v: &verifier{pub: pub, now: time.Now}, uploads: map[string]*mpUpload{}, objects: map[string]*mpObject{}, pageSize: 2}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "b-1", Prefix: "team/", Endpoint: srv.URL, CredentialsJSON: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	b := storage.Open(be, &signet.Connector{Backend: signet.BackendGCS, Bucket: "b-1", Prefix: "team/"})
	ctx := context.Background()

	start := func(key string, data []byte, partSize int64, ct string) (string, int64, int) {
		t.Helper()
		ps, count, err := storage.PlanParts(int64(len(data)), partSize)
		if err != nil {
			t.Fatal(err)
		}
		id, err := b.CreateMultipart(ctx, key, &driver.MultipartOptions{ContentType: ct, Size: int64(len(data)), PartSize: ps})
		if err != nil {
			t.Fatalf("CreateMultipart: %v", err)
		}
		return id, ps, count
	}
	putParts := func(key, id string, data []byte, ps int64, nums ...int) map[int]string {
		t.Helper()
		etags := map[int]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range nums {
			size := storage.PartSize(int64(len(data)), ps, n)
			now := time.Now()
			u, err := b.SignedURL(ctx, key, &driver.SignOptions{Method: http.MethodPut, Now: now,
				Expires: now.Truncate(time.Second).Add(time.Hour), Size: size, UploadID: id, PartNumber: n})
			if err != nil {
				t.Fatal(err)
			}
			part := data[int64(n-1)*ps : int64(n-1)*ps+size]
			wg.Go(func() {
				req, _ := http.NewRequest(u.Method, u.URL, bytes.NewReader(part))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					return
				}
				resp.Body.Close()
				mu.Lock()
				etags[n] = resp.Header.Get("ETag")
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(etags) != len(nums) {
			t.Fatalf("%d of %d part PUTs succeeded", len(etags), len(nums))
		}
		return etags
	}

	data := randomBytes(3*storage.MinPartSize + 1000)
	const key = "dir/big file.bin"
	id, ps, count := start(key, data, storage.MinPartSize, "application/x-test")
	if count != 4 {
		t.Fatalf("%d parts planned, want 4", count)
	}
	etags := putParts(key, id, data, ps, 4, 2, 1, 3)
	parts, err := b.ListParts(ctx, key, id)
	if err != nil || len(parts) != 4 {
		t.Fatalf("ListParts = %+v, %v; want 4 parts over 2 pages", parts, err)
	}
	for i, p := range parts {
		if p.Number != i+1 || p.ETag != etags[i+1] || p.Size != storage.PartSize(int64(len(data)), ps, i+1) {
			t.Errorf("ListParts[%d] = %+v, want ETag %s", i, p, etags[i+1])
		}
	}
	bad := append([]driver.Part(nil), parts...)
	bad[2].ETag = `"0123"`
	wantCode(t, "complete with a wrong ETag", b.CompleteMultipart(ctx, key, id, bad, nil), signet.Invalid)
	wantCode(t, "complete with a missing part", b.CompleteMultipart(ctx, key, id, parts[:3], nil), signet.Invalid)
	sum := sha256.Sum256(data)
	if err := b.CompleteMultipart(ctx, key, id, parts, sum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if o := s.objects["team/"+key]; o == nil || !bytes.Equal(o.data, data) || o.contentType != "application/x-test" {
		t.Errorf("the store did not assemble the object with its content type")
	}
	_, err = b.ListParts(ctx, key, id)
	wantCode(t, "ListParts after completion", err, signet.NotFound)

	// A SHA-256 mismatch deletes the object.
	id, ps, _ = start("corrupt.bin", data[:1000], 0, "")
	putParts("corrupt.bin", id, data[:1000], ps, 1)
	parts, _ = b.ListParts(ctx, "corrupt.bin", id)
	s.corrupt = true
	sum = sha256.Sum256(data[:1000])
	wantCode(t, "complete with a mismatching sha256", b.CompleteMultipart(ctx, "corrupt.bin", id, parts, sum[:]), signet.ChecksumMismatch)
	s.corrupt = false
	if s.objects["team/corrupt.bin"] != nil {
		t.Error("the object that failed its checksum was not deleted")
	}

	// Abort, and unknown uploads.
	id, ps, _ = start("abort.bin", data[:10], 0, "")
	putParts("abort.bin", id, data[:10], ps, 1)
	if err := b.AbortMultipart(ctx, "abort.bin", id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	_, err = b.ListParts(ctx, "abort.bin", id)
	wantCode(t, "ListParts after abort", err, signet.NotFound)
	wantCode(t, "aborting twice", b.AbortMultipart(ctx, "abort.bin", id), signet.NotFound)
	wantCode(t, "complete of an unknown upload", b.CompleteMultipart(ctx, "x", "nope", []driver.Part{{Number: 1, ETag: "x"}}, nil), signet.NotFound)

	// Config.DisableMultipartSHA256.
	be2, _ := gcsblob.Open(ctx, gcsblob.Config{Bucket: "b-1", Endpoint: srv.URL, CredentialsJSON: keyFile, DisableMultipartSHA256: true})
	_, err = be2.CreateMultipart(ctx, "b-1", "k", &driver.MultipartOptions{Size: 1, PartSize: 1, SHA256: sum[:]})
	wantCode(t, "CreateMultipart with a sha256 when disabled", err, signet.Unimplemented)

	// Every control-plane request was signed: a backend with another key
	// is refused.
	other, _ := gcsblob.Open(ctx, gcsblob.Config{Bucket: "b-1", Endpoint: srv.URL, HMACAccessID: "a", HMACSecret: "wrong"})
	_, err = other.CreateMultipart(ctx, "b-1", "k", &driver.MultipartOptions{Size: 1, PartSize: 1})
	wantCode(t, "CreateMultipart with an unknown key", err, signet.PermissionDenied)
}
