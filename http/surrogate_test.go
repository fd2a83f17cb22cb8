package http

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLoneSurrogate: loneSurrogate finds exactly the bodies in which
// encoding/json would replace an escaped UTF-16 surrogate with U+FFFD,
// compared on 20,000 random strings of escapes, escaped backslashes and
// text that looks like an escape.
func TestLoneSurrogate(t *testing.T) {
	for body, want := range map[string]bool{
		`{"key":"\ud800x"}`:        true,
		`{"key":"\udc00"}`:         true,
		`{"key":"\ud83d\u0041"}`:   true,
		`{"key":"\\\ud800"}`:       true,
		`{"key":"\ud800`:           true,
		`{"key":"\ud83d\ude00"}`:   false,
		`{"key":"\\ud800"}`:        false,
		`{"key":"\ufffd\uFFFD"}`:   false,
		`{"key":"\u00e9\n\"x\""}`:  false,
		`{"key":"a","size":1}`:     false,
		`\`:                        false,
		`{"key":"\ud83d\ude00\\"}`: false,
	} {
		if got := loneSurrogate([]byte(body)); got != want {
			t.Errorf("loneSurrogate(%s) = %v, want %v", body, got, want)
		}
	}
	pieces := []string{"a", "é", `\\`, `\ud800`, `\udbff`, `\udc00`, `\udfff`, `\ud83d`, `\ude00`, `\u0041`, `\ufffd`, `\n`, `\"`, "ud800", `\/`}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		fffd := 0
		for range 1 + r.IntN(8) {
			p := pieces[r.IntN(len(pieces))]
			if p == `\ufffd` {
				fffd++
			}
			b.WriteString(p)
		}
		body := `{"key":"` + b.String() + `"}`
		var v struct{ Key string }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		want := strings.Count(v.Key, "\ufffd") > fffd
		if got := loneSurrogate([]byte(body)); got != want {
			t.Fatalf("loneSurrogate(%s) = %v, want %v (decoded %q)", body, got, want, v.Key)
		}
	}
}
