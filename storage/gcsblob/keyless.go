package gcsblob

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
	iamcredentials "google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// Keyless signing.
const (
	// DefaultIAMEndpoint is the IAM Service Account Credentials API used
	// for keyless signing when Config.IAMEndpoint is empty.
	DefaultIAMEndpoint = "https://iamcredentials.googleapis.com/"
	// KeylessMaxExpiry is the longest lifetime of a keylessly signed URL.
	// signBlob signs with a Google-managed key that Google rotates and
	// keeps valid for at least 12 hours after a signature; a longer URL
	// might stop working early, so SignedURL shortens it to this.
	KeylessMaxExpiry = 12 * time.Hour
	// cloudPlatformScope is the OAuth scope of the caller's token.
	cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	// signBlobTimeout bounds one signBlob call.
	signBlobTimeout = 30 * time.Second
)

// iamSigner signs strings to sign with a service account's Google-managed
// key through the IAM Credentials API's signBlob method, authenticated as
// the caller (Application Default Credentials or Config.TokenSource). It
// needs no key material: the caller needs iam.serviceAccounts.signBlob on
// the service account (roles/iam.serviceAccountTokenCreator). Each
// signature is one HTTPS round trip to Google.
//
// The service account and the API client are set up at the first
// signature (the credential chain and the metadata server may need the
// network), then kept; a failed set-up is tried again at the next one.
type iamSigner struct {
	cfgEmail string
	ts       oauth2.TokenSource // nil: Application Default Credentials
	endpoint string
	client   *http.Client // base transport of the API calls; nil: default

	mu    sync.Mutex
	email string
	svc   *iamcredentials.Service
}

// errNoDefaultCredentials marks a missing credential chain.
var errNoDefaultCredentials = errors.New("no Application Default Credentials")

// setup returns the service account's e-mail and the API client, setting
// them up on first use.
func (s *iamSigner) setup(ctx context.Context) (string, *iamcredentials.Service, error) {
	const op = "gcsblob.signBlob"
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.svc != nil {
		return s.email, s.svc, nil
	}
	email := s.cfgEmail
	if email == "" {
		// The metadata server names the workload's own service account
		// (GCE, GKE workload identity, Cloud Run). metadata honours
		// GCE_METADATA_HOST.
		e, err := metadata.NewClient(s.client).EmailWithContext(ctx, "default")
		if err != nil || !validEmail(e) {
			return "", nil, signet.E(op, signet.Unavailable,
				"cannot learn the service account to sign as from the metadata server; configure it (--service-account)", err)
		}
		email = e
	}
	ts := s.ts
	if ts == nil {
		// The token source outlives this request: detach it from ctx's
		// cancellation, keeping the HTTP client the tests may set.
		tctx := context.WithoutCancel(ctx)
		if s.client != nil {
			tctx = context.WithValue(tctx, oauth2.HTTPClient, s.client)
		}
		creds, err := google.FindDefaultCredentials(tctx, cloudPlatformScope)
		if err != nil {
			return "", nil, signet.E(op, signet.Unavailable,
				"no Google credentials to call signBlob with (GOOGLE_APPLICATION_CREDENTIALS, gcloud, or the metadata server)",
				errors.Join(errNoDefaultCredentials, err))
		}
		ts = creds.TokenSource
	}
	base := http.DefaultTransport
	if s.client != nil && s.client.Transport != nil {
		base = s.client.Transport
	}
	hc := &http.Client{Transport: &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: base}}
	svc, err := iamcredentials.NewService(context.WithoutCancel(ctx),
		option.WithHTTPClient(hc),
		option.WithEndpoint(s.endpoint),
		// Never log requests or answers: an answer is a signature.
		option.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		return "", nil, signet.E(op, signet.Internal, "cannot set up the IAM Credentials client", err)
	}
	s.email, s.svc = email, svc
	return email, svc, nil
}

// identity returns the e-mail of the service account that signs.
func (s *iamSigner) identity(ctx context.Context) (string, error) {
	email, _, err := s.setup(ctx)
	return email, err
}

// sign returns the RSA-SHA256 signature of payload by the service
// account's Google-managed key. Errors are *signet.Error values:
// PermissionDenied when Google refuses the caller or its credentials
// (401, 403, 404: the caller lacks iam.serviceAccounts.signBlob on the
// service account, or it does not exist), Unavailable when Google is
// unreachable, rate limits or fails (429, 5xx, network errors), Invalid
// for another refusal, Internal for an unusable answer. They hold
// neither the caller's token nor a signature.
func (s *iamSigner) sign(ctx context.Context, payload []byte) ([]byte, error) {
	const op = "gcsblob.signBlob"
	email, svc, err := s.setup(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, signBlobTimeout)
	defer cancel()
	resp, err := svc.Projects.ServiceAccounts.SignBlob("projects/-/serviceAccounts/"+email,
		&iamcredentials.SignBlobRequest{Payload: base64.StdEncoding.EncodeToString(payload)}).Context(ctx).Do()
	if err != nil {
		return nil, signBlobError(op, err)
	}
	sig, err := base64.StdEncoding.DecodeString(resp.SignedBlob)
	if err != nil || len(sig) == 0 {
		return nil, signet.E(op, signet.Internal, "signBlob answered without a usable signature", nil)
	}
	return sig, nil
}

// signBlobError maps a failed signBlob call, by HTTP status, never by
// message text.
func signBlobError(op string, err error) error {
	var ge *googleapi.Error
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &ge):
		switch st := ge.Code; {
		case st == http.StatusUnauthorized || st == http.StatusForbidden || st == http.StatusNotFound:
			return signet.E(op, signet.PermissionDenied,
				"Google refused to sign as the service account: the server's identity needs roles/iam.serviceAccountTokenCreator on it", err)
		case st == http.StatusTooManyRequests || st >= 500:
			return signet.E(op, signet.Unavailable, "the IAM Credentials API is unavailable or rate limiting; try again", err)
		default:
			return signet.E(op, signet.Invalid, "the IAM Credentials API refused the signBlob request", err)
		}
	case errors.As(err, &re):
		if re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
			return signet.E(op, signet.PermissionDenied, "Google refused the server's credentials for signBlob", tokenError(re))
		}
		return signet.E(op, signet.Unavailable, "cannot get an access token for signBlob; try again", tokenError(re))
	}
	if driver.NoAnswer(err) {
		return signet.E(op, signet.Unavailable, "cannot reach the IAM Credentials API; try again", err)
	}
	return signet.E(op, signet.Unavailable, "signBlob failed", err)
}

// tokenError keeps a token endpoint's refusal without its body, which
// may echo what was sent.
func tokenError(re *oauth2.RetrieveError) error {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := re.ErrorCode
	if !isPrintable(code) {
		code = ""
	}
	return &tokenErr{status: status, code: code}
}

type tokenErr struct {
	status int
	code   string
}

func (e *tokenErr) Error() string {
	return "token endpoint answered " + http.StatusText(e.status) + " " + e.code
}

// validEmail reports whether s looks like a service account e-mail.
func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 && isPrintable(s) && !strings.ContainsAny(s, "/?#%")
}
