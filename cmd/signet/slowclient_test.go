package main

import (
	"io"
	"net"
	"testing"
	"time"

	sighttp "github.com/signetdev/signet/http"
)

// TestSlowClient: a client that sends its headers a byte at a time is cut
// off by the header timeout, and other clients are served meanwhile.
func TestSlowClient(t *testing.T) {
	old := sighttp.ReadHeaderTimeout
	sighttp.ReadHeaderTimeout = time.Second
	defer func() { sighttp.ReadHeaderTimeout = old }()
	m, token := MustRunMain(t)

	conns := make([]net.Conn, 20)
	for i := range conns {
		c, err := net.Dial("tcp", m.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("G"))
		conns[i] = c
	}
	// Others are served while the slow connections dribble.
	start := time.Now()
	cli{tb: t, addr: m.URL(), token: token}.must("whoami")
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("a normal request took %v while slow clients were connected", d)
	}
	// Each slow connection is closed once the header timeout passes, even
	// though it keeps sending a byte now and then.
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	for i := 0; i < 3; i++ {
		time.Sleep(400 * time.Millisecond)
		for _, c := range conns {
			c.Write([]byte("E"))
		}
	}
	for i, c := range conns {
		// The server may answer (400 or 408) before closing; what matters
		// is that it closes.
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("slow connection %d still open 5 s later: %v", i, err)
		}
	}
}
