package fileblob_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/signetdev/signet/storage/fileblob"
)

// TestProblemRequestID checks that a refusal names its request in its
// body as the API's problems do, with the id of its X-Request-Id header:
// the one the API server set, or the store's own when served alone.
func TestProblemRequestID(t *testing.T) {
	e := MustOpen(t, fileblob.Options{})
	u := e.sign(http.MethodGet, "missing", nil)
	requestID := func(w *httptest.ResponseRecorder) string {
		t.Helper()
		var p struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Errorf("problem is not JSON: %v", err)
		}
		return p.RequestID
	}

	t.Run("Alone", func(t *testing.T) {
		w := e.do(http.MethodGet, u.URL, nil, nil)
		wantProblem(t, w, http.StatusNotFound, "not_found")
		if id := w.Header().Get("X-Request-Id"); id == "" || requestID(w) != id {
			t.Errorf("X-Request-Id %q, problem's request_id %q: want the same, not empty", id, requestID(w))
		}
		if again := e.do(http.MethodGet, u.URL, nil, nil); again.Header().Get("X-Request-Id") == w.Header().Get("X-Request-Id") {
			t.Error("two requests have the same id")
		}
	})
	t.Run("BehindServer", func(t *testing.T) {
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-Id", "req-from-server")
		e.store.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u.URL, nil))
		wantProblem(t, w, http.StatusNotFound, "not_found")
		if id := w.Header().Get("X-Request-Id"); id != "req-from-server" || requestID(w) != id {
			t.Errorf("X-Request-Id %q, problem's request_id %q: want req-from-server for both", id, requestID(w))
		}
	})
}
