package signet_test

import (
	"net/netip"
	"testing"

	"github.com/signetdev/signet"
)

func TestParseNetworks(t *testing.T) {
	got, err := signet.ParseNetworks("10.0.0.0/8, 2001:db8::/32", "192.168.1.0/24")
	if err != nil || signet.FormatNetworks(got) != "10.0.0.0/8,2001:db8::/32,192.168.1.0/24" {
		t.Errorf("ParseNetworks = %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.1/8", "10.0.0.0", "x", "::ffff:10.0.0.0/104", "10.0.0.0/33"} {
		if _, err := signet.ParseNetworks(bad); signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("ParseNetworks(%q) = %v, want invalid", bad, err)
		}
	}
	team := &signet.Team{AllowNetworks: got}
	for addr, want := range map[string]string{
		"10.1.2.3": "10.0.0.0/8", "::ffff:10.1.2.3": "10.0.0.0/8", "2001:db8::9": "2001:db8::/32",
		"192.168.2.1": "", "127.0.0.1": "",
	} {
		p, ok := team.AllowsFrom(netip.MustParseAddr(addr))
		if ok != (want != "") || ok && p.String() != want {
			t.Errorf("AllowsFrom(%s) = %v, %v; want %q", addr, p, ok, want)
		}
	}
	if _, ok := (&signet.Team{}).AllowsFrom(netip.MustParseAddr("8.8.8.8")); !ok {
		t.Error("a team without networks refuses an address")
	}
}
