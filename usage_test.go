package signet

import (
	"net/netip"
	"testing"
	"time"
)

func TestJoinUsage(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	issued := []*AuditEvent{
		{ID: 1, GrantID: "a", Team: "ml", Action: ActionPresignDownload, Time: t0},
		{ID: 2, GrantID: "b", Team: "ml", Action: ActionPresignUpload, Time: t0},
		{ID: 3, GrantID: "c", Team: "open", Action: ActionPresignDownload, Time: t0},
		{ID: 4, GrantID: "d", Team: "gone", Action: ActionPresignDownload, Time: t0},
	}
	usage := []*AddressUsage{
		{GrantID: "a", RemoteAddr: "10.1.2.3", Uses: 1, BytesSent: 10, First: t0.Add(time.Minute), Last: t0.Add(time.Minute)},
		{GrantID: "a", RemoteAddr: "[2001:db8::1]", Uses: 3, Failed: 1, BytesSent: 30, First: t0.Add(2 * time.Minute), Last: t0.Add(3 * time.Minute)},
		{GrantID: "a", RemoteAddr: "10.9.9.9:4431", Uses: 1, First: t0.Add(30 * time.Second), Last: t0.Add(30 * time.Second)},
		{GrantID: "b", RemoteAddr: "not-an-address", Failed: 2, First: t0, Last: t0},
		{GrantID: "c", RemoteAddr: "203.0.113.1", Uses: 1},
		{GrantID: "d", RemoteAddr: "203.0.113.1", Uses: 1},
		{GrantID: "zz", RemoteAddr: "203.0.113.1", Uses: 1}, // never issued
	}
	teams := map[string]*Team{
		"ml":   {Name: "ml", AllowNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		"open": {Name: "open"},
		"gone": nil,
	}
	got := JoinUsage(issued, usage, teams)
	if len(got) != 4 {
		t.Fatalf("%d grants, want 4", len(got))
	}
	a, b, c, d := got[0], got[1], got[2], got[3]
	if a.GrantID != "a" || !a.Used || a.Uses != 5 || a.Failed != 1 || a.BytesSent != 40 || !a.Outside {
		t.Errorf("a: %+v", a)
	}
	if !a.FirstSeen.Equal(t0.Add(30*time.Second)) || !a.LastSeen.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("a seen %v to %v", a.FirstSeen, a.LastSeen)
	}
	var order []string
	for _, x := range a.Addresses {
		order = append(order, x.RemoteAddr)
		if want := x.RemoteAddr == "[2001:db8::1]"; x.Outside != want {
			t.Errorf("a from %s: outside %v, want %v", x.RemoteAddr, x.Outside, want)
		}
	}
	if len(order) != 3 || order[0] != "[2001:db8::1]" || order[1] != "10.1.2.3" || order[2] != "10.9.9.9:4431" {
		t.Errorf("a's addresses in order %q; want most uses first, then by address", order)
	}
	if b.Used || b.Uses != 0 || b.Failed != 2 || !b.Outside {
		t.Errorf("b (refused twice from an unparsable address): %+v", b)
	}
	if !c.Used || c.Outside {
		t.Errorf("c (team without networks): %+v", c)
	}
	if !d.Used || d.Outside {
		t.Errorf("d (team removed): %+v", d)
	}
	// JoinUsage does not change its input.
	if usage[1].Outside {
		t.Errorf("JoinUsage marked its input")
	}
}

func TestParseRemoteAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"192.0.2.1:443":        "192.0.2.1",
		"2001:db8::1":          "2001:db8::1",
		"[2001:db8::1]":        "2001:db8::1",
		"[2001:db8::1]:8080":   "2001:db8::1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		" 192.0.2.1 ":          "192.0.2.1",
		"fe80::1%eth0":         "fe80::1",
		"":                     "",
		"-":                    "",
		"host.example.com":     "",
		"192.0.2.1, 10.0.0.1":  "",
		"[2001:db8::1":         "",
		"999.0.0.1":            "",
		"2001:db8::1]":         "",
		"192.0.2.1/24":         "",
		"[192.0.2.1]:80:80":    "",
		"[::ffff:10.0.0.1]:80": "10.0.0.1",
	} {
		a, ok := ParseRemoteAddr(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("ParseRemoteAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
