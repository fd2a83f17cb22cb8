package http_test

import (
	"testing"
)

// TestWrongMethod checks that a path served for other methods answers 405
// with Allow and a problem document, while a path served for none stays
// 404, with or without credentials.
func TestWrongMethod(t *testing.T) {
	e := newEnv(t)
	tok := e.seed("ml", "member")["member"]
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/teams/ml/presign", "POST"},
		{"GET", "/v1/teams/ml/presign", "POST"},
		{"PUT", "/v1/teams/ml/uploads/u1", "DELETE, GET, HEAD"},
		{"POST", "/v1/teams/ml/connector", "GET, HEAD, PUT"},
		{"PATCH", "/v1/audit", "GET, HEAD"},
		{"PUT", "/v1/teams", "GET, HEAD, POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"GET", "/v1/nope", ""},
		{"DELETE", "/v1/teams/ml/presign/x", ""},
		{"GET", "/", ""},
	} {
		for _, token := range []string{tok, ""} {
			a := e.do(tc.method, tc.path, token, "")
			if tc.allow == "" {
				wantProblem(t, a, 404, "not_found")
			} else {
				wantProblem(t, a, 405, "method_not_allowed")
			}
			if got := a.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
		}
	}
}
