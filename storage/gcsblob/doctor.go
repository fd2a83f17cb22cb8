package gcsblob

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

var _ driver.Doctor = (*Backend)(nil)

// Bounds of the doctor's checks. GCS refuses a V4 signature dated more
// than 15 minutes from its clock, and a URL dated ahead of it is not yet
// valid.
const (
	skewFail = 5 * time.Minute
	// readOnlyScope is the OAuth scope of the bucket metadata read.
	readOnlyScope = "https://www.googleapis.com/auth/devstorage.read_only"
)

// bucketMeta is what the checks read of the JSON API's bucket resource.
type bucketMeta struct {
	Versioning *struct {
		Enabled bool `json:"enabled"`
	} `json:"versioning"`
	SoftDeletePolicy *struct {
		RetentionDurationSeconds string `json:"retentionDurationSeconds"`
	} `json:"softDeletePolicy"`
	CORS []struct {
		Origin         []string `json:"origin"`
		Method         []string `json:"method"`
		ResponseHeader []string `json:"responseHeader"`
	} `json:"cors"`
	Encryption *struct {
		DefaultKMSKeyName string `json:"defaultKmsKeyName"`
	} `json:"encryption"`
	Lifecycle *struct {
		Rule []struct {
			Action struct {
				Type string `json:"type"`
			} `json:"action"`
			Condition map[string]json.RawMessage `json:"condition"`
		} `json:"rule"`
	} `json:"lifecycle"`
	IPFilter *struct {
		Mode                string `json:"mode"`
		PublicNetworkSource *struct {
			AllowedIPCidrRanges []string `json:"allowedIpCidrRanges"`
		} `json:"publicNetworkSource"`
		VPCNetworkSources []struct {
			AllowedIPCidrRanges []string `json:"allowedIpCidrRanges"`
		} `json:"vpcNetworkSources"`
	} `json:"ipFilter"`
}

// metaErr is why the bucket's metadata could not be read.
type metaErr struct {
	status int    // HTTP status; 0 without an answer
	token  bool   // a token was sent
	what   string // user-safe description
}

func (e *metaErr) Error() string { return e.what }

// Diagnose implements driver.Doctor: the signing credentials (a key file
// or HMAC key as configured; keyless, that Google signs as the service
// account), that the bucket exists and the prefix can be listed with a
// signed XML API request, the clock against the store's Date header, and
// from the bucket's JSON API metadata: CORS for opts.Origins (GET, HEAD,
// PUT, ETag as a response header), default encryption, a lifecycle rule
// that aborts incomplete multipart uploads, versioning or soft delete, and
// an IP filter that admits the team's networks. The metadata is read with
// an OAuth token of signet's identity (the key file's service account, or
// the keyless caller); an HMAC key authenticates the XML API only, so with
// one those checks are skipped unless the store answers without a token.
// Every call reads.
func (b *Backend) Diagnose(ctx context.Context, opts *driver.DiagnoseOptions) ([]driver.Check, error) {
	if opts == nil {
		opts = &driver.DiagnoseOptions{}
	}
	creds := b.checkCredentials(ctx)
	meta, err := b.bucketMetadata(ctx)
	var me *metaErr
	bucket, date := b.checkBucket(ctx, errors.As(err, &me) && me.status == http.StatusNotFound)
	if bucket.Name == "credentials" {
		creds, bucket = bucket, driver.Check{Name: "bucket", Status: driver.CheckSkip, Detail: "the store refused the credentials"}
	}
	return []driver.Check{
		creds,
		bucket,
		driver.ClockCheck(b.now(), date, skewFail, "GCS refuses URLs dated too far from its time"),
		b.checkCORS(opts.Origins, meta, err),
		b.checkEncryption(meta, err),
		b.checkLifecycle(meta, err),
		b.checkVersioning(meta, err),
		b.checkNetwork(opts, meta, err),
	}, nil
}

func (b *Backend) checkCredentials(ctx context.Context) driver.Check {
	c := driver.Check{Name: "credentials", Status: driver.CheckOK}
	switch {
	case b.signer.iam != nil:
		email, err := b.signer.iam.identity(ctx)
		if err == nil {
			// Sign what the bucket check sends: a listing of the prefix.
			_, err = b.signer.presign(ctx, &request{method: http.MethodGet, host: b.host, path: b.basePath,
				time: b.now(), expires: int64(controlExpiry / time.Second)})
		}
		if err != nil {
			c.Status = driver.CheckFail
			c.Detail = "keyless signing does not work: " + signet.ErrorMessage(err)
			if errors.Is(err, errNoDefaultCredentials) || email == "" {
				c.Fix = "give signet Google credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity, or the metadata server) and name the service account to sign as (--service-account)"
			} else {
				c.Fix = fmt.Sprintf("allow signet's identity to sign as %s: gcloud iam service-accounts add-iam-policy-binding %s --member=serviceAccount:SIGNET_IDENTITY --role=roles/iam.serviceAccountTokenCreator", email, email)
			}
			return c
		}
		c.Detail = fmt.Sprintf("keyless: a token was obtained and Google signed a request as %s; keys are Google-managed and rotated, so URLs live at most %s", email, KeylessMaxExpiry)
	case b.signer.alg == algHMAC:
		c.Detail = "HMAC key present; it does not expire (rotate it on your schedule: gcloud storage hmac create, then deactivate the old one)"
	default:
		c.Detail = "service account key of " + b.signer.id + " parses (RSA); it does not expire unless the key's expiry policy says so"
	}
	return c
}

// checkBucket lists at most one object below the prefix with a signed XML
// API request and returns the store's Date header. missing tells that the
// JSON API answered 404 for the bucket.
func (b *Backend) checkBucket(ctx context.Context, missing bool) (driver.Check, string) {
	c := driver.Check{Name: "bucket"}
	q := []param{{"max-keys", "1"}}
	if b.prefix != "" {
		q = append(q, param{"prefix", b.prefix})
	}
	resp, err := b.callPath(ctx, http.MethodGet, b.basePath, q, nil, nil)
	if err == nil {
		date := resp.Header.Get("Date")
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("bucket %s reachable; %s listable with the signing credentials", b.bucket, orWhole(b.prefix))
		return c, date
	}
	c.Status = driver.CheckFail
	c.Detail = "cannot list " + b.listed() + ": " + describeErr(err)
	var se *storeErr
	date := ""
	if errors.As(err, &se) {
		date = se.Date
	}
	switch {
	case se != nil && (se.Code == "NoSuchBucket" || se.Status == http.StatusNotFound || missing):
		if se.Code != "NoSuchBucket" && se.Status != http.StatusNotFound {
			c.Detail += "; the JSON API does not find the bucket either"
		}
		c.Fix = fmt.Sprintf("create the bucket (gcloud storage buckets create gs://%s --uniform-bucket-level-access) or correct the connector's bucket", b.bucket)
	case se != nil && (se.Code == "SignatureDoesNotMatch" || se.Code == "InvalidSecurity" || se.Code == "InvalidAccessKeyId" || se.Status == http.StatusUnauthorized):
		c.Name = "credentials"
		c.Fix = "the store refused the signing credentials: set them again with signet connector set (an active HMAC key, or a key file whose key is enabled)"
	case se != nil && se.Status == http.StatusForbidden:
		c.Fix = fmt.Sprintf("grant the signing service account object access on the bucket: gcloud storage buckets add-iam-policy-binding gs://%s --member=serviceAccount:SIGNER --role=roles/storage.objectUser", b.bucket)
	case errors.As(err, new(*signet.Error)):
		c.Detail = fmt.Sprintf("cannot sign the listing of bucket %s: %s", b.bucket, signet.ErrorMessage(err))
		c.Fix = "fix the credentials check first"
	default:
		c.Fix = "check the connector's endpoint and that the store is reachable from signet"
	}
	return c, date
}

// bucketMetadata reads the bucket's JSON API resource, with an OAuth token
// of signet's identity when it has one.
func (b *Backend) bucketMetadata(ctx context.Context) (*bucketMeta, error) {
	ts, err := b.tokenSource(ctx)
	if err != nil {
		return nil, &metaErr{what: "no OAuth token to read the bucket's metadata with (" + signet.ErrorMessage(err) + ")", token: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.scheme+"://"+b.hostport+"/storage/v1/b/"+escape(b.bucket), nil)
	if err != nil {
		return nil, err
	}
	if ts != nil {
		tok, err := ts.Token()
		if err != nil {
			what := "cannot obtain an OAuth token to read the bucket's metadata"
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				what += " (" + tokenError(re).Error() + ")"
			}
			return nil, &metaErr{what: what, token: true}
		}
		tok.SetAuthHeader(req)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, &metaErr{what: "no answer from the JSON API (" + driver.NoAnswerCause(err, string(storeCode(&transportErr{cause: unwrapURLError(err)}))) + ")", token: ts != nil}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &metaErr{what: "the JSON API's answer was cut short", token: ts != nil}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &metaErr{status: resp.StatusCode, token: ts != nil, what: "the JSON API answered HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	var m bucketMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &metaErr{status: resp.StatusCode, token: ts != nil, what: "the JSON API's bucket resource does not parse"}
	}
	return &m, nil
}

// tokenSource returns the OAuth token source of signet's identity: the
// keyless caller's, or a JWT grant of the key file's service account;
// nil with an HMAC key, which the JSON API does not take.
func (b *Backend) tokenSource(ctx context.Context) (oauth2.TokenSource, error) {
	switch {
	case b.signer.iam != nil:
		if b.signer.iam.ts != nil {
			return b.signer.iam.ts, nil
		}
		tctx := ctx
		if b.signer.iam.client != nil {
			tctx = context.WithValue(ctx, oauth2.HTTPClient, b.signer.iam.client)
		}
		creds, err := google.FindDefaultCredentials(tctx, readOnlyScope)
		if err != nil {
			return nil, signet.E("gcsblob.Diagnose", signet.Unavailable, "no Application Default Credentials", err)
		}
		return creds.TokenSource, nil
	case b.signer.rsaKey != nil:
		der, err := x509.MarshalPKCS8PrivateKey(b.signer.rsaKey)
		if err != nil {
			return nil, signet.E("gcsblob.Diagnose", signet.Internal, "", err)
		}
		conf := &jwt.Config{
			Email: b.signer.id, PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
			Scopes: []string{readOnlyScope}, TokenURL: google.Endpoint.TokenURL,
		}
		return conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, b.client)), nil
	}
	return nil, nil
}

// unreadable reports a check that needs the bucket's metadata when it
// could not be read.
func (b *Backend) unreadable(c driver.Check, err error) driver.Check {
	describe := fmt.Sprintf("check by hand: gcloud storage buckets describe gs://%s --format=json", b.bucket)
	var me *metaErr
	if !errors.As(err, &me) {
		c.Status, c.Detail, c.Fix = driver.CheckWarn, "cannot read the bucket's metadata", describe
		return c
	}
	switch {
	case me.status == http.StatusNotFound:
		c.Status, c.Detail = driver.CheckSkip, "the bucket does not exist"
	case !me.token && (me.status == http.StatusUnauthorized || me.status == http.StatusForbidden):
		c.Status, c.Fix = driver.CheckSkip, describe
		c.Detail = "an HMAC key authenticates the XML API only, and the bucket's settings are read through the JSON API (a key file or keyless signing gives signet an OAuth identity)"
	case me.status == http.StatusUnauthorized || me.status == http.StatusForbidden:
		c.Status = driver.CheckWarn
		c.Detail = "signet's identity may not read the bucket's metadata (" + me.what + ")"
		c.Fix = fmt.Sprintf("grant it storage.buckets.get (and storage.buckets.getIpFilter): gcloud storage buckets add-iam-policy-binding gs://%s --member=serviceAccount:SIGNER --role=roles/storage.legacyBucketReader; or %s", b.bucket, describe)
	default:
		c.Status, c.Detail, c.Fix = driver.CheckWarn, "cannot read the bucket's metadata: "+me.what, describe
	}
	return c
}

func (b *Backend) checkCORS(origins []string, m *bucketMeta, err error) driver.Check {
	c := driver.Check{Name: "cors"}
	if len(origins) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "no browser origins configured (give --origin)"
		return c
	}
	if err != nil {
		return b.unreadable(c, err)
	}
	var missing []string
	for _, o := range origins {
		methods := map[string]bool{}
		etag := false
		for _, r := range m.CORS {
			if !slices.ContainsFunc(r.Origin, func(p string) bool { return p == "*" || strings.EqualFold(p, o) }) {
				continue
			}
			for _, meth := range r.Method {
				methods[strings.ToUpper(meth)] = true
			}
			etag = etag || slices.ContainsFunc(r.ResponseHeader, func(h string) bool { return strings.EqualFold(h, "ETag") })
		}
		for _, meth := range []string{"GET", "HEAD", "PUT"} {
			if !methods[meth] && !methods["*"] {
				missing = append(missing, o+" "+meth)
			}
		}
		if !etag {
			missing = append(missing, o+" (ETag not a response header)")
		}
	}
	if len(missing) == 0 {
		c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("GET, HEAD and PUT allowed from %s, ETag exposed", strings.Join(origins, ", "))
		return c
	}
	doc, _ := json.Marshal([]map[string]any{{
		"origin": origins, "method": []string{"GET", "HEAD", "PUT"},
		"responseHeader": []string{"Content-Type", "ETag"}, "maxAgeSeconds": 3600,
	}})
	c.Status, c.Detail = driver.CheckFail, "CORS does not allow: "+strings.Join(missing, ", ")
	c.Fix = fmt.Sprintf("echo '%s' > cors.json && gcloud storage buckets update gs://%s --cors-file=cors.json (this replaces the bucket's CORS rules: merge any you keep)", doc, b.bucket)
	return c
}

// checkEncryption: GCS always encrypts at rest; a default KMS key is
// shown. Connectors name no KMS key, so there is nothing to compare with.
func (b *Backend) checkEncryption(m *bucketMeta, err error) driver.Check {
	c := driver.Check{Name: "encryption"}
	if err != nil {
		c = b.unreadable(c, err)
		c.Detail = "GCS always encrypts data at rest; " + c.Detail
		return c
	}
	c.Status = driver.CheckOK
	if m.Encryption != nil && m.Encryption.DefaultKMSKeyName != "" {
		c.Detail = "default encryption with the Cloud KMS key " + m.Encryption.DefaultKMSKeyName + " (customer-managed)"
		return c
	}
	c.Detail = fmt.Sprintf("Google-managed encryption at rest (always on); no default Cloud KMS key (to use one: gcloud storage buckets update gs://%s --default-encryption-key=KEY)", b.bucket)
	return c
}

func (b *Backend) checkLifecycle(m *bucketMeta, err error) driver.Check {
	c := driver.Check{Name: "lifecycle"}
	if err != nil {
		return b.unreadable(c, err)
	}
	var cond map[string]any
	if b.prefix != "" {
		cond = map[string]any{"age": 2, "matchesPrefix": []string{b.prefix}}
	} else {
		cond = map[string]any{"age": 2}
	}
	doc, _ := json.Marshal(map[string]any{"rule": []any{map[string]any{
		"action": map[string]string{"type": "AbortIncompleteMultipartUpload"}, "condition": cond}}})
	if m.Lifecycle != nil {
	rules:
		for _, r := range m.Lifecycle.Rule {
			if r.Action.Type != "AbortIncompleteMultipartUpload" {
				continue
			}
			var age int
			covers := true
			for k, v := range r.Condition {
				switch k {
				case "age":
					if json.Unmarshal(v, &age) != nil {
						continue rules
					}
				case "matchesPrefix":
					var ps []string
					if json.Unmarshal(v, &ps) != nil {
						continue rules
					}
					covers = slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(b.prefix, p) })
				default:
					// A condition on anything else (suffix, dates) may
					// not cover the prefix's uploads.
					covers = false
				}
			}
			if covers && age > 0 {
				c.Status = driver.CheckOK
				c.Detail = fmt.Sprintf("a rule aborts incomplete multipart uploads below %s after %d day(s)", orWhole(b.prefix), age)
				return c
			}
		}
	}
	c.Status = driver.CheckFail
	c.Detail = "no lifecycle rule aborts incomplete multipart uploads below " + orWhole(b.prefix) + "; if signet is down past an upload's deadline its parts stay (and are billed)"
	c.Fix = fmt.Sprintf("echo '%s' > lifecycle.json && gcloud storage buckets update gs://%s --lifecycle-file=lifecycle.json (this replaces the bucket's lifecycle rules: merge any you keep)", doc, b.bucket)
	return c
}

func (b *Backend) checkVersioning(m *bucketMeta, err error) driver.Check {
	c := driver.Check{Name: "versioning"}
	if err != nil {
		return b.unreadable(c, err)
	}
	if m.Versioning != nil && m.Versioning.Enabled {
		c.Status, c.Detail = driver.CheckOK, "versioning enabled: an overwritten or deleted object can be recovered"
		return c
	}
	if p := m.SoftDeletePolicy; p != nil {
		if secs, err := strconv.ParseInt(p.RetentionDurationSeconds, 10, 64); err == nil && secs > 0 {
			c.Status = driver.CheckOK
			c.Detail = fmt.Sprintf("versioning off, but soft delete keeps deleted and overwritten objects for %s", time.Duration(secs)*time.Second)
			return c
		}
	}
	c.Status = driver.CheckWarn
	c.Detail = "versioning off and no soft delete: an upload URL can overwrite an object for good"
	c.Fix = fmt.Sprintf("gcloud storage buckets update gs://%s --versioning (with a lifecycle rule that deletes noncurrent versions), or --soft-delete-duration=7d", b.bucket)
	return c
}

func (b *Backend) checkNetwork(opts *driver.DiagnoseOptions, m *bucketMeta, err error) driver.Check {
	c := driver.Check{Name: "network"}
	if len(opts.Networks) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "the team has no network allow-list"
		return c
	}
	team := opts.Team
	if team == "" {
		team = "TEAM"
	}
	fix := fmt.Sprintf("signet policy render %s > ipfilter.json && gcloud storage buckets update gs://%s --ip-filter-file=ipfilter.json (merge the networks of other teams sharing the bucket; see docs/gcs.md)", team, b.bucket)
	if err != nil {
		c = b.unreadable(c, err)
		c.Detail += "; GCS signed URLs cannot carry a network, so a bucket IP filter is the store-side layer"
		return c
	}
	// The renderer decides which networks belong in the public source.
	pol, rerr := b.RenderNetworkPolicy(team, opts.Networks)
	var want ipFilter
	if rerr != nil || json.Unmarshal([]byte(pol.Document), &want) != nil {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "cannot render the team's IP filter", fix
		return c
	}
	f := m.IPFilter
	if f == nil || !strings.EqualFold(f.Mode, "Enabled") {
		c.Status, c.Fix = driver.CheckFail, fix
		c.Detail = "the bucket has no enabled IP filter (or signet may not read it: storage.buckets.getIpFilter); GCS signed URLs cannot carry a network, so URLs work from any network"
		return c
	}
	var have []netip.Prefix
	if f.PublicNetworkSource != nil {
		for _, s := range f.PublicNetworkSource.AllowedIPCidrRanges {
			if p, err := netip.ParsePrefix(s); err == nil {
				have = append(have, p.Masked())
			} else if a, err := netip.ParseAddr(s); err == nil {
				have = append(have, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	var missing []string
	for _, s := range want.PublicNetworkSource.AllowedIPCidrRanges {
		p := netip.MustParsePrefix(s)
		if !slices.ContainsFunc(have, func(h netip.Prefix) bool { return h.Bits() <= p.Bits() && h.Contains(p.Addr()) }) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Fix = driver.CheckFail, fix
		c.Detail = "the bucket's IP filter does not admit the team's networks " + strings.Join(missing, ", ") + ": their clients are refused"
		return c
	}
	// Private networks reach GCS through a VPC: the filter must list them
	// under a VPC network source, which names the VPC signet cannot know.
	var vpc, private []string
	for _, v := range f.VPCNetworkSources {
		vpc = append(vpc, v.AllowedIPCidrRanges...)
	}
	for _, p := range opts.Networks {
		p = p.Masked()
		if slices.Contains(want.PublicNetworkSource.AllowedIPCidrRanges, p.String()) {
			continue
		}
		if !slices.ContainsFunc(vpc, func(s string) bool {
			h, err := netip.ParsePrefix(s)
			return err == nil && h.Bits() <= p.Bits() && h.Contains(p.Addr())
		}) {
			private = append(private, p.String())
		}
	}
	if len(private) > 0 {
		c.Status = driver.CheckWarn
		c.Detail = "the bucket's IP filter is enabled, but the team's private networks " + strings.Join(private, ", ") + " are under no VPC network source: their clients are refused unless they reach GCS another way"
		c.Fix = fmt.Sprintf("add them under vpcNetworkSources with your VPC network (projects/P/global/networks/N): %s", fix)
		return c
	}
	c.Status = driver.CheckOK
	c.Detail = "the bucket's IP filter is enabled and admits the team's networks"
	if len(have) > len(want.PublicNetworkSource.AllowedIPCidrRanges) {
		c.Detail += fmt.Sprintf("; its public source admits %d range(s) in all, for the whole bucket", len(have))
	}
	return c
}

// describeErr names an error by the store's code and status, or, when the
// store did not answer, by the cause (connection refused, DNS, timeout),
// never by its message.
func describeErr(err error) string {
	var se *storeErr
	if errors.As(err, &se) {
		if se.Code == "" {
			return fmt.Sprintf("HTTP %d", se.Status)
		}
		return fmt.Sprintf("%s (HTTP %d)", se.Code, se.Status)
	}
	if code := signet.ErrorCode(err); code != "" && code != signet.Internal {
		return string(code)
	}
	return "no answer from the store (" + driver.NoAnswerCause(err, string(storeCode(err))) + ")"
}

// listed names what the bucket check lists: "bucket B", or "prefix P in
// bucket B".
func (b *Backend) listed() string {
	if b.prefix == "" {
		return "bucket " + b.bucket
	}
	return "prefix " + b.prefix + " in bucket " + b.bucket
}

func orWhole(prefix string) string {
	if prefix == "" {
		return "the whole bucket"
	}
	return "prefix " + prefix
}
