package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// filterKeys are object keys chosen to trip a prefix match done with LIKE
// (% and _), with text escaping (backslash, NUL, invalid UTF-8), with
// characters of several bytes, and at the ends of byte order.
var filterKeys = []string{
	"data/a.csv", "data/b/c.bin", "data%x", "data_y", "dataZ", "dat", "", "data\\z", "data\\\\w",
	"data\xff/raw", "data\xfe", "\u00e9/x", "e/x", "\u00e9t\u00e9/y", "data\x00nul", "datb", "\xff\xff",
	"\xff\xff/k", "\xff",
}

// filterFieldEvents appends 240 events over four transactions, varying every
// field the filters look at. Times are spread over 240 seconds out of ID
// order (time is not monotonic in the log: callers may set it), with
// sub-microsecond digits that the store drops. It returns them as stored.
func filterFieldEvents(t *testing.T, s signet.Store) []*signet.AuditEvent {
	t.Helper()
	actions := []string{signet.ActionPresignDownload, signet.ActionPresignUpload, signet.ActionKeyRevoke,
		signet.ActionAuditRead, signet.ActionPresignDownload}
	outcomes := []string{signet.OutcomeAllowed, signet.OutcomeDenied, signet.OutcomeAllowed, signet.OutcomeError}
	teams := []string{"ml", "cv", ""}
	var all []*signet.AuditEvent
	for batch := range 4 {
		var evs []*signet.AuditEvent
		for i := range 60 {
			k := batch*60 + i
			evs = append(evs, &signet.AuditEvent{
				Time:      base.Add(time.Duration((k*97)%240)*time.Second + time.Duration(k%3)*400*time.Nanosecond),
				Action:    actions[k%len(actions)],
				Outcome:   outcomes[k%len(outcomes)],
				Team:      teams[k%len(teams)],
				ActorUser: []string{"alice", "bob"}[k%2],
				ObjectKey: filterKeys[k%len(filterKeys)],
				RequestID: fmt.Sprint(k),
			})
		}
		appendEvents(t, s, evs...)
		all = append(all, evs...)
	}
	return all
}

func testAuditFilterFields(t *testing.T, s signet.Store) {
	all := filterFieldEvents(t, s)
	at := func(i int) time.Time { return all[i].Time } // as stored
	t0 := base.Truncate(time.Second)
	prefix := func(p string) func(*signet.AuditEvent) bool {
		return func(e *signet.AuditEvent) bool { return strings.HasPrefix(e.ObjectKey, p) }
	}
	between := func(since, until time.Time) func(*signet.AuditEvent) bool {
		return func(e *signet.AuditEvent) bool {
			return (since.IsZero() || !e.Time.Before(since)) && (until.IsZero() || e.Time.Before(until))
		}
	}
	cases := []struct {
		name string
		f    signet.AuditFilter
		keep func(*signet.AuditEvent) bool
	}{
		{"Action", signet.AuditFilter{Action: signet.ActionKeyRevoke}, func(e *signet.AuditEvent) bool { return e.Action == signet.ActionKeyRevoke }},
		{"ActionCommon", signet.AuditFilter{Action: signet.ActionPresignDownload}, func(e *signet.AuditEvent) bool { return e.Action == signet.ActionPresignDownload }},
		{"ActionUnknown", signet.AuditFilter{Action: "presign"}, func(*signet.AuditEvent) bool { return false }},
		{"Outcome", signet.AuditFilter{Outcome: signet.OutcomeDenied}, func(e *signet.AuditEvent) bool { return e.Outcome == signet.OutcomeDenied }},
		{"OutcomeError", signet.AuditFilter{Outcome: signet.OutcomeError}, func(e *signet.AuditEvent) bool { return e.Outcome == signet.OutcomeError }},
		{"Prefix", signet.AuditFilter{KeyPrefix: "data/"}, prefix("data/")},
		{"PrefixShort", signet.AuditFilter{KeyPrefix: "dat"}, prefix("dat")},
		{"PrefixPercent", signet.AuditFilter{KeyPrefix: "data%"}, prefix("data%")},
		{"PrefixUnderscore", signet.AuditFilter{KeyPrefix: "data_"}, prefix("data_")},
		{"PrefixBackslash", signet.AuditFilter{KeyPrefix: "data\\"}, prefix("data\\")},
		{"PrefixBackslashes", signet.AuditFilter{KeyPrefix: "data\\\\"}, prefix("data\\\\")},
		{"PrefixInvalidByte", signet.AuditFilter{KeyPrefix: "data\xff"}, prefix("data\xff")},
		{"PrefixNUL", signet.AuditFilter{KeyPrefix: "data\x00"}, prefix("data\x00")},
		{"PrefixMultibyte", signet.AuditFilter{KeyPrefix: "\u00e9"}, prefix("\u00e9")},
		{"PrefixWhole", signet.AuditFilter{KeyPrefix: "\u00e9/x"}, prefix("\u00e9/x")},
		{"PrefixTop", signet.AuditFilter{KeyPrefix: "\xff"}, prefix("\xff")},
		{"PrefixTopTwo", signet.AuditFilter{KeyPrefix: "\xff\xff"}, prefix("\xff\xff")},
		{"PrefixNone", signet.AuditFilter{KeyPrefix: "nope/"}, func(*signet.AuditEvent) bool { return false }},
		{"Since", signet.AuditFilter{Since: t0.Add(100 * time.Second)}, between(t0.Add(100*time.Second), time.Time{})},
		{"Until", signet.AuditFilter{Until: t0.Add(100 * time.Second)}, between(time.Time{}, t0.Add(100*time.Second))},
		{"Range", signet.AuditFilter{Since: t0.Add(50 * time.Second), Until: t0.Add(70 * time.Second)},
			between(t0.Add(50*time.Second), t0.Add(70*time.Second))},
		// An event's own time is inside [Since, Until) when it is Since,
		// outside when it is Until.
		{"SinceExact", signet.AuditFilter{Since: at(7)}, between(at(7), time.Time{})},
		{"UntilExact", signet.AuditFilter{Until: at(7)}, between(time.Time{}, at(7))},
		// Bounds below the microsecond round up: a nanosecond after an
		// event's time excludes it as Since and includes it as Until.
		{"SinceNano", signet.AuditFilter{Since: at(7).Add(time.Nanosecond)}, between(at(7).Add(time.Microsecond), time.Time{})},
		{"UntilNano", signet.AuditFilter{Until: at(7).Add(time.Nanosecond)}, between(time.Time{}, at(7).Add(time.Microsecond))},
		{"SinceZone", signet.AuditFilter{Since: at(9).In(time.FixedZone("UTC-7", -7*3600))}, between(at(9), time.Time{})},
		{"EmptyRange", signet.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(time.Minute)}, func(*signet.AuditEvent) bool { return false }},
		{"Inverted", signet.AuditFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(time.Minute)}, func(*signet.AuditEvent) bool { return false }},
		{"All", signet.AuditFilter{
			Team: "ml", Actor: "alice", Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
			KeyPrefix: "dat", Since: t0.Add(20 * time.Second), Until: t0.Add(220 * time.Second),
		}, func(e *signet.AuditEvent) bool {
			return e.Team == "ml" && e.ActorUser == "alice" && e.Action == signet.ActionPresignDownload &&
				e.Outcome == signet.OutcomeAllowed && strings.HasPrefix(e.ObjectKey, "dat") &&
				between(t0.Add(20*time.Second), t0.Add(220*time.Second))(e)
		}},
		{"TeamsOutcomePrefix", signet.AuditFilter{Teams: []string{"ml", "cv"}, Outcome: signet.OutcomeDenied, KeyPrefix: "data"},
			func(e *signet.AuditEvent) bool {
				return (e.Team == "ml" || e.Team == "cv") && e.Outcome == signet.OutcomeDenied && strings.HasPrefix(e.ObjectKey, "data")
			}},
		{"ActionSince", signet.AuditFilter{Action: signet.ActionPresignUpload, Since: t0.Add(120 * time.Second)}, func(e *signet.AuditEvent) bool {
			return e.Action == signet.ActionPresignUpload && !e.Time.Before(t0.Add(120*time.Second))
		}},
	}
	for _, c := range cases {
		want := filterEvents(all, c.keep)
		for _, limit := range []int{7, 1000} {
			got := auditAll(t, s, c.f, limit)
			if !slices.Equal(ids(got), ids(want)) {
				t.Errorf("%s, pages of %d: events %v, want %v", c.name, limit, ids(got), ids(want))
			}
		}
		if c.name == "Prefix" || c.name == "Action" || c.name == "Range" || c.name == "Outcome" {
			if len(want) < 10 || len(want) > len(all)/2 {
				t.Fatalf("%s: the test data gives %d matches; want a selective filter with enough matches", c.name, len(want))
			}
		}
	}
	// The cursor continues within the filtered events.
	f := signet.AuditFilter{KeyPrefix: "data", Outcome: signet.OutcomeAllowed}
	want := filterEvents(all, func(e *signet.AuditEvent) bool {
		return strings.HasPrefix(e.ObjectKey, "data") && e.Outcome == signet.OutcomeAllowed
	})
	f.AfterID = want[3].ID
	if got := audit(t, s, f); !slices.Equal(ids(got), ids(want[4:])) {
		t.Errorf("AfterID %d with prefix and outcome: %v, want %v", f.AfterID, ids(got), ids(want[4:]))
	}
}

func testAuditFilterInvalid(t *testing.T, s signet.Store) {
	appendEvents(t, s, &signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, ObjectKey: "\u20ac/x"})
	// "\xe2\x82" is the start of "€": a prefix ending there cannot be
	// matched byte for byte by a store keeping text as UTF-8.
	for _, p := range []string{"\xe2\x82", "\u20ac/\xe2", "a\xf0\x9f\x98"} {
		err := view(t, s, func(tx signet.Tx) error {
			_, err := tx.Audit(signet.AuditFilter{KeyPrefix: p})
			return err
		})
		wantCode(t, fmt.Sprintf("Audit(KeyPrefix %q)", p), err, signet.Invalid)
	}
	// Invalid bytes that no character continues are fine.
	for _, p := range []string{"\u20ac", "\xe2(", "\xff"} {
		err := view(t, s, func(tx signet.Tx) error {
			_, err := tx.Audit(signet.AuditFilter{KeyPrefix: p})
			return err
		})
		if err != nil {
			t.Errorf("Audit(KeyPrefix %q): %v", p, err)
		}
	}
}

// testAuditFilterSinceLarge: time ranges on a log large enough that a
// store may look up where the range starts through an index, or give up
// looking and read from the cursor (more than 10,000 matches), with times
// out of ID order: both give every match once, in order.
func testAuditFilterSinceLarge(t *testing.T, s signet.Store) {
	const n = 12000
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		// Mostly growing, with every 7th event a minute late and every
		// 11th an hour early.
		at := base.Add(time.Duration(i) * time.Second)
		switch {
		case i%11 == 0:
			at = at.Add(-time.Hour)
		case i%7 == 0:
			at = at.Add(time.Minute)
		}
		evs[i] = &signet.AuditEvent{Time: at, Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
			Team: []string{"ml", "cv"}[i%2]}
	}
	appendEvents(t, s, evs...)
	for _, c := range []struct {
		name string
		f    signet.AuditFilter
	}{
		{"All", signet.AuditFilter{Since: base.Add(-2 * time.Hour)}},
		{"MostRecent", signet.AuditFilter{Since: base.Add(100 * time.Second)}},
		{"Recent", signet.AuditFilter{Since: base.Add((n - 50) * time.Second)}},
		{"RecentTeam", signet.AuditFilter{Since: base.Add((n - 500) * time.Second), Team: "cv"}},
		{"RecentCursor", signet.AuditFilter{Since: base.Add((n - 3000) * time.Second), AfterID: n - 2000}},
		{"Future", signet.AuditFilter{Since: base.Add(n * 2 * time.Second)}},
		{"Window", signet.AuditFilter{Since: base.Add(3000 * time.Second), Until: base.Add(3600 * time.Second)}},
	} {
		want := filterEvents(evs, func(e *signet.AuditEvent) bool {
			return e.ID > c.f.AfterID && !e.Time.Before(c.f.Since) && (c.f.Until.IsZero() || e.Time.Before(c.f.Until)) &&
				(c.f.Team == "" || e.Team == c.f.Team)
		})
		for _, limit := range []int{100, 1000} {
			got := auditAll(t, s, c.f, limit)
			if !slices.Equal(ids(got), ids(want)) {
				t.Errorf("%s, pages of %d: %d events, want %d", c.name, limit, len(got), len(want))
			}
		}
	}
}

// RunAuditFilters runs the audit filter cases of Run again, for a store's
// own tests to run them with its tuning changed (say, to take the paths
// that only large logs take otherwise).
func RunAuditFilters(t *testing.T, open func(t *testing.T) signet.Store) {
	for _, c := range []test{
		{"Filters", testAuditFilters},
		{"FilterFields", testAuditFilterFields},
		{"FilterSinceLarge", testAuditFilterSinceLarge},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}
