package fileblob

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Key is an HMAC key that signs or verifies URLs. Its String and LogValue
// methods show only the id, so a Key can be printed or logged safely.
type Key struct {
	ID     string // short public name carried in URLs ("kid")
	Secret []byte // at least 16 bytes; 32 random bytes recommended
}

// String returns the key's id only.
func (k Key) String() string { return "fileblob.Key(" + k.ID + ")" }

// LogValue returns the key's id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// Options configures a Store.
type Options struct {
	// BaseURL is the public base of signed URLs, such as
	// "http://127.0.0.1:8080": an absolute http or https URL without query
	// or fragment, at which the Store is served under /blob/. Required.
	BaseURL string
	// Keys sign and verify URLs. The first signs new URLs; all of them
	// verify, so a key can be rotated by putting a new one first and
	// removing the old one once the URLs it signed have expired. A URL
	// signed by a key no longer listed is refused. At least one is required.
	Keys []Key
	// Now is the clock that decides expiry; time.Now when nil.
	Now func() time.Time
	// Logger receives one access line per /blob request; none when nil.
	Logger *slog.Logger
	// ClientIP returns the address of the client of a request, compared
	// with a URL's signed network. When nil it is parsed from RemoteAddr;
	// set it when the store runs behind trusted proxies.
	ClientIP func(*http.Request) netip.Addr
	// MaxObjectSize limits uploads whose URL binds no size. Zero means
	// storage.MaxObjectSize (5 TiB).
	MaxObjectSize int64
	// Revoked, when set, is asked on every use of a URL that passed all
	// other checks whether its grant was revoked; a revoked URL is refused
	// with 403 "revoked", and an error refuses it with 503
	// "revocation_unknown" (fail closed).
	Revoked RevokedFunc
	// OnServe, when set, is given a report of each request made with a
	// URL this store signed with a grant id (served, or refused after its
	// signature checked out: expired, revoked, another method or network)
	// once its answer is written, on the request's goroutine: it must not
	// block. A request whose signature does not check out is not reported,
	// so that no one without a URL can make the caller store anything.
	// The report holds no query, signature or header; its Source is
	// signet.UsageSourceLocal and its RequestID the answer's X-Request-Id.
	OnServe func(*signet.UsageEvent)
	// KeyFile is the file Keys were loaded from, and ListenAddr the
	// address the server listens on; both only inform Diagnose (the key's
	// age, a loopback BaseURL on a server others can reach). Optional.
	KeyFile    string
	ListenAddr string
}

// Store is a local blob store. It implements driver.Backend,
// driver.Multipart and http.Handler. It is safe for concurrent use.
type Store struct {
	root     *os.Root
	baseURL  string
	keys     []Key
	now      func() time.Time
	log      *slog.Logger
	clientIP func(*http.Request) netip.Addr
	maxSize  int64
	revoked  RevokedFunc
	onServe  func(*signet.UsageEvent)
	keyFile  string // Options.KeyFile, for Diagnose
	listen   string // Options.ListenAddr, for Diagnose
	// Striped locks: uploadLocks serialize changes to one upload and
	// objectLocks the final renames of one object. A holder of an upload lock
	// may take an object lock, never the other way round.
	uploadLocks [64]sync.Mutex
	objectLocks [64]sync.Mutex
}

var (
	_ driver.Backend   = (*Store)(nil)
	_ driver.Multipart = (*Store)(nil)
	_ http.Handler     = (*Store)(nil)
)

// Top-level directories below the root.
const (
	dirObjects = "objects"
	dirMeta    = "meta"
	dirUploads = "uploads"
	dirTmp     = "tmp"
)

// staleTmp is how long a file under tmp/ may go unwritten before Open
// removes it as left over by a crash.
const staleTmp = time.Hour

// Open opens the store kept in directory root, creating it if needed. It
// returns an Invalid *signet.Error for bad options and an Internal one when
// the directory cannot be prepared.
func Open(root string, opts Options) (*Store, error) {
	const op = "fileblob.Open"
	s := &Store{
		now:      opts.Now,
		log:      opts.Logger,
		clientIP: opts.ClientIP,
		maxSize:  opts.MaxObjectSize,
		revoked:  opts.Revoked,
		onServe:  opts.OnServe,
		keyFile:  opts.KeyFile,
		listen:   opts.ListenAddr,
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || !driver.ValidEndpoint(u) {
		return nil, signet.E(op, signet.Invalid, "base URL must be an absolute http or https URL without query", err)
	}
	s.baseURL = strings.TrimSuffix(opts.BaseURL, "/")
	if len(opts.Keys) == 0 {
		return nil, signet.E(op, signet.Invalid, "at least one signing key is required", nil)
	}
	seen := map[string]bool{}
	for _, k := range opts.Keys {
		if !validKeyID(k.ID) || seen[k.ID] {
			return nil, signet.E(op, signet.Invalid, fmt.Sprintf("signing key id %q is malformed or repeated", k.ID), nil)
		}
		if len(k.Secret) < 16 {
			return nil, signet.E(op, signet.Invalid, fmt.Sprintf("signing key %q is shorter than 16 bytes", k.ID), nil)
		}
		seen[k.ID] = true
		s.keys = append(s.keys, Key{ID: k.ID, Secret: append([]byte(nil), k.Secret...)})
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clientIP == nil {
		s.clientIP = remoteIP
	}
	if s.maxSize <= 0 {
		s.maxSize = storage.MaxObjectSize
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, signet.E(op, signet.Internal, "cannot create the store directory", err)
	}
	if s.root, err = os.OpenRoot(root); err != nil {
		return nil, signet.E(op, signet.Internal, "cannot open the store directory", err)
	}
	for _, d := range []string{dirObjects, dirMeta, dirUploads, dirTmp} {
		if err := s.root.MkdirAll(d, 0o700); err != nil {
			s.root.Close()
			return nil, signet.E(op, signet.Internal, "cannot prepare the store directory", err)
		}
	}
	s.removeStaleTmp()
	return s, nil
}

// Close releases the store's directory handle.
func (s *Store) Close() error { return s.root.Close() }

// removeStaleTmp removes what crashed writers left under tmp/.
func (s *Store) removeStaleTmp() {
	f, err := s.root.Open(dirTmp)
	if err != nil {
		return
	}
	defer f.Close()
	entries, _ := f.ReadDir(-1)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmp {
			s.root.RemoveAll(path.Join(dirTmp, e.Name()))
		}
	}
}

// remoteIP is the address of the TCP peer.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// SignedURL implements driver.Backend. It signs every option it is given:
// the store enforces all of them. The portable layer has checked opts;
// SignedURL still refuses, with Invalid or InvalidKey, a bucket name or key
// the store cannot hold, a method other than GET, HEAD or PUT, bindings on
// a method other than PUT, and a malformed upload id (InvalidPart).
func (s *Store) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	const op = "fileblob.SignedURL"
	if err := checkBucket(op, o.Bucket); err != nil {
		return nil, err
	}
	if err := storage.ValidateKey(o.Key); err != nil {
		return nil, err
	}
	switch o.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return nil, signet.E(op, signet.Invalid, "method must be GET, HEAD or PUT", nil)
	}
	bound := o.ContentType != "" || o.Size >= 0 || o.SHA256 != nil || o.UploadID != ""
	if bound && o.Method != http.MethodPut {
		return nil, signet.E(op, signet.Invalid, "upload bindings apply to PUT only", nil)
	}
	if o.UploadID != "" && (!validUploadID(o.UploadID) || o.PartNumber < 1 || o.PartNumber > maxParts) {
		return nil, signet.E(op, signet.InvalidPart, "malformed upload id or part number", nil)
	}
	if !storage.IsToken(o.GrantID) || len(o.GrantID) > 128 {
		return nil, signet.E(op, signet.Invalid, "malformed grant id", nil)
	}
	if o.Size < -1 {
		return nil, signet.E(op, signet.Invalid, "size must be -1 (unbound) or at least 0", nil)
	}
	if o.SHA256 != nil && len(o.SHA256) != 32 {
		return nil, signet.E(op, signet.Invalid, "sha256 must be 32 bytes", nil)
	}
	k := s.keys[0]
	c := &claims{
		KeyID:          k.ID,
		Method:         o.Method,
		Bucket:         o.Bucket,
		Key:            o.Key,
		Expires:        o.Expires.Unix(),
		Size:           o.Size,
		HasContentType: o.ContentType != "",
		ContentType:    o.ContentType,
		SHA256:         o.SHA256,
		GrantID:        o.GrantID,
	}
	if o.ClientPrefix.IsValid() {
		c.ClientPrefix = normalizePrefix(o.ClientPrefix)
	}
	if o.UploadID != "" {
		c.UploadID, c.PartNumber = o.UploadID, o.PartNumber
	}
	u := &driver.SignedURL{
		Method:  o.Method,
		URL:     s.baseURL + objectURLPath(o.Bucket, o.Key) + "?" + c.query(c.mac(k.Secret)),
		Expires: o.Expires,
	}
	if c.HasContentType {
		u.Headers = map[string]string{"Content-Type": c.ContentType}
	}
	return u, nil
}

// verify checks c's signature against the key it names.
func (s *Store) verify(c *claims, sig []byte) bool {
	for _, k := range s.keys {
		if k.ID == c.KeyID {
			return hmac.Equal(c.mac(k.Secret), sig)
		}
	}
	return false
}

// ValidateBucket returns a signet Invalid error unless name can be a bucket
// of the local store, so connectors can be checked when they are set.
func ValidateBucket(name string) error { return checkBucket("fileblob.ValidateBucket", name) }

// checkBucket returns Invalid unless name matches [a-z0-9][a-z0-9._-]{0,62}
// without "..".
func checkBucket(op, name string) error {
	if !validBucket(name) {
		return signet.E(op, signet.Invalid, "bucket name must be 1 to 63 characters of [a-z0-9._-], starting with a letter or digit, without \"..\"", nil)
	}
	return nil
}

func validBucket(name string) bool {
	if name == "" || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return true
}

// newID returns 16 random bytes in hex.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lockUpload returns the mutex that serializes changes to upload id.
func (s *Store) lockUpload(id string) *sync.Mutex { return stripe(&s.uploadLocks, id) }

// lockObject returns the mutex that serializes the renames of an object.
func (s *Store) lockObject(bucket, key string) *sync.Mutex {
	return stripe(&s.objectLocks, bucket+"/"+key)
}

func stripe(locks *[64]sync.Mutex, name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(name))
	return &locks[h.Sum32()%uint32(len(locks))]
}

// fsCode classifies a file system error met while storing or reading a key.
func fsCode(err error) signet.Code {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return signet.NotFound
	case isConflict(err):
		return signet.Conflict
	case isNameTooLong(err):
		return signet.InvalidKey
	}
	return signet.Internal
}
