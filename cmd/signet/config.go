package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/signetdev/signet/auditsink"
	"go.yaml.in/yaml/v3"
)

// Config is the server's configuration, read from a YAML file and
// overridden by flags. Unknown keys are errors that name the key.
type Config struct {
	// Addr is the address to listen on.
	Addr string `yaml:"addr"`
	// DataDir holds the SQLite database, the local store's blobs and keys,
	// and the admin token written at bootstrap.
	DataDir string `yaml:"data_dir"`
	// DB is the metadata database: a postgres:// (or postgresql://) URL,
	// which replicas share, or else a SQLite file path; <data_dir>/signet.db
	// when empty.
	DB string `yaml:"db"`
	// PublicURL is the base of URLs the local store hands out; derived from
	// the listen address when empty. Never taken from request headers.
	PublicURL string `yaml:"public_url"`
	// SecretKeyFile holds the 32-byte key (hex) that seals stored store
	// credentials; <data_dir>/secret.key, created on first start, when
	// empty. SIGNET_SECRET_KEY (hex) overrides it. Replicas must share it.
	SecretKeyFile string `yaml:"secret_key_file"`
	// TrustedProxies lists the networks (CIDR) of reverse proxies whose
	// X-Forwarded-For / Forwarded headers are believed. Empty: the client
	// is always the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AuditRetention, when set (720h, 30d), prunes audit entries older
	// than it every hour, up to a signed checkpoint (docs/audit.md,
	// "Retention"); absent or 0 keeps every entry.
	AuditRetention Age `yaml:"audit_retention"`
	// AuditCheckpointKeyFile is the Ed25519 key that signs audit
	// checkpoints; <data_dir>/audit-checkpoint.key, created on first start,
	// when empty. Keep it, and its public key, outside the database.
	AuditCheckpointKeyFile string `yaml:"audit_checkpoint_key_file"`
	// AuditCheckpointDir receives a signed checkpoint every interval;
	// <data_dir>/checkpoints when empty. Ship it somewhere signet's
	// operators cannot rewrite.
	AuditCheckpointDir string `yaml:"audit_checkpoint_dir"`
	// AuditCheckpointInterval is how often a checkpoint is signed, even
	// when idle; 1m when zero.
	AuditCheckpointInterval time.Duration `yaml:"audit_checkpoint_interval"`
	// AuditCheckpointExport, when set, copies each checkpoint to a bucket
	// outside signet's control (see CheckpointExport).
	AuditCheckpointExport *CheckpointExport `yaml:"audit_checkpoint_export"`
	// AuditSinks stream the committed audit log to files, standard output
	// or webhooks (docs/audit.md, "Streaming sinks"). Checked at startup.
	AuditSinks []auditsink.Config `yaml:"audit_sinks"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
}

// DefaultConfig returns the embedded default configuration.
func DefaultConfig() Config {
	return Config{
		Addr:      "127.0.0.1:8080",
		DataDir:   "./signet-data",
		LogLevel:  "info",
		LogFormat: "text",
	}
}

// ReadConfigFile decodes the YAML file at path over c, strictly.
func ReadConfigFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %s", path, yamlProblem(err))
	}
	return nil
}

// yamlProblem rewrites yaml's "field x not found in type main.Config" into
// a message that names the key and the keys that exist.
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if line, key, ok := strings.Cut(m, "field "); ok && strings.Contains(key, " not found in type") {
			key, typ, _ := strings.Cut(key, " not found in type ")
			m = line + "unknown key " + fmt.Sprintf("%q", key)
			if known := knownKeys(typ); known != "" {
				m += " (known keys: " + known + ")"
			}
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// configTypes are the structs a config file decodes into, by the name
// yaml's errors give them.
var configTypes = map[string]reflect.Type{}

func init() {
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || configTypes[t.String()] != nil || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		configTypes[t.String()] = t
		for f := range t.Fields() {
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Config]())
}

// knownKeys lists the YAML keys of the config struct named typ, or "" for
// a type that is not one.
func knownKeys(typ string) string {
	t, ok := configTypes[strings.TrimSpace(typ)]
	if !ok {
		return ""
	}
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return strings.Join(keys, ", ")
}
