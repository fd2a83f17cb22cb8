package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
)

// s3Team starts signet with its log in logs, creates team ml with the
// admin as a member and a member "trainer", and returns the admin's and
// the trainer's CLIs.
func s3Team(t *testing.T, logs *bytes.Buffer) (*Main, cli, cli) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	m := &Main{Config: cfg, Dev: true, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	admin := cli{tb: t, addr: "", token: mustRun(t, m)}
	admin.addr = m.URL()
	admin.must("team", "create", "ml")
	trainer := addMember(admin, "ml", "trainer", "member", "--service")
	admin.must("member", "add", "ml", "admin", "--role", "admin")
	return m, admin, trainer
}

// s3Presign runs presign with --json and decodes the result.
func s3Presign(c cli, args ...string) sighttp.ObjectResult {
	c.tb.Helper()
	var o sighttp.ObjectResult
	out := c.must(append(append([]string{"presign"}, args...), "--json")...)
	if err := json.Unmarshal([]byte(out), &o); err != nil || o.URL == "" || o.ExpiresAt == nil {
		c.tb.Fatalf("presign %v: %q (%v)", args, out, err)
	}
	return o
}

// TestS3ConnectorSecretFromStdin: with SIGNET_SECRET_ACCESS_KEY unset,
// connector set reads the secret from the first line of stdin; the stored
// secret signs URLs that MinIO accepts, and it is never printed, logged or
// audited.
func TestS3ConnectorSecretFromStdin(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	var logs bytes.Buffer
	_, admin, trainer := s3Team(t, &logs)
	args := s3ConnectorArgs(peer, bucket, peer.AccessKeyID)

	// No environment variable and nothing on stdin: refused, nothing set.
	if r := admin.run(args...); r.code == 0 || !strings.Contains(r.stderr, "SIGNET_SECRET_ACCESS_KEY") {
		t.Fatalf("connector set without a secret: exit %d, stderr %q", r.code, r.stderr)
	}

	set := admin
	set.stdin = strings.NewReader(peer.SecretAccessKey + "\n")
	r := set.run(append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("connector set with the secret on stdin: exit %d: %s", r.code, r.stderr)
	}
	var conn signet.Connector
	if err := json.Unmarshal([]byte(r.stdout), &conn); err != nil || conn.Backend != "s3" || conn.CredentialsRef == "" {
		t.Fatalf("connector set printed %q (%v), want an s3 connector with stored credentials", r.stdout, err)
	}

	// The stored secret signs: an upload and a download through MinIO.
	payload := []byte("secret read from stdin\n")
	put := s3Presign(trainer, "put", "ml", "stdin/a.txt", "--size", fmt.Sprint(len(payload)))
	if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
		t.Fatalf("PUT through a URL signed with the secret from stdin answered %d", st)
	}
	if got := httpGet(t, s3Presign(trainer, "get", "ml", "stdin/a.txt").URL); !bytes.Equal(got, payload) {
		t.Errorf("GET returned %q", got)
	}
	// A wrong secret on stdin is stored as given: its URLs are refused,
	// which shows the one above was signed with the secret read.
	wrong := admin
	wrong.stdin = strings.NewReader("not-" + peer.SecretAccessKey + "\n")
	wrong.must(args...)
	if st := send(t, "GET", s3Presign(trainer, "get", "ml", "stdin/a.txt").URL, nil, nil); st != http.StatusForbidden {
		t.Errorf("GET through a URL signed with a wrong secret answered %d, want 403", st)
	}

	// Never printed, logged or audited.
	audit := admin.must("audit", "export")
	got := admin.must("connector", "get", "ml", "--json") + r.stdout + r.stderr + logs.String() + audit
	if strings.Contains(got, peer.SecretAccessKey) {
		t.Error("the secret appears in the CLI's output, the server's log or the audit log")
	}
	if !strings.Contains(audit, "connector.set") {
		t.Errorf("audit export holds no connector.set event; is the check above looking at the log?")
	}
}

// TestS3ConnectorSessionToken: temporary keys (SIGNET_SESSION_TOKEN) are
// refused without their expiry, and with it their URLs are cut to the
// session's end and work until then.
func TestS3ConnectorSessionToken(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	var logs bytes.Buffer
	m, admin, trainer := s3Team(t, &logs)

	// Temporary keys from MinIO's STS, for 15 minutes.
	ctx := context.Background()
	out, err := sts.New(sts.Options{
		Region: peer.Region, BaseEndpoint: aws.String(peer.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(peer.AccessKeyID, peer.SecretAccessKey, ""),
	}).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:minio:iam:::role/signet-test"), RoleSessionName: aws.String("signet-test"),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	keys := out.Credentials
	expires := aws.ToTime(keys.Expiration)
	set := func(extraEnv map[string]string, flags ...string) cliResult {
		c := admin
		c.env = map[string]string{"SIGNET_SECRET_ACCESS_KEY": aws.ToString(keys.SecretAccessKey), "SIGNET_SESSION_TOKEN": aws.ToString(keys.SessionToken)}
		for k, v := range extraEnv {
			c.env[k] = v
		}
		return c.run(append(s3ConnectorArgs(peer, bucket, aws.ToString(keys.AccessKeyId)), flags...)...)
	}

	// Without an expiry, or with a past or malformed one: refused.
	for name, r := range map[string]cliResult{
		"no expiry":        set(nil),
		"past expiry":      set(nil, "--session-expires", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)),
		"malformed expiry": set(map[string]string{"SIGNET_SESSION_EXPIRES": "in an hour"}),
	} {
		if r.code == 0 || !strings.Contains(r.stderr, "expir") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal that names the expiry", name, r.code, r.stderr)
		}
	}
	// The server refuses it too, whatever the client.
	body := fmt.Sprintf(`{"backend":"s3","bucket":%q,"prefix":"ml/","endpoint":%q,"options":{"path_style":"true"},`+
		`"credentials":{"access_key_id":"a","secret_access_key":"s","session_token":"t"}}`, bucket, peer.Endpoint)
	if st, p := httpDo(t, "PUT", m.URL()+"/v1/teams/ml/connector", admin.token, body); st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(p), "session_expires") {
		t.Errorf("PUT connector with a session token and no expiry: %d %v, want 400 naming session_expires", st, p)
	}
	if r := admin.run("connector", "get", "ml"); r.code == 0 {
		t.Errorf("a refused connector was stored: %s", r.stdout)
	}

	// With the expiry (from the environment, as an AWS tool would export
	// it): URLs are cut to it and work.
	if r := set(map[string]string{"SIGNET_SESSION_EXPIRES": expires.Format(time.RFC3339)}); r.code != 0 {
		t.Fatalf("connector set with the session's expiry: exit %d: %s", r.code, r.stderr)
	}
	payload := []byte("temporary keys\n")
	put := s3Presign(trainer, "put", "ml", "tmp/a", "--expires-in", "1h", "--size", fmt.Sprint(len(payload)))
	if !put.ExpiresAt.Equal(expires.Truncate(time.Second)) {
		t.Errorf("upload URL asked for 1 h with keys expiring at %v expires at %v, want the keys' expiry", expires, put.ExpiresAt)
	}
	if !strings.Contains(put.URL, "X-Amz-Security-Token=") {
		t.Error("the URL does not carry the session token")
	}
	if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
		t.Fatalf("PUT answered %d", st)
	}
	get := s3Presign(trainer, "get", "ml", "tmp/a", "--expires-in", "2m")
	if want := time.Now().Add(2 * time.Minute); get.ExpiresAt.Sub(want).Abs() > 5*time.Second {
		t.Errorf("download URL asked for 2 min expires at %v, want about %v", get.ExpiresAt, want)
	}
	if got := httpGet(t, get.URL); !bytes.Equal(got, payload) {
		t.Errorf("GET returned %q", got)
	}
	if strings.Contains(logs.String()+admin.must("audit", "export"), aws.ToString(keys.SessionToken)) {
		t.Error("the session token appears in the server's log or the audit log")
	}
}

// TestS3ConnectorRoleOptions: --role-duration, --role-session-name,
// --role-external-id and --sts-endpoint reach the connector's options and
// the driver: a 2 h session lets an upload URL asked for 3 h live 2 h (the
// default session cuts it to 1 h). (Download URLs are capped at 1 h.)
func TestS3ConnectorRoleOptions(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	var logs bytes.Buffer
	_, admin, trainer := s3Team(t, &logs)

	// Role options without a role are refused.
	if r := admin.run("connector", "set", "ml", "--backend", "s3", "--bucket", bucket, "--endpoint", peer.Endpoint, "--role-duration", "2h"); r.code == 0 {
		t.Errorf("--role-duration without --role-arn was accepted")
	}

	for _, c := range []struct {
		flags []string
		want  time.Duration
	}{
		{nil, time.Hour},
		{[]string{"--role-duration", "2h", "--role-session-name", "signet-ml", "--role-external-id", "ext-42", "--sts-endpoint", peer.Endpoint}, 2 * time.Hour},
	} {
		setS3Connector(admin, peer, bucket, append([]string{"--role-arn", "arn:minio:iam:::role/signet-test"}, c.flags...)...)
		var conn signet.Connector
		if err := json.Unmarshal([]byte(admin.must("connector", "get", "ml", "--json")), &conn); err != nil {
			t.Fatal(err)
		}
		if c.flags != nil {
			want := map[string]string{"role_duration": "2h0m0s", "role_session_name": "signet-ml", "role_external_id": "ext-42", "sts_endpoint": peer.Endpoint}
			for k, v := range want {
				if conn.Options[k] != v {
					t.Errorf("connector option %s = %q, want %q (options %v)", k, conn.Options[k], v, conn.Options)
				}
			}
		}
		payload := []byte("role session\n")
		put := s3Presign(trainer, "put", "ml", "role/a", "--expires-in", "3h", "--size", fmt.Sprint(len(payload)))
		if left := time.Until(*put.ExpiresAt); left > c.want || left < c.want-5*time.Minute {
			t.Errorf("%v: an upload URL asked for 3 h expires in %s, want the session's %s", c.flags, left.Round(time.Second), c.want)
		}
		if !strings.Contains(put.URL, "X-Amz-Security-Token=") {
			t.Errorf("%v: the URL is not signed with a role session", c.flags)
		}
		if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
			t.Fatalf("%v: PUT answered %d", c.flags, st)
		}
		get := s3Presign(trainer, "get", "ml", "role/a")
		if got := httpGet(t, get.URL); !bytes.Equal(got, payload) {
			t.Errorf("%v: GET returned %q", c.flags, got)
		}
	}
}
