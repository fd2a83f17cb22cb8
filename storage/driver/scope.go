package driver

import (
	"strings"

	"github.com/signetdev/signet"
)

// Scope is the bucket (or container) and key prefix a connector's backend
// signs for. Backends check every key and listing prefix against it before
// signing or listing anything, so that no request can reach beyond it.
type Scope struct {
	Bucket, Prefix string
	// Noun names the bucket in messages: "bucket", or "container" on
	// Azure.
	Noun string
}

// CheckKey refuses, as PermissionDenied, a bucket other than s.Bucket or a
// key that is not strictly below s.Prefix.
func (s Scope) CheckKey(op, bucket, key string) error {
	if bucket != s.Bucket || !strings.HasPrefix(key, s.Prefix) || len(key) == len(s.Prefix) {
		return signet.E(op, signet.PermissionDenied, "the key is outside the connector's "+s.Noun+" and prefix", nil)
	}
	return nil
}

// CheckListPrefix refuses, as PermissionDenied, a bucket other than
// s.Bucket or a listing prefix that does not start with s.Prefix.
func (s Scope) CheckListPrefix(op, bucket, prefix string) error {
	if bucket != s.Bucket || !strings.HasPrefix(prefix, s.Prefix) {
		return signet.E(op, signet.PermissionDenied, "the prefix is outside the connector's "+s.Noun+" and prefix", nil)
	}
	return nil
}
