package accesslog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// Secrets that appear in the records below and must never come out.
const (
	secretSig  = "5f2c0c3e8a9b7d6e4f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8"
	secretCred = "AKIAIOSFODNN7EXAMPLE"
)

// Lines in the documented format (AWS's own example first), with a
// presigned GET and PUT of signet's, "-" fields, a quote inside the
// User-Agent and an escaped key.
var s3Lines = []string{
	// AWS's documentation example: no grant id.
	`79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be DOC-EXAMPLE-BUCKET1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes`,
	// A presigned download, anonymous requester, a key with a space.
	`79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be data-bucket [27/Nov/2026:09:41:07 +0000] 203.0.113.45 - 7B4A0FBBEXAMPLE1 REST.GET.OBJECT ml/run%201/model.bin "GET /data-bucket/ml/run%201/model.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=` + secretCred + `%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261127T094100Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&x-signet-grant=k3v7q2mz5xa4bn6c&X-Amz-Signature=` + secretSig + ` HTTP/1.1" 200 - 1048576 1048576 85 12 "-" "curl/8.5.0 (x\"y)" - Hs2xHmN0kM3l9QqO8Lr4vP7sT1uY2wZ5aB6cD8eF0gH= SigV4 TLS_AES_128_GCM_SHA256 QueryString data-bucket.s3.us-east-1.amazonaws.com TLSv1.3 - -`,
	// A presigned upload, path style, served.
	`79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be data-bucket [27/Nov/2026:09:42:00 +0000] 2001:db8::7 - 7B4A0FBBEXAMPLE2 REST.PUT.OBJECT ml/out.csv "PUT /data-bucket/ml/out.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=` + secretCred + `%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261127T094150Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bhost&x-signet-grant=pq8rs2tu4vw6xy3z&X-Amz-Signature=` + secretSig + ` HTTP/1.1" 200 - - 5120 110 - "-" "python-requests/2.31.0" - Hs2xHmN0kM3l9QqO8Lr4vP7sT1uY2wZ5aB6cD8eF0gI= SigV4 TLS_AES_128_GCM_SHA256 QueryString s3.us-east-1.amazonaws.com TLSv1.3 - -`,
	// The download again, refused (expired): a failed attempt.
	`79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be data-bucket [27/Nov/2026:11:41:07 +0000] 198.51.100.9 - 7B4A0FBBEXAMPLE3 REST.GET.OBJECT ml/run%201/model.bin "GET /data-bucket/ml/run%201/model.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=` + secretCred + `%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261127T094100Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&x-signet-grant=k3v7q2mz5xa4bn6c&X-Amz-Signature=` + secretSig + ` HTTP/1.1" 403 AccessDenied 243 - 4 - "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" - Hs2xHmN0kM3l9QqO8Lr4vP7sT1uY2wZ5aB6cD8eF0gJ= SigV4 TLS_AES_128_GCM_SHA256 QueryString data-bucket.s3.us-east-1.amazonaws.com TLSv1.3 - -`,
}

func TestS3Line(t *testing.T) {
	ev, err := S3Line(s3Lines[0])
	if err != nil || ev != nil {
		t.Errorf("line without a grant: %+v, %v; want nil, nil", ev, err)
	}

	ev, err = S3Line(s3Lines[1])
	if err != nil || ev == nil {
		t.Fatalf("download line: %v", err)
	}
	want := signet.UsageEvent{
		Time: time.Date(2026, 11, 27, 9, 41, 7, 0, time.UTC), Source: signet.UsageSourceS3AccessLog,
		RequestID: "7B4A0FBBEXAMPLE1", GrantID: "k3v7q2mz5xa4bn6c", Bucket: "data-bucket",
		ObjectKey: "ml/run 1/model.bin", Method: "GET", Operation: "REST.GET.OBJECT", Status: 200,
		BytesSent: 1048576, RemoteAddr: "203.0.113.45",
	}
	checkEvent(t, "download", ev, &want)

	ev, err = S3Line(s3Lines[2])
	if err != nil || ev == nil {
		t.Fatalf("upload line: %v", err)
	}
	want = signet.UsageEvent{
		Time: time.Date(2026, 11, 27, 9, 42, 0, 0, time.UTC), Source: signet.UsageSourceS3AccessLog,
		RequestID: "7B4A0FBBEXAMPLE2", GrantID: "pq8rs2tu4vw6xy3z", Bucket: "data-bucket",
		ObjectKey: "ml/out.csv", Method: "PUT", Operation: "REST.PUT.OBJECT", Status: 200,
		BytesReceived: 5120, RemoteAddr: "2001:db8::7",
	}
	checkEvent(t, "upload", ev, &want)

	ev, err = S3Line(s3Lines[3])
	if err != nil || ev == nil {
		t.Fatalf("refused line: %v", err)
	}
	if ev.Status != 403 || ev.Succeeded() || ev.BytesSent != 243 || ev.RemoteAddr != "198.51.100.9" {
		t.Errorf("refused line: %+v", ev)
	}
}

func checkEvent(t *testing.T, what string, got, want *signet.UsageEvent) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("%s: time %v, want %v", what, got.Time, want.Time)
	}
	g, w := *got, *want
	g.Time, w.Time = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
	b, _ := json.Marshal(got)
	for _, secret := range []string{secretSig, secretCred, "X-Amz", "Signature"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%s: event holds %q: %s", what, secret, b)
		}
	}
}

func TestS3LineErrors(t *testing.T) {
	good := s3Lines[1]
	for name, line := range map[string]string{
		"Empty":          "",
		"TooFewFields":   `owner bucket [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - REQ REST.GET.OBJECT k "GET /b/k?x-signet-grant=abc HTTP/1.1" 200`,
		"BadTime":        strings.Replace(good, "[27/Nov/2026:09:41:07 +0000]", "[2026-11-27T09:41:07Z]", 1),
		"UnclosedQuote":  strings.Replace(good, `"-" "curl`, `"-" "curl`, 1)[:strings.Index(good, " HTTP/1.1")],
		"UnclosedSquare": "owner bucket [27/Nov/2026:09:41:07 +0000 192.0.2.3",
		"BadStatus":      strings.Replace(good, `HTTP/1.1" 200 -`, `HTTP/1.1" OK -`, 1),
		"BadBytes":       strings.Replace(good, ` 1048576 1048576 `, ` many 1048576 `, 1),
		"NegativeBytes":  strings.Replace(good, ` 1048576 1048576 `, ` -5 1048576 `, 1),
	} {
		ev, err := S3Line(line)
		if signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("%s: %+v, %v; want Invalid", name, ev, err)
		}
	}
	// A grant id that cannot be one is not a use of an issued URL.
	bad := strings.Replace(good, "x-signet-grant=k3v7q2mz5xa4bn6c", "x-signet-grant=%3Cscript%3E", 1)
	if ev, err := S3Line(bad); ev != nil || err != nil {
		t.Errorf("malformed grant: %+v, %v; want skipped", ev, err)
	}
	twice := strings.Replace(good, "x-signet-grant=k3v7q2mz5xa4bn6c", "x-signet-grant=a&x-signet-grant=b", 1)
	if ev, err := S3Line(twice); ev != nil || err != nil {
		t.Errorf("two grants: %+v, %v; want skipped", ev, err)
	}
}

func TestSplitS3(t *testing.T) {
	f, err := splitS3(s3Lines[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 26 {
		t.Errorf("%d fields, want 26", len(f))
	}
	if len(f) > s3UserAgent {
		if f[s3Time] != "27/Nov/2026:09:41:07 +0000" || f[s3Referer] != "-" || f[s3UserAgent] != `curl/8.5.0 (x\"y)` {
			t.Errorf("time %q, referer %q, user agent %q", f[s3Time], f[s3Referer], f[s3UserAgent])
		}
	}
}

func TestS3Lines(t *testing.T) {
	in := strings.Join(s3Lines, "\n") + "\n\n"
	var got []*signet.UsageEvent
	calls := 0
	st, err := S3Lines(strings.NewReader(in), 2, func(evs []*signet.UsageEvent) error {
		calls++
		got = append(got, evs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st != (S3Stats{Lines: 4, Events: 3, Skipped: 1}) || len(got) != 3 || calls != 2 {
		t.Errorf("stats %+v, %d events in %d calls; want 4 lines, 3 events in 2 calls, 1 skipped", st, len(got), calls)
	}
	_, err = S3Lines(strings.NewReader(s3Lines[1]+"\nnot a log line\n"), 10, func([]*signet.UsageEvent) error { return nil })
	if signet.ErrorCode(err) != signet.Invalid || !strings.Contains(signet.ErrorMessage(err), "line 2") {
		t.Errorf("bad second line: %v; want Invalid naming line 2", err)
	}
}

// A MinIO audit entry as MinIO's audit webhook posts it (madmin-go
// logger/audit.Entry), for a presigned GET made by curl.
const minioGet = `{"version":"1","deploymentid":"4f0c7c54-6d0a-4bd8-9e43-5f2f3c1d2a10","siteName":"","time":"2026-11-27T09:41:07.123456789Z","event":"","trigger":"incoming","api":{"name":"GetObject","bucket":"signet-test-abc","object":"team/a.txt","status":"OK","statusCode":200,"rx":0,"tx":11,"txHeaders":312,"timeToFirstByte":"210us","timeToFirstByteInNS":"210000","timeToResponse":"350us","timeToResponseInNS":"350000"},"remotehost":"127.0.0.1","requestID":"187B4A0FBB2E1C9D","userAgent":"curl/8.5.0","requestPath":"/signet-test-abc/team/a.txt","requestHost":"127.0.0.1:9000","requestNode":"127.0.0.1:9000","requestClaims":{"accessKey":"signet-root"},"requestQuery":{"X-Amz-Algorithm":"AWS4-HMAC-SHA256","X-Amz-Credential":"` + secretCred + `/20261127/us-east-1/s3/aws4_request","X-Amz-Date":"20261127T094100Z","X-Amz-Expires":"3600","X-Amz-Signature":"` + secretSig + `","X-Amz-SignedHeaders":"host","x-signet-grant":"k3v7q2mz5xa4bn6c"},"requestHeader":{"User-Agent":"curl/8.5.0"},"responseHeader":{"Content-Length":"11","ETag":"abc"},"tags":{"objectLocation":{"name":"team/a.txt"}},"accessKey":"signet-root"}`

func TestMinIO(t *testing.T) {
	// Batch of three, as MinIO sends with batch_size > 1: the GET, an
	// admin call without a grant, and an upload part with an unknown
	// content length (rx -1) from IPv6.
	other := `{"version":"1","time":"2026-11-27T09:41:08Z","trigger":"incoming","api":{"name":"ListBuckets","statusCode":200,"rx":0,"tx":400},"remotehost":"127.0.0.1","requestID":"187B4A0FBB2E1C9E","requestQuery":{}}`
	part := `{"version":"1","time":"2026-11-27T09:41:09Z","trigger":"incoming","api":{"name":"PutObjectPart","bucket":"b","object":"k","statusCode":200,"rx":-1,"tx":-1},"remotehost":"[2001:db8::1]","requestID":"187B4A0FBB2E1C9F","requestQuery":{"partNumber":"1","uploadId":"u","x-signet-grant":"g2"}}`
	evs, skipped, err := MinIO(strings.NewReader(minioGet + "\n" + other + "\n" + part + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || skipped != 1 {
		t.Fatalf("%d events, %d skipped; want 2, 1", len(evs), skipped)
	}
	want := signet.UsageEvent{
		Time: time.Date(2026, 11, 27, 9, 41, 7, 123456789, time.UTC), Source: signet.UsageSourceMinIO,
		RequestID: "187B4A0FBB2E1C9D", GrantID: "k3v7q2mz5xa4bn6c", Bucket: "signet-test-abc",
		ObjectKey: "team/a.txt", Method: "GET", Operation: "GetObject", Status: 200,
		BytesSent: 11, RemoteAddr: "127.0.0.1",
	}
	checkEvent(t, "minio GET", evs[0], &want)
	want = signet.UsageEvent{
		Time: time.Date(2026, 11, 27, 9, 41, 9, 0, time.UTC), Source: signet.UsageSourceMinIO,
		RequestID: "187B4A0FBB2E1C9F", GrantID: "g2", Bucket: "b", ObjectKey: "k", Method: "PUT",
		Operation: "PutObjectPart", Status: 200, RemoteAddr: "[2001:db8::1]",
	}
	checkEvent(t, "minio part", evs[1], &want)
	if a, ok := signet.ParseRemoteAddr(evs[1].RemoteAddr); !ok || a.String() != "2001:db8::1" {
		t.Errorf("ParseRemoteAddr(%q) = %v, %v", evs[1].RemoteAddr, a, ok)
	}

	for name, body := range map[string]string{
		"NotJSON":   "hello",
		"Array":     "[" + minioGet + "]",
		"Truncated": minioGet[:100],
	} {
		if _, _, err := MinIO(strings.NewReader(body)); signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("%s: %v; want Invalid", name, err)
		}
	}
	if evs, skipped, err := MinIO(strings.NewReader("")); err != nil || len(evs) != 0 || skipped != 0 {
		t.Errorf("empty body: %d, %d, %v", len(evs), skipped, err)
	}
}

func BenchmarkS3Line(b *testing.B) {
	b.SetBytes(int64(len(s3Lines[1])))
	for b.Loop() {
		if _, err := S3Line(s3Lines[1]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMinIO(b *testing.B) {
	b.SetBytes(int64(len(minioGet)))
	for b.Loop() {
		if _, _, err := MinIO(strings.NewReader(minioGet)); err != nil {
			b.Fatal(err)
		}
	}
}
