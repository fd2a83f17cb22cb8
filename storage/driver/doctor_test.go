package driver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/signetdev/signet/storage/driver"
)

func TestNoAnswerCause(t *testing.T) {
	// Errors as net/http returns them: inside a *url.Error whose text
	// holds the request URL, which must never be quoted.
	const signed = "https://b.example.com/k?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=deadbeef"
	wrap := func(err error) error {
		return fmt.Errorf("operation error S3: ListObjectsV2: %w", &url.Error{Op: "Get", URL: signed, Err: err})
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused"},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection reset"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Name: "b.example.com", Err: "no such host", IsNotFound: true}}, "DNS: no such host b.example.com"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Name: "b.example.com", Err: "i/o timeout", IsTimeout: true}}, "DNS lookup of b.example.com timed out"},
		{context.DeadlineExceeded, "timed out"},
		{errors.New("something else " + signed), "unavailable"},
	} {
		got := driver.NoAnswerCause(wrap(c.err), "unavailable")
		if got != c.want {
			t.Errorf("%v: %q, want %q", c.err, got, c.want)
		}
		if strings.Contains(got, "AKIDSECRET") || strings.Contains(got, "deadbeef") {
			t.Errorf("%v: %q quotes the URL", c.err, got)
		}
	}
}
