package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"sync"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/storage/s3blob"
)

// backends opens and caches one driver per connector version. Drivers hold
// credential and session caches (an S3 role session, derived signing keys),
// so they are built once, not per request; a changed connector or
// credential makes a new one.
type backends struct {
	local *fileblob.Store

	mu    sync.Mutex
	cache map[string]driver.Backend
}

// Open implements http.OpenBackend. Every store is registered here,
// explicitly.
func (b *backends) Open(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
	if c.Backend == signet.BackendLocal {
		if err := fileblob.ValidateBucket(c.Bucket); err != nil {
			return nil, err
		}
		return b.local, nil
	}
	key := cacheKey(c, secret)
	b.mu.Lock()
	be, ok := b.cache[key]
	b.mu.Unlock()
	if ok {
		return be, nil
	}
	var err error
	switch c.Backend {
	case signet.BackendS3:
		be, err = openS3(ctx, c, secret)
	case signet.BackendGCS, signet.BackendAzure:
		return nil, signet.Errorf(signet.Unimplemented, "backend %q is not available in this build yet", c.Backend)
	default:
		return nil, signet.Errorf(signet.Invalid, "unknown backend %q (known: local, s3, gcs, azure)", c.Backend)
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cache == nil {
		b.cache = map[string]driver.Backend{}
	}
	if old, ok := b.cache[key]; ok {
		return old, nil
	}
	// Connectors change rarely; drop stale versions of this team's.
	for k := range b.cache {
		if len(k) > len(c.Team) && k[:len(c.Team)+1] == c.Team+"\x00" {
			delete(b.cache, k)
		}
	}
	b.cache[key] = be
	return be, nil
}

// cacheKey names a connector version and its credentials without holding
// the secret itself.
func cacheKey(c *signet.Connector, secret map[string]string) string {
	h := sha256.New()
	conf, _ := json.Marshal(c)
	h.Write(conf)
	names := make([]string, 0, len(secret))
	for k := range secret {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		h.Write([]byte(strconv.Quote(k) + "=" + strconv.Quote(secret[k]) + "\n"))
	}
	return c.Team + "\x00" + hex.EncodeToString(h.Sum(nil))
}

// openS3 maps a connector and its stored credentials to an S3 driver.
func openS3(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
	for k := range c.Options {
		switch k {
		case "path_style", "role_arn", "role_external_id", "kms_key_id", "sts_endpoint":
		default:
			return nil, signet.Errorf(signet.Invalid, "unknown s3 connector option %q (known: path_style, role_arn, role_external_id, kms_key_id, sts_endpoint)", k)
		}
	}
	for k := range secret {
		switch k {
		case "access_key_id", "secret_access_key", "session_token":
		default:
			return nil, signet.Errorf(signet.Invalid, "unknown s3 credential %q (known: access_key_id, secret_access_key, session_token)", k)
		}
	}
	if (secret["access_key_id"] == "") != (secret["secret_access_key"] == "") && len(secret) > 0 {
		return nil, signet.Errorf(signet.Invalid, "s3 credentials need both access_key_id and secret_access_key")
	}
	pathStyle := false
	if v, ok := c.Options["path_style"]; ok {
		var err error
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, signet.Errorf(signet.Invalid, "option path_style must be true or false")
		}
	}
	return s3blob.Open(ctx, s3blob.Config{
		Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint, PathStyle: pathStyle,
		AccessKeyID: secret["access_key_id"], SecretAccessKey: secret["secret_access_key"], SessionToken: secret["session_token"],
		RoleARN: c.Options["role_arn"], RoleExternalID: c.Options["role_external_id"], STSEndpoint: c.Options["sts_endpoint"],
		KMSKeyID: c.Options["kms_key_id"],
	})
}
