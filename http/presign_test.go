package http_test

import (
	"strings"
	"testing"

	"github.com/signetdev/signet"
)

// TestPresignRefusedAction checks the action recorded for a presign
// refused before its body decodes: the operation the body names whenever
// it can still be read, and presign.download (as for an unknown
// operation) when it cannot (docs/api.md).
func TestPresignRefusedAction(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	const up, down = signet.ActionPresignUpload, signet.ActionPresignDownload
	for _, tc := range []struct{ name, body, code, action string }{
		{"unknown field", `{"operation":"upload","objects":[{"key":"a"}],"bogus":1}`, "invalid", up},
		{"unknown object field", `{"operation":"upload","objects":[{"key":"a","bogus":1}]}`, "invalid", up},
		{"fractional expires_in", `{"operation":"upload","objects":[{"key":"a"}],"expires_in":1.5}`, "invalid", up},
		{"string expires_in", `{"objects":[{"key":"a"}],"expires_in":"60","operation":"upload"}`, "invalid", up},
		{"invalid UTF-8", "{\"operation\":\"upload\",\"objects\":[{\"key\":\"k\",\"content_type\":\"text/\xff\"}]}", "invalid", up},
		{"invalid UTF-8 key", "{\"operation\":\"upload\",\"objects\":[{\"key\":\"a\xffb\"}]}", "invalid_key", up},
		{"invalid UTF-8 member name", "{\"operation\":\"upload\",\"objects\":[{\"k\xffey\":\"k\"}]}", "invalid", up},
		{"truncated", `{"operation":"upload","objects":[{"key":"a"}`, "invalid", up},
		{"syntax error", `{"operation":"upload","objects":[{"key":"a"},]}`, "invalid", up},
		{"trailing data", `{"operation":"upload","objects":[{"key":"a"}]} {}`, "invalid", up},
		{"wrong type of objects", `{"operation":"upload","objects":{"key":"a"}}`, "invalid", up},
		// encoding/json matches field names without regard to case and
		// keeps the last of repeated ones; so does the second reading.
		{"field name case", `{"OPERATION":"upload","objects":[{"key":"a"}],"bogus":1}`, "invalid", up},
		{"repeated operation", `{"operation":"download","objects":[{"key":"a"}],"operation":"upload","bogus":1}`, "invalid", up},
		{"operation in an object", `{"objects":[{"key":"a","operation":"upload"}],"operation":"download","bogus":1}`, "invalid", down},
		{"too large", `{"operation":"upload","objects":[{"key":"` + strings.Repeat("a", 8<<20) + `"}]}`, "too_large", up},
		{"download", `{"operation":"download","objects":[{"key":"a"}],"bogus":1}`, "invalid", down},
		// The operation cannot be known: recorded as presign.download.
		{"operation after a syntax error", `{"objects":[{"key":"a"},],"operation":"upload"}`, "invalid", down},
		{"operation not a string", `{"operation":1,"objects":[{"key":"a"}],"bogus":1}`, "invalid", down},
		{"invalid UTF-8 in operation", "{\"operation\":\"upl\xffoad\",\"objects\":[{\"key\":\"a\"}]}", "invalid", down},
		{"empty body", ``, "invalid", down},
		{"not an object", `["upload"]`, "invalid", down},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			a := e.do("POST", "/v1/teams/ml/presign", tok, tc.body)
			if a.Status == 200 || a.code() != tc.code {
				t.Errorf("%d %s, want code %s", a.Status, truncate(a.Body), tc.code)
			}
			evs := e.audit()
			ev := evs[len(evs)-1]
			if ev.Action != tc.action || ev.Outcome != signet.OutcomeDenied || ev.Team != "ml" {
				t.Errorf("audited %s %s of team %q, want %s denied of ml", ev.Action, ev.Outcome, ev.Team, tc.action)
			}
		})
	}
}
