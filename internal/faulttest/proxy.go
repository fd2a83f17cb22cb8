package faulttest

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between signet and a real server that a test can
// cut (the server is down: connections reset, new ones refused) or stall
// (the server hangs: connections stay open and nothing moves either way).
type Proxy struct {
	tb     testing.TB
	target string
	addr   string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
	stalled bool
	stallOn []byte        // a connection that sends this stalls
	resume  chan struct{} // closed when a stall ends
	cut     bool          // the listener is closed
	closed  bool
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{tb: tb, target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	tb.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(ln net.Listener) {
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) forward(c net.Conn) {
	l := &link{}
	p.wait(l)
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, s) {
		c.Close()
		s.Close()
		return
	}
	go p.pipe(l, s, c, true)
	p.pipe(l, c, s, false)
}

// link is one proxied connection.
type link struct {
	until chan struct{} // set by StallOn's match: the Restore it waits for
}

// pipe copies from src to dst, holding each chunk while the proxy or the
// link stalls. fromClient marks the client's side, which StallOn watches.
func (p *Proxy) pipe(l *link, dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient {
				p.mu.Lock()
				if p.stallOn != nil && l.until == nil && bytes.Contains(buf[:n], p.stallOn) {
					l.until = p.resume
				}
				p.mu.Unlock()
			}
			p.wait(l)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: close the other side too
		}
	}
}

// wait blocks while the proxy or l stalls.
func (p *Proxy) wait(l *link) {
	p.mu.Lock()
	ch := l.until
	if p.stalled {
		ch = p.resume
	}
	p.mu.Unlock()
	if ch != nil {
		<-ch // closed by Restore, and stays closed
	}
}

// Cut takes the server away: every connection is reset and new ones are
// refused until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	p.cut = true
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as a crashed server's host would send
		}
		c.Close()
	}
	clear(p.conns)
}

// Stall makes the server hang: connections stay open and new ones are
// accepted, but no byte goes through either way until Restore.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// StallOn makes the server hang on a connection from the moment the client
// sends data containing b (a statement's text, say): nothing more goes
// through it either way until Restore. Other connections go on.
func (p *Proxy) StallOn(b string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallOn = []byte(b)
	if p.resume == nil {
		p.resume = make(chan struct{})
	}
}

// Restore brings the server back: a stall ends (held bytes go through, to
// connections still open) and a cut proxy listens again on its address.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resume != nil {
		p.stalled, p.stallOn = false, nil
		close(p.resume)
		p.resume = nil
	}
	if !p.cut {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.tb.Fatalf("proxy: listening again on %s: %v", p.addr, err)
	}
	p.cut = false
	p.serve(ln)
}

func (p *Proxy) close() {
	p.Restore()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
}
