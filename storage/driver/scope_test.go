package driver

import (
	"testing"

	"github.com/signetdev/signet"
)

func TestScope(t *testing.T) {
	s := Scope{Bucket: "b", Prefix: "team/", Noun: "container"}
	for _, tc := range []struct {
		bucket, key string
		ok          bool
	}{
		{"b", "team/x", true},
		{"b", "team/", false}, // the prefix itself names no object
		{"b", "other/x", false},
		{"c", "team/x", false},
	} {
		err := s.CheckKey("op", tc.bucket, tc.key)
		if (err == nil) != tc.ok || (err != nil && signet.ErrorCode(err) != signet.PermissionDenied) {
			t.Errorf("CheckKey(%s, %s) = %v, want ok %v", tc.bucket, tc.key, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		bucket, prefix string
		ok             bool
	}{
		{"b", "team/", true},
		{"b", "team/sub/", true},
		{"b", "tea", false},
		{"c", "team/", false},
	} {
		err := s.CheckListPrefix("op", tc.bucket, tc.prefix)
		if (err == nil) != tc.ok || (err != nil && signet.ErrorCode(err) != signet.PermissionDenied) {
			t.Errorf("CheckListPrefix(%s, %s) = %v, want ok %v", tc.bucket, tc.prefix, err, tc.ok)
		}
	}
	if err := s.CheckKey("op", "c", "team/x"); err == nil || signet.ErrorMessage(err) != "the key is outside the connector's container and prefix" {
		t.Errorf("message: %v", err)
	}
}
