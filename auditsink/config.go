package auditsink

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Sink types.
const (
	TypeFile    = "file"
	TypeStdout  = "stdout"
	TypeWebhook = "webhook"
)

// Where a sink starts when it has no cursor yet.
const (
	StartBeginning = "beginning"
	StartEnd       = "end"
)

// Config is one entry of the `audit_sinks:` list of the server's config
// file. Zero values take the defaults noted.
type Config struct {
	// Name identifies the sink in logs, metrics and the names of its
	// cursor and spool under the data directory. Required; letters,
	// digits, '-' and '_'; unique.
	Name string `yaml:"name"`
	// Type is file, stdout or webhook.
	Type string `yaml:"type"`
	// Start is where a sink without a cursor begins: "beginning" (the
	// first entry still in the log; default) or "end" (entries appended
	// from its first start on).
	Start string `yaml:"start"`
	// Batch is the most entries read and delivered at once; 500 when 0,
	// at most 1000.
	Batch int `yaml:"batch"`
	// PollInterval is how often the log is read when no commit of this
	// process woke the sink (entries written by other replicas); 2s when 0.
	PollInterval time.Duration `yaml:"poll_interval"`

	// Path is the file a file sink appends to. Required for file.
	Path string `yaml:"path"`
	// MaxSize rotates the file before it would grow past this size
	// (bytes, or a string such as "100MiB"); 100MiB when 0.
	MaxSize ByteSize `yaml:"max_size"`
	// MaxBackups is how many rotated files are kept; 0 keeps all.
	MaxBackups int `yaml:"max_backups"`

	// URL receives a webhook sink's batches by POST. Required for webhook.
	URL string `yaml:"url"`
	// Headers are sent with every request. A value may name environment
	// variables as ${NAME}, expanded at startup, so secrets stay out of
	// the file. Values are never logged.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request; 10s when 0.
	Timeout time.Duration `yaml:"timeout"`
	// SpoolMaxSize bounds the on-disk buffer of batches not yet accepted
	// by the receiver; 64MiB when 0. When it is full the sink stops
	// reading the log (it falls behind; nothing is dropped).
	SpoolMaxSize ByteSize `yaml:"spool_max_size"`
	// BackoffMin and BackoffMax bound the delay between retries, which
	// doubles from BackoffMin, with jitter; 1s and 1m when 0.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`

	linger time.Duration // gathering time before a read; defaultLinger
}

// ByteSize is a size in bytes. In YAML it is an integer or a string with
// a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize int64

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([KMG]i?B|B)?\s*$`)

// ParseByteSize parses "64MiB", "100MB", "4096".
func ParseByteSize(s string) (ByteSize, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number of bytes or a number with B, KB, MB, GB, KiB, MiB or GiB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML reads an integer or a string with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a number or a string such as \"64MiB\"", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Defaults.
const (
	defaultBatch        = 500
	maxBatch            = 1000
	defaultPoll         = 2 * time.Second
	defaultMaxSize      = 100 << 20
	minMaxSize          = 4 << 10
	defaultTimeout      = 10 * time.Second
	defaultSpoolMaxSize = 64 << 20
	minSpoolMaxSize     = 16 << 10
	defaultBackoffMin   = time.Second
	defaultBackoffMax   = time.Minute
	defaultLinger       = 100 * time.Millisecond
)

// withDefaults validates c, fills its defaults and expands environment
// variables in header values. Errors name the sink and the key.
func (c Config) withDefaults(getenv func(string) string) (Config, error) {
	where := fmt.Sprintf("audit sink %q", c.Name)
	if c.Name == "" {
		return c, fmt.Errorf("audit sink: name is required")
	}
	if !nameRE.MatchString(c.Name) {
		return c, fmt.Errorf("%s: name may hold only letters, digits, '-' and '_' (at most 64)", where)
	}
	bad := func(key string) error {
		return fmt.Errorf("%s: key %q does not apply to a %s sink", where, key, c.Type)
	}
	if c.linger == 0 {
		c.linger = defaultLinger
	}
	switch c.Start {
	case "":
		c.Start = StartBeginning
	case StartBeginning, StartEnd:
	default:
		return c, fmt.Errorf("%s: start must be %q or %q, not %q", where, StartBeginning, StartEnd, c.Start)
	}
	switch {
	case c.Batch == 0:
		c.Batch = defaultBatch
	case c.Batch < 0 || c.Batch > maxBatch:
		return c, fmt.Errorf("%s: batch must be between 1 and %d", where, maxBatch)
	}
	switch {
	case c.PollInterval == 0:
		c.PollInterval = defaultPoll
	case c.PollInterval < 0:
		return c, fmt.Errorf("%s: poll_interval must be positive", where)
	}
	webKeys := map[string]bool{"url": c.URL != "", "headers": c.Headers != nil, "timeout": c.Timeout != 0,
		"spool_max_size": c.SpoolMaxSize != 0, "backoff_min": c.BackoffMin != 0, "backoff_max": c.BackoffMax != 0}
	checkWeb := func() error {
		for _, k := range []string{"url", "headers", "timeout", "spool_max_size", "backoff_min", "backoff_max"} {
			if webKeys[k] {
				return bad(k)
			}
		}
		return nil
	}
	checkFile := func() error {
		switch {
		case c.Path != "":
			return bad("path")
		case c.MaxSize != 0:
			return bad("max_size")
		case c.MaxBackups != 0:
			return bad("max_backups")
		}
		return nil
	}
	switch c.Type {
	case TypeStdout:
		if err := checkFile(); err != nil {
			return c, err
		}
		if err := checkWeb(); err != nil {
			return c, err
		}
	case TypeFile:
		if err := checkWeb(); err != nil {
			return c, err
		}
		if c.Path == "" {
			return c, fmt.Errorf("%s: path is required for a file sink", where)
		}
		switch {
		case c.MaxSize == 0:
			c.MaxSize = defaultMaxSize
		case c.MaxSize < minMaxSize:
			return c, fmt.Errorf("%s: max_size must be at least %d bytes", where, minMaxSize)
		}
		if c.MaxBackups < 0 {
			return c, fmt.Errorf("%s: max_backups must not be negative", where)
		}
	case TypeWebhook:
		if err := checkFile(); err != nil {
			return c, err
		}
		if c.URL == "" {
			return c, fmt.Errorf("%s: url is required for a webhook sink", where)
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("%s: url must be an absolute http or https URL", where)
		}
		h := make(map[string]string, len(c.Headers))
		for k, v := range c.Headers {
			if k == "" || strings.ContainsAny(k, " :\r\n\t") {
				return c, fmt.Errorf("%s: header name %q is not valid", where, k)
			}
			var missing []string
			v = envRE.ReplaceAllStringFunc(v, func(ref string) string {
				name := envRE.FindStringSubmatch(ref)[1]
				val := getenv(name)
				if val == "" {
					missing = append(missing, name)
				}
				return val
			})
			if len(missing) > 0 {
				// Names only: the value may be a secret.
				return c, fmt.Errorf("%s: header %s refers to environment variable %s, which is not set", where, k, missing[0])
			}
			if strings.ContainsAny(v, "\r\n") {
				return c, fmt.Errorf("%s: header %s has a line break in its value", where, k)
			}
			h[http.CanonicalHeaderKey(k)] = v
		}
		c.Headers = h
		switch {
		case c.Timeout == 0:
			c.Timeout = defaultTimeout
		case c.Timeout < 0:
			return c, fmt.Errorf("%s: timeout must be positive", where)
		}
		switch {
		case c.SpoolMaxSize == 0:
			c.SpoolMaxSize = defaultSpoolMaxSize
		case c.SpoolMaxSize < minSpoolMaxSize:
			return c, fmt.Errorf("%s: spool_max_size must be at least %d bytes", where, minSpoolMaxSize)
		}
		if c.BackoffMin == 0 {
			c.BackoffMin = defaultBackoffMin
		}
		if c.BackoffMax == 0 {
			c.BackoffMax = max(defaultBackoffMax, c.BackoffMin)
		}
		if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
			return c, fmt.Errorf("%s: backoff_min must be positive and at most backoff_max", where)
		}
	case "":
		return c, fmt.Errorf("%s: type is required (file, stdout or webhook)", where)
	default:
		return c, fmt.Errorf("%s: unknown type %q (file, stdout or webhook)", where, c.Type)
	}
	return c, nil
}

// Validate checks configs as New would, without opening anything.
func Validate(configs []Config, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	seen := map[string]bool{}
	for _, c := range configs {
		if _, err := c.withDefaults(getenv); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("audit sink %q: name used twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}
