package azureblob

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Constants of the driver.
const (
	// ClockSkew is how far before SignOptions.Now the start time (st) of
	// every SAS is dated, so clients whose clocks run behind Azure's can use
	// a fresh URL at once.
	ClockSkew = 5 * time.Minute
	// GrantParam is the query parameter that carries SignOptions.GrantID.
	// A SAS has no field for it, so it is not signed: Azure ignores it, and
	// its storage logs record it with the request URI, which is what the
	// correlation needs.
	GrantParam = "x-signet-grant"
	// MaxBlockSize is the largest block Azure accepts (4000 MiB), hence
	// the largest part of a chunked upload.
	MaxBlockSize = 4000 << 20
	// MaxPutSize is the largest blob one Put Blob may write (5000 MiB);
	// Azure answers 413 to a larger single PUT.
	MaxPutSize = 5000 << 20
	// BlobTypeHeader and BlockBlob form the header every single-PUT URL
	// requires (SignedURL.Headers lists it).
	BlobTypeHeader = "x-ms-blob-type"
	BlockBlob      = "BlockBlob"
)

// Config configures a Backend for one container.
type Config struct {
	// Account is the storage account's name. Required.
	Account string
	// Container is the container the backend signs for (a connector's
	// bucket); it signs for no other. Required.
	Container string
	// Prefix, when not empty, is the connector's prefix ("team/", ending
	// in "/"): the backend signs only keys below it.
	Prefix string
	// Endpoint is the base URL of the account's blob service, without
	// query: "https://<account>.blob.core.windows.net" when empty. For
	// Azurite give the path-style form, such as
	// "http://127.0.0.1:10000/devstoreaccount1", or a host-style one,
	// which user-delegation SAS needs. URLs use https only when the
	// endpoint does (spr=https); otherwise they allow both.
	Endpoint string

	// SharedKey is the account key (base64). With it the backend signs
	// service SAS. It is never shown in errors or logs.
	SharedKey string
	// Credential is the Entra ID credential to obtain user delegation keys
	// with when SharedKey is empty; when it is nil too, the default Azure
	// credential chain is used (environment, workload identity, managed
	// identity, Azure CLI). The identity needs a role that allows
	// Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey
	// and the data actions of the URLs (Storage Blob Data Contributor).
	Credential azcore.TokenCredential

	// Revocable signs every SAS against a stored access policy of the
	// container (si=, see RotateAccessPolicies) that holds its permissions,
	// instead of giving them in the SAS (sp=), so a revocation can
	// withdraw the URLs already issued. It needs SharedKey: a user
	// delegation SAS cannot name a stored access policy. The backend
	// creates its three policies (signet-r-..., signet-cw-..., signet-w-...)
	// at the first URL when the container lacks them; the container may
	// hold at most two other policies.
	Revocable bool

	// DisableMultipartSHA256 refuses (Unimplemented) a SHA-256 for chunked
	// uploads instead of verifying it by reading the committed blob back
	// once (see CompleteMultipart).
	DisableMultipartSHA256 bool

	// HTTPClient performs the control-plane calls; the SDK's default when
	// nil.
	HTTPClient *http.Client

	// Now is the clock for user delegation key and stored access policy
	// bookkeeping; time.Now when nil. URLs are dated with SignOptions.Now.
	Now func() time.Time
}

// Backend signs Azure Blob Storage SAS URLs for one container and drives
// chunked uploads with Put Block and Put Block List. It implements
// driver.Backend and driver.Multipart and is safe for concurrent use.
type Backend struct {
	account      string
	container    string
	prefix       string
	containerURL string // endpoint + "/" + container, escaped
	protocol     sas.Protocol
	noMPCheck    bool
	now          func() time.Time

	// Exactly one of sharedKey and keys is set.
	sharedKey *sas.SharedKeyCredential
	keys      *delegationKeys
	pol       *policies // Config.Revocable; with sharedKey only

	client *container.Client
	httpc  *http.Client // Config.HTTPClient, for Diagnose's calls
}

var (
	_ driver.Backend   = (*Backend)(nil)
	_ driver.Multipart = (*Backend)(nil)
)

// Open checks cfg and returns a Backend. It makes no network call: bad
// credentials show up when they are used (with Entra ID, at the first
// SignedURL, which fetches a user delegation key). Errors are
// *signet.Error values: Invalid for a bad configuration (account or
// container name, prefix, endpoint, an account key that is not base64, or
// Entra ID with an endpoint whose host does not start with the account
// name, or Revocable without SharedKey), and Unavailable when the default
// Azure credential chain cannot be set up.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	const op = "azureblob.Open"
	invalid := func(msg string) (*Backend, error) {
		return nil, signet.E(op, signet.Invalid, msg, nil)
	}
	if !validAccount(cfg.Account) {
		return invalid("account name must be 3 to 24 lower-case letters and digits")
	}
	if !validContainer(cfg.Container) {
		return invalid("container name must be 3 to 63 characters of [a-z0-9-], starting with a letter or digit, without \"--\"")
	}
	if err := storage.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	endpoint := "https://" + cfg.Account + ".blob.core.windows.net"
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || !driver.ValidEndpoint(u) {
			return invalid("endpoint must be an http or https URL with a host and an optional path, such as https://account.blob.core.windows.net")
		}
		endpoint = u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
	}
	b := &Backend{
		account:      cfg.Account,
		container:    cfg.Container,
		prefix:       cfg.Prefix,
		containerURL: endpoint + "/" + cfg.Container,
		protocol:     sas.ProtocolHTTPSandHTTP,
		noMPCheck:    cfg.DisableMultipartSHA256,
		now:          cfg.Now,
		httpc:        cfg.HTTPClient,
	}
	if strings.HasPrefix(endpoint, "https:") {
		b.protocol = sas.ProtocolHTTPS
	}
	if b.now == nil {
		b.now = time.Now
	}
	opts := &container.ClientOptions{}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	if cfg.SharedKey != "" {
		if cfg.Credential != nil {
			return invalid("give either an account key or an Entra ID credential, not both")
		}
		cred, err := container.NewSharedKeyCredential(cfg.Account, cfg.SharedKey)
		if err != nil {
			// The SDK's error would quote nothing secret, but say no more
			// than needed.
			return invalid("account key must be base64")
		}
		b.sharedKey = cred
		if b.client, err = container.NewClientWithSharedKeyCredential(b.containerURL, cred, opts); err != nil {
			return nil, signet.E(op, signet.Internal, "", err)
		}
		if cfg.Revocable {
			b.pol = &policies{client: b.client, now: b.now}
		}
		return b, nil
	}
	if cfg.Revocable {
		return invalid("revocable needs an account key: a user delegation SAS cannot name a stored access policy")
	}

	// Entra ID: user-delegation SAS. The SDK takes the account name of a
	// user delegation key from the first label of the endpoint's host.
	host := endpoint[strings.Index(endpoint, "://")+3:]
	if !strings.HasPrefix(host, cfg.Account+".") {
		return invalid("user-delegation SAS needs a host-style endpoint whose host starts with the account name, such as https://account.blob.core.windows.net")
	}
	cred := cfg.Credential
	if cred == nil {
		var err error
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: policy.ClientOptions{Transport: transport(cfg.HTTPClient)},
		})
		if err != nil {
			return nil, signet.E(op, signet.Unavailable, "cannot set up the default Azure credential chain", err)
		}
	}
	var err error
	if b.client, err = container.NewClient(b.containerURL, cred, opts); err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}
	svc, err := service.NewClient(endpoint+"/", cred, &service.ClientOptions{ClientOptions: opts.ClientOptions})
	if err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}
	b.keys = &delegationKeys{svc: svc, now: b.now}
	return b, nil
}

// transport returns c as a policy.Transporter, or nil for the default.
func transport(c *http.Client) policy.Transporter {
	if c == nil {
		return nil
	}
	return c
}

// SignedURL implements driver.Backend: it signs a SAS for opts with the
// SDK's sas package and makes no network call, except with Entra ID when
// the user delegation key must be fetched or renewed.
//
// The SAS is a blob SAS (sr=b) for the key, with permissions r for GET and
// HEAD, c+w for a single PUT and w for a part (a block: the URL carries
// comp=block and the part's block id, see CreateMultipart); st is Now less
// ClockSkew; se is the expiry; spr is https when the endpoint is https;
// and sip is the client network as an IPv4 range when ClientPrefix is
// set. A single-PUT URL requires the header x-ms-blob-type: BlockBlob,
// which SignedURL.Headers lists. GrantID travels unsigned in GrantParam.
// A revocable backend (Config.Revocable) puts no sp in the SAS but names
// the container's stored access policy for those permissions (si); it
// reads the container's policies at its first URL and then every
// PolicyMaxAge, and creates them when missing.
//
// A SAS cannot make Azure check a request's Content-Type, length or
// checksum, so for a single PUT a ContentType, a Size >= 0 or a SHA256 is
// refused with Unimplemented (a chunked upload binds all three; see
// CompleteMultipart). A part URL accepts a Size, and CompleteMultipart
// checks every block's size; a ContentType on a part is Invalid (set it
// when the upload starts) and a SHA256 on a part Unimplemented. An IPv6
// ClientPrefix is Unimplemented: sip takes IPv4 only.
//
// SignedURL.Expires is opts.Expires, or earlier with Entra ID when the
// user delegation key expires first: Azure refuses a SAS once its key has
// expired. Keys are asked for the longest lifetime Azure allows (7 days)
// and renewed when a URL would outlive them (at most once an hour), so
// only URLs of nearly 7 days are shortened, by at most that hour.
//
// Errors are *signet.Error values: PermissionDenied for another container
// or a key outside Config.Prefix; Invalid for a method other than GET,
// HEAD or PUT, bindings on another method, or a part larger than
// MaxBlockSize; InvalidPart for a malformed part; InvalidExpiry for an
// expiry not a whole second 1 s to 7 days after Now; Unimplemented as
// above; with Entra ID, PermissionDenied when the identity may not get a
// user delegation key and Unavailable when no key can be had; when
// revocable and the container's policies were never read, the store's
// errors reading or writing them (Conflict when it holds too many others).
func (b *Backend) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	const op = "azureblob.SignedURL"
	if err := b.scope().CheckKey(op, o.Bucket, o.Key); err != nil {
		return nil, err
	}
	switch o.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return nil, signet.E(op, signet.Invalid, "method must be GET, HEAD or PUT", nil)
	}
	isPart := o.UploadID != "" || o.PartNumber != 0
	switch {
	case o.Method != http.MethodPut && (o.ContentType != "" || o.Size >= 0 || o.SHA256 != nil || isPart):
		return nil, signet.E(op, signet.Invalid, "size, content type, sha256 and parts apply to PUT only", nil)
	case o.Size < -1:
		return nil, signet.E(op, signet.Invalid, "size must be -1 (unbound) or at least 0", nil)
	case isPart && (o.UploadID == "" || o.PartNumber < 1 || o.PartNumber > storage.MaxParts):
		return nil, signet.E(op, signet.InvalidPart, "a part URL needs an upload id and a part number from 1 to 10000", nil)
	case isPart && o.ContentType != "":
		return nil, signet.E(op, signet.Invalid, "a part URL cannot bind a content type; set it when the upload starts", nil)
	case isPart && o.SHA256 != nil:
		return nil, signet.E(op, signet.Unimplemented, "a part URL cannot bind a sha256; bind it to the whole upload", nil)
	case isPart && o.Size > MaxBlockSize:
		return nil, signet.E(op, signet.Invalid, "an Azure block holds at most 4000 MiB", nil)
	case o.SHA256 != nil:
		return nil, signet.E(op, signet.Unimplemented, "Azure cannot check the SHA-256 of a single upload; use a chunked upload, which signet verifies when it completes", nil)
	case o.ContentType != "":
		return nil, signet.E(op, signet.Unimplemented, "Azure SAS cannot require a Content-Type; use a chunked upload, whose content type signet sets when it completes", nil)
	case o.Size >= 0 && !isPart:
		return nil, signet.E(op, signet.Unimplemented, "Azure SAS cannot bind the size of a single upload; use a chunked upload, whose size signet checks when it completes", nil)
	}
	var ipr sas.IPRange
	if o.ClientPrefix.IsValid() {
		var ok bool
		if ipr, ok = ipRange(o.ClientPrefix); !ok {
			return nil, signet.E(op, signet.Unimplemented, "Azure SAS can restrict clients to IPv4 networks only", nil)
		}
	}
	if o.Now.IsZero() {
		return nil, signet.E(op, signet.Invalid, "no issue time", nil)
	}
	expires := o.Expires
	if secs := expires.Unix() - o.Now.Unix(); secs < 1 || time.Duration(secs)*time.Second > signet.MaxExpiry || !expires.Equal(expires.Truncate(time.Second)) {
		return nil, signet.E(op, signet.InvalidExpiry, "expiry must be a whole second, 1 second to 7 days after the issue time", nil)
	}
	var block string
	if isPart {
		nonce, _, ok := parseUploadID(o.UploadID)
		if !ok {
			return nil, signet.E(op, signet.InvalidPart, "malformed upload id", nil)
		}
		block = blockID(nonce, kindPart, o.PartNumber)
	}

	perms := "r"
	if o.Method == http.MethodPut {
		perms = "cw"
		if isPart {
			perms = "w"
		}
	}
	v := sas.BlobSignatureValues{
		Protocol:      b.protocol,
		StartTime:     o.Now.Add(-ClockSkew).Truncate(time.Second),
		ExpiryTime:    expires,
		Permissions:   perms,
		IPRange:       ipr,
		ContainerName: b.container,
		BlobName:      o.Key,
	}
	var qp sas.QueryParameters
	var err error
	if b.pol != nil {
		// The policy gives the permissions; the SAS may not repeat them.
		var ps *policySet
		if ps, err = b.pol.get(ctx); err != nil {
			return nil, err
		}
		v.Permissions, v.Identifier = "", ps.ids[perms]
	}
	if b.sharedKey != nil {
		qp, err = v.SignWithSharedKey(b.sharedKey)
	} else {
		var k *delegationKey
		if k, err = b.keys.get(ctx, o.Now, expires); err != nil {
			return nil, err
		}
		if k.expiry.Before(expires) {
			expires = k.expiry
			v.ExpiryTime = expires
		}
		qp, err = v.SignWithUserDelegation(k.cred)
	}
	if err != nil {
		return nil, signet.E(op, signet.Internal, "", err)
	}

	q := qp.Encode()
	u := make([]byte, 0, len(b.containerURL)+len(o.Key)*3/2+len(q)+128)
	u = append(b.blobURL(u, o.Key), '?')
	if isPart {
		u = append(u, "comp=block&blockid="...)
		u = append(u, url.QueryEscape(block)...)
		u = append(u, '&')
	}
	u = append(u, q...)
	if o.GrantID != "" {
		u = append(u, '&')
		u = append(u, GrantParam...)
		u = append(u, '=')
		u = append(u, url.QueryEscape(o.GrantID)...)
	}
	s := &driver.SignedURL{Method: o.Method, URL: string(u), Expires: expires}
	if o.Method == http.MethodPut && !isPart {
		s.Headers = map[string]string{BlobTypeHeader: BlockBlob}
	}
	return s, nil
}

// blobURL appends the URL of key (without query) to dst.
func (b *Backend) blobURL(dst []byte, key string) []byte {
	dst = append(dst, b.containerURL...)
	dst = append(dst, '/')
	return appendPathEscaped(dst, key)
}

// appendPathEscaped appends key percent-encoded for a URL path: every byte
// but the unreserved characters of RFC 3986 and "/" is escaped, so "%",
// "+", "?" and "#" travel literally and Azure decodes exactly the key.
func appendPathEscaped(dst []byte, key string) []byte {
	return driver.AppendEscaped(dst, key, true)
}

// ipRange returns the sip range of an IPv4 network (IPv4-mapped IPv6
// included): a single address for a /32, else its first and last
// addresses. ok is false for IPv6.
func ipRange(p netip.Prefix) (r sas.IPRange, ok bool) {
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() {
		if bits < 96 {
			return r, false
		}
		addr, bits = addr.Unmap(), bits-96
	}
	if !addr.Is4() {
		return r, false
	}
	first := netip.PrefixFrom(addr, bits).Masked().Addr().As4()
	r.Start = net.IP(first[:])
	if bits == 32 {
		return r, true
	}
	last := first
	host := ^uint32(0) >> bits
	for i := range 4 {
		last[i] |= byte(host >> (24 - 8*i))
	}
	r.End = net.IP(last[:])
	return r, true
}

// scope is what the backend signs for; every key and listing prefix is
// checked against it.
func (b *Backend) scope() driver.Scope {
	return driver.Scope{Bucket: b.container, Prefix: b.prefix, Noun: "container"}
}

// validAccount reports whether s is a storage account name.
func validAccount(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validContainer reports whether s is a container name.
func validContainer(s string) bool {
	if len(s) < 3 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
