package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/storage/azureblob"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/storage/gcsblob"
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
	key := cacheKey(c)
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
	case signet.BackendAzure:
		be, err = openAzure(ctx, c, secret)
	case signet.BackendGCS:
		be, err = openGCS(ctx, c, secret)
	default:
		return nil, signet.Errorf(signet.Invalid, "unknown backend %q (known: %s)", c.Backend, strings.Join(signet.Backends, ", "))
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

// cacheKey names a connector version. Stored credentials get a new
// reference each time they are set, and the reference is part of the
// connector, so the key changes with them without the secret itself
// being hashed on every request.
func cacheKey(c *signet.Connector) string {
	conf, _ := json.Marshal(c)
	sum := sha256.Sum256(conf)
	return c.Team + "\x00" + hex.EncodeToString(sum[:])
}

// checkKeys refuses option or credential names a backend does not know, so
// a typo is an error instead of a silently ignored setting.
func checkKeys(backend, what string, m map[string]string, known ...string) error {
	for k := range m {
		if !slices.Contains(known, k) {
			return signet.Errorf(signet.Invalid, "unknown %s %s %q (known: %s)", backend, what, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// openAzure maps a connector to an Azure Blob driver: bucket is the
// container, option account the storage account; credential account_key
// signs service SAS, none signs user-delegation SAS with the server's Entra
// ID identity. Option revocable ("true", account_key only) signs every SAS
// against the container's stored access policies, which a revocation
// rotates (docs/azure.md, "Revocation").
func openAzure(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
	if err := checkKeys("azure", "option", c.Options, "account", sighttp.OptionAzureRevocable); err != nil {
		return nil, err
	}
	if err := checkKeys("azure", "credential", secret, "account_key"); err != nil {
		return nil, err
	}
	revocable := false
	if v, ok := c.Options[sighttp.OptionAzureRevocable]; ok {
		var err error
		if revocable, err = strconv.ParseBool(v); err != nil {
			return nil, signet.Errorf(signet.Invalid, "option revocable must be true or false")
		}
	}
	return azureblob.Open(ctx, azureblob.Config{
		Account: c.Options["account"], Container: c.Bucket, Prefix: c.Prefix, Endpoint: c.Endpoint,
		SharedKey: secret["account_key"], Revocable: revocable,
	})
}

// openGCS maps a connector to a Google Cloud Storage driver: credential
// credentials_json (a service account key, RSA V4 signing) or
// hmac_access_id with hmac_secret (HMAC V4 signing); without credentials,
// keyless signing through signBlob as option service_account (or the
// metadata server's account) with the server's Google credentials, at
// option iam_endpoint when the IAM Credentials API is reached through a
// private endpoint.
func openGCS(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
	if err := checkKeys("gcs", "option", c.Options, "service_account", "iam_endpoint"); err != nil {
		return nil, err
	}
	if err := checkKeys("gcs", "credential", secret, "credentials_json", "hmac_access_id", "hmac_secret"); err != nil {
		return nil, err
	}
	cfg := gcsblob.Config{
		Bucket: c.Bucket, Prefix: c.Prefix, Endpoint: c.Endpoint,
		HMACAccessID: secret["hmac_access_id"], HMACSecret: secret["hmac_secret"],
		ServiceAccount: c.Options["service_account"], IAMEndpoint: c.Options["iam_endpoint"],
	}
	if j := secret["credentials_json"]; j != "" {
		cfg.CredentialsJSON = []byte(j)
	}
	return gcsblob.Open(ctx, cfg)
}

// openS3 maps a connector and its stored credentials to an S3 driver.
// Credential session_token (temporary keys) needs session_expires (RFC
// 3339): URLs are cut to it. Options role_duration (a Go duration such as
// "12h"), role_session_name, role_external_id and sts_endpoint tune the
// sessions of option role_arn.
func openS3(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error) {
	if err := checkKeys("s3", "option", c.Options, "path_style", "role_arn", "role_duration", "role_session_name", "role_external_id",
		"kms_key_id", "sts_endpoint", "source_vpce", "team_networks"); err != nil {
		return nil, err
	}
	if err := checkKeys("s3", "credential", secret, "access_key_id", "secret_access_key", "session_token", "session_expires"); err != nil {
		return nil, err
	}
	if (secret["access_key_id"] == "") != (secret["secret_access_key"] == "") && len(secret) > 0 {
		return nil, signet.Errorf(signet.Invalid, "s3 credentials need both access_key_id and secret_access_key")
	}
	var sessionExpires time.Time
	switch tok, exp := secret["session_token"], secret["session_expires"]; {
	case tok != "" && exp == "":
		// Without it the driver could not promise any URL lifetime.
		return nil, signet.Errorf(signet.Invalid, "s3 temporary credentials (session_token) need their expiry (session_expires, RFC 3339); "+
			"or sign with role_arn or the server's credential chain, which signet refreshes")
	case exp != "":
		var err error
		if sessionExpires, err = time.Parse(time.RFC3339, exp); err != nil {
			return nil, signet.Errorf(signet.Invalid, "s3 credential session_expires must be an RFC 3339 time, such as 2026-11-27T18:00:00Z")
		}
	}
	if c.Options["role_arn"] == "" {
		for _, k := range []string{"role_duration", "role_session_name", "role_external_id", "sts_endpoint"} {
			if _, ok := c.Options[k]; ok {
				return nil, signet.Errorf(signet.Invalid, "option %s applies with role_arn only", k)
			}
		}
	}
	var roleDuration time.Duration
	if v, ok := c.Options["role_duration"]; ok {
		var err error
		if roleDuration, err = time.ParseDuration(v); err != nil || roleDuration <= 0 {
			return nil, signet.Errorf(signet.Invalid, "option role_duration must be a duration such as 1h or 12h")
		}
	}
	pathStyle := false
	if v, ok := c.Options["path_style"]; ok {
		var err error
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, signet.Errorf(signet.Invalid, "option path_style must be true or false")
		}
	}
	// The team's networks (sighttp.OptionTeamNetworks), set by the server
	// for role connectors, are in the connector and so in the cache key: a
	// changed allow-list opens a driver whose session policy carries them.
	nets, err := signet.ParseNetworks(c.Options["team_networks"])
	if err != nil {
		return nil, err
	}
	return s3blob.Open(ctx, s3blob.Config{
		Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, Endpoint: c.Endpoint, PathStyle: pathStyle,
		AccessKeyID: secret["access_key_id"], SecretAccessKey: secret["secret_access_key"],
		SessionToken: secret["session_token"], SessionExpires: sessionExpires,
		RoleARN: c.Options["role_arn"], RoleDuration: roleDuration, RoleSessionName: c.Options["role_session_name"],
		RoleExternalID: c.Options["role_external_id"], STSEndpoint: c.Options["sts_endpoint"],
		KMSKeyID: c.Options["kms_key_id"], SourceNetworks: nets, SourceVPCEs: []string{c.Options["source_vpce"]},
	})
}
