package http_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// The presign benchmarks run beside BenchmarkHealthz, a trivial handler on
// the same server, so that scripts/bench can print their ratio from one
// run on a noisy machine. Each presign request commits its audit record
// durably (one fsync) before answering.

func benchRequests(b *testing.B, e *env, method, path, token string, body []byte) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkHealthz(b *testing.B) {
	e := newEnv(b)
	b.SetParallelism(8)
	benchRequests(b, e, "GET", "/healthz", "", nil)
}

func BenchmarkPresign(b *testing.B) {
	e := newEnv(b)
	tok := e.seed("ml", "member")["member"]
	b.SetParallelism(8)
	benchRequests(b, e, "POST", "/v1/teams/ml/presign", tok, []byte(presignBody("download", "datasets/shard-00001.tar")))
}

func BenchmarkPresignBatch10k(b *testing.B) {
	e := newEnv(b)
	tok := e.seed("ml", "member")["member"]
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("datasets/shard-%05d.tar", i)
	}
	body := []byte(presignBody("download", keys...))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", e.URL+"/v1/teams/ml/presign", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N*len(keys))/b.Elapsed().Seconds(), "urls/s")
}
