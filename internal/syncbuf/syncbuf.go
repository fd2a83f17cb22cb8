// Package syncbuf holds Buffer, a bytes.Buffer that a logger or server
// and a test may share: tests capture what concurrent writers print and
// read it while they still write.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use. The zero value is empty and ready.
type Buffer struct {
	// Max, when above zero, bounds what the buffer keeps, for a writer
	// that may print without end (a test server's log): once it holds
	// more than Max bytes, the next Write first drops all but the last
	// Max/2. Set it before the first Write.
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 && s.b.Len() > s.Max {
		rest := s.b.Bytes()[s.b.Len()-s.Max/2:]
		s.b = *bytes.NewBuffer(bytes.Clone(rest))
	}
	return s.b.Write(p)
}

// Tail returns the last n bytes written (all of them if fewer), for
// failure messages.
func (s *Buffer) Tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Bytes returns a copy of everything written so far.
func (s *Buffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
