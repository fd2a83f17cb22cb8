package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/atomicfile"
	"github.com/signetdev/signet/storage/s3blob"
)

// CheckpointExport copies every signed audit checkpoint, once written, to
// an S3 (or S3-compatible) bucket that signet's operators should not be
// able to rewrite: a bucket in another account, with Object Lock, written
// with credentials that may only put objects. Objects are written with
// If-None-Match, so signet never replaces one.
type CheckpointExport struct {
	// URL is s3://BUCKET/PREFIX/ (the prefix may be empty).
	URL string `yaml:"url"`
	// Region is the bucket's region; us-east-1 when empty.
	Region string `yaml:"region"`
	// Endpoint is an S3-compatible store's base URL; AWS when empty.
	Endpoint string `yaml:"endpoint"`
	// PathStyle puts the bucket in the path.
	PathStyle bool `yaml:"path_style"`
}

// Environment variables with the export's own credentials. Without them,
// the standard AWS credential chain of the server is used.
const (
	envExportKeyID  = "SIGNET_CHECKPOINT_ACCESS_KEY_ID"
	envExportSecret = "SIGNET_CHECKPOINT_SECRET_ACCESS_KEY"
	envExportToken  = "SIGNET_CHECKPOINT_SESSION_TOKEN"
)

// maxCheckpointFile bounds what is read back from the bucket to compare.
const maxCheckpointFile = 64 << 10

// checkpointExporter uploads checkpoint files from dir that it has not
// uploaded yet. It remembers the last one in a marker file in dir, per
// destination, so a restart does not upload everything again.
type checkpointExporter struct {
	dir    string
	dest   string // the URL, for logs and the marker's name
	prefix string
	bucket *s3blob.Backend
	logger *slog.Logger
}

// newCheckpointExporter checks e and opens its bucket. getenv reads the
// export's credentials.
func newCheckpointExporter(ctx context.Context, e *CheckpointExport, dir string, getenv func(string) string, logger *slog.Logger) (*checkpointExporter, error) {
	u, err := url.Parse(e.URL)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("audit_checkpoint_export: url must look like s3://bucket/prefix/, not %q", e.URL)
	}
	prefix := strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	cfg := s3blob.Config{
		Bucket: u.Host, Prefix: prefix, Region: e.Region, Endpoint: e.Endpoint, PathStyle: e.PathStyle,
		AccessKeyID: getenv(envExportKeyID), SecretAccessKey: getenv(envExportSecret), SessionToken: getenv(envExportToken),
	}
	b, err := s3blob.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit_checkpoint_export: %s", signet.ErrorMessage(err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &checkpointExporter{dir: dir, dest: e.URL, prefix: prefix, bucket: b, logger: logger}, nil
}

// markerPath names the file holding the last name exported to x.dest.
func (x *checkpointExporter) markerPath() string {
	sum := sha256.Sum256([]byte(x.dest))
	return filepath.Join(x.dir, ".exported-"+hex.EncodeToString(sum[:6]))
}

// exportOnce uploads, in order, the checkpoint files written since the
// last one exported, and returns how many it uploaded. A file whose object
// already exists with the same bytes counts as exported; with other bytes
// it is an error (signet does not overwrite it) and exporting stops there
// until someone looks.
func (x *checkpointExporter) exportOnce(ctx context.Context) (int, error) {
	names, err := auditlog.CheckpointFiles(x.dir)
	if err != nil {
		return 0, err
	}
	last := ""
	if b, err := os.ReadFile(x.markerPath()); err == nil {
		last = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if name <= last {
			continue
		}
		data, err := os.ReadFile(filepath.Join(x.dir, name))
		if err != nil {
			return n, err
		}
		err = x.bucket.PutNew(ctx, x.prefix+name, data, "application/json")
		if signet.ErrorCode(err) == signet.Conflict {
			have, rerr := x.bucket.ReadSmall(ctx, x.prefix+name, maxCheckpointFile)
			if rerr != nil {
				return n, fmt.Errorf("checkpoint %s exists at the destination and cannot be read back: %w", name, rerr)
			}
			if string(have) != string(data) {
				return n, fmt.Errorf("checkpoint %s exists at the destination with other content; not overwritten", name)
			}
			err = nil
		}
		if err != nil {
			return n, err
		}
		if err := atomicfile.WriteFile(x.markerPath(), []byte(name+"\n"), 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// run exports at every interval until ctx is done.
func (x *checkpointExporter) run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = auditlog.DefaultCheckpointInterval
	}
	x.logger.Info("audit checkpoint export", "to", x.dest, "interval", interval)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		n, err := x.exportOnce(ctx)
		if err != nil && ctx.Err() == nil {
			x.logger.Error("audit checkpoint export", "to", x.dest, "exported", n, "err", err)
		} else if n > 0 {
			x.logger.Debug("audit checkpoint export", "to", x.dest, "exported", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
