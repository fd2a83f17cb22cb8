package azureblob

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

var _ driver.Doctor = (*Backend)(nil)

// skewFail is the clock skew the "clock" check fails at. Azure refuses
// shared-key requests beyond 15 minutes of skew; a SAS is dated ClockSkew
// early, so a store clock behind signet's by more than that finds fresh
// URLs not yet valid.
const skewFail = ClockSkew

// keyWarn is how close to expiry the user delegation key may be before the
// "credentials" check warns.
const keyWarn = time.Hour

// Diagnose implements driver.Doctor: the credentials (the account key is
// accepted; with Entra ID, a token is obtained and Azure issues a user
// delegation key, whose expiry is shown), that the container exists and
// the prefix can be listed, the clock against the store's Date header, CORS
// from the Blob service properties (or a browser-like probe when they
// cannot be read), soft delete, encryption, lifecycle management and the
// team's networks. Lifecycle management, versioning, customer-managed keys
// and the account firewall are management-plane settings that data-plane
// credentials cannot read: those checks say so and give the az command.
// Every call reads; none changes the account.
func (b *Backend) Diagnose(ctx context.Context, opts *driver.DiagnoseOptions) ([]driver.Check, error) {
	if opts == nil {
		opts = &driver.DiagnoseOptions{}
	}
	creds := b.checkCredentials(ctx)
	bucket, date := b.checkContainer(ctx)
	if bucket.Name == "credentials" {
		creds, bucket = bucket, driver.Check{Name: "bucket", Status: driver.CheckSkip, Detail: "the store refused the credentials"}
	}
	if bucket.Status == driver.CheckOK && b.sharedKey != nil {
		creds.Detail += "; the store accepted it"
	}
	props, propsErr := b.serviceProperties(ctx)
	return []driver.Check{
		creds,
		bucket,
		driver.ClockCheck(b.now(), date, skewFail, "Azure refuses a SAS that is not yet valid or already expired by its clock"),
		b.checkCORS(ctx, opts.Origins, props, propsErr),
		b.checkEncryption(ctx),
		b.checkLifecycle(),
		b.checkSoftDelete(props, propsErr),
		b.checkNetwork(opts),
	}, nil
}

func (b *Backend) checkCredentials(ctx context.Context) driver.Check {
	c := driver.Check{Name: "credentials"}
	if b.sharedKey != nil {
		c.Status, c.Detail = driver.CheckOK, "account key (shared key SAS); it does not expire (rotate it on your schedule; Entra ID avoids a key that opens the whole account)"
		return c
	}
	now := b.now()
	k, err := b.keys.get(ctx, now, now.Add(minKeyLifetime))
	if err != nil {
		c.Status = driver.CheckFail
		switch signet.ErrorCode(err) {
		case signet.PermissionDenied:
			c.Detail = "an Entra ID token was obtained, but Azure refused a user delegation key: " + describeErr(err)
			c.Fix = fmt.Sprintf("grant signet's identity a role that may generate user delegation keys and use blobs: az role assignment create --assignee IDENTITY --role \"Storage Blob Data Contributor\" --scope /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/%s/blobServices/default/containers/%s", b.account, b.container)
		default:
			c.Detail = "cannot obtain a user delegation key: " + describeErr(err)
			c.Fix = "give signet an Entra ID identity (AZURE_CLIENT_ID, AZURE_TENANT_ID and a secret or certificate, workload identity, a managed identity, or az login) and check that the account's endpoint is reachable"
		}
		return c
	}
	left := k.expiry.Sub(now).Round(time.Second)
	c.Status = driver.CheckOK
	c.Detail = fmt.Sprintf("Entra ID: Azure issued a user delegation key at %s, valid for %s more, until %s; renewed before use",
		k.fetched.UTC().Format(time.RFC3339), left, k.expiry.UTC().Format(time.RFC3339))
	if left < keyWarn {
		c.Status = driver.CheckWarn
		c.Fix = "the user delegation key is close to expiry and could not be renewed early: check that signet's identity can still get tokens"
	}
	return c
}

// checkContainer lists at most one blob below the prefix with the
// signing credentials and returns the store's Date header.
func (b *Backend) checkContainer(ctx context.Context) (driver.Check, string) {
	c := driver.Check{Name: "bucket"}
	pager := b.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: nonEmpty(b.prefix), MaxResults: to.Ptr(int32(1))})
	resp, err := pager.NextPage(ctx)
	if err != nil {
		date := errorDate(err)
		c.Status = driver.CheckFail
		c.Detail = "cannot list " + b.listed() + ": " + describeErr(err)
		switch code := errCode(err); {
		case code == "ContainerNotFound":
			c.Fix = fmt.Sprintf("create the container (az storage container create --account-name %s --name %s --auth-mode login) or correct the connector's bucket", b.account, b.container)
		case code == "AuthenticationFailed" || code == "InvalidAuthenticationInfo" || code == "NoAuthenticationInformation":
			c.Name = "credentials"
			c.Fix = "the store refused the credentials: set the account key again with signet connector set, or check signet's Entra ID identity"
		case code == "AuthorizationFailure" && b.sharedKey != nil:
			// An account key may do anything: a wrong key (as Azurite
			// answers it) or the account firewall.
			c.Name = "credentials"
			c.Fix = fmt.Sprintf("the store refused the account key: set it again with signet connector set; if it is right, the account firewall does not admit signet's address: az storage account network-rule add --account-name %s --resource-group RG --ip-address SIGNET_ADDRESS", b.account)
		case strings.HasPrefix(code, "Authorization") || code == "InsufficientAccountPermissions":
			c.Fix = fmt.Sprintf("grant signet's identity Storage Blob Data Contributor on the container: az role assignment create --assignee IDENTITY --role \"Storage Blob Data Contributor\" --scope /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/%s/blobServices/default/containers/%s", b.account, b.container)
		default:
			c.Fix = "check the connector's account and endpoint and that the store is reachable from signet"
		}
		return c, date
	}
	c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("container %s reachable; %s listable with the signing credentials", b.container, orWhole(b.prefix))
	date := ""
	if resp.Date != nil {
		date = resp.Date.UTC().Format(http.TimeFormat)
	}
	return c, date
}

// serviceProperties reads the Blob service properties of the account
// (CORS, soft delete), which needs the account key or an Entra ID role
// with Microsoft.Storage/storageAccounts/blobServices/read.
func (b *Backend) serviceProperties(ctx context.Context) (*service.GetPropertiesResponse, error) {
	svc, err := b.serviceClient()
	if err != nil {
		return nil, err
	}
	resp, err := svc.GetProperties(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (b *Backend) serviceClient() (*service.Client, error) {
	if b.keys != nil {
		return b.keys.svc, nil
	}
	opts := &service.ClientOptions{}
	if b.httpc != nil {
		opts.Transport = b.httpc
	}
	return service.NewClientWithSharedKeyCredential(strings.TrimSuffix(b.containerURL, "/"+b.container)+"/", b.sharedKey, opts)
}

func (b *Backend) checkCORS(ctx context.Context, origins []string, props *service.GetPropertiesResponse, propsErr error) driver.Check {
	c := driver.Check{Name: "cors"}
	if len(origins) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "no browser origins configured (give --origin)"
		return c
	}
	fix := fmt.Sprintf("az storage cors add --account-name %s --services b --methods GET HEAD PUT --origins %s --allowed-headers 'x-ms-*' 'content-*' --exposed-headers ETag 'x-ms-*' --max-age 3600",
		b.account, strings.Join(origins, " "))
	var missing []string
	if propsErr == nil {
		missing = corsMissing(props.CORS, origins)
		if len(missing) == 0 {
			c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("GET, HEAD and PUT allowed from %s with x-ms-* headers, ETag exposed", strings.Join(origins, ", "))
			return c
		}
		c.Status, c.Detail, c.Fix = driver.CheckFail, "the Blob service CORS rules do not allow: "+strings.Join(missing, ", "), fix
		return c
	}
	// The account's properties cannot be read with these credentials: ask
	// the store the way a browser would.
	missing, err := b.probeCORS(ctx, origins)
	if err != nil {
		c.Status, c.Fix = driver.CheckFail, fix
		c.Detail = "cannot read the Blob service properties (" + describeErr(propsErr) + ") and the store did not answer a CORS probe"
		return c
	}
	if len(missing) > 0 {
		c.Status, c.Fix = driver.CheckFail, fix
		c.Detail = "the Blob service properties cannot be read (" + describeErr(propsErr) + "); a browser-like probe finds CORS does not allow: " + strings.Join(missing, ", ")
		return c
	}
	c.Status = driver.CheckOK
	c.Detail = fmt.Sprintf("GET, HEAD and PUT allowed from %s with x-ms-blob-type, ETag exposed (probed: the Blob service properties cannot be read, %s)", strings.Join(origins, ", "), describeErr(propsErr))
	return c
}

// corsMissing returns what the rules fail to allow for origins: GET, HEAD
// and PUT from each, the x-ms-blob-type request header (single PUTs send
// it), and ETag exposed (chunked uploads need each part's).
func corsMissing(rules []*service.CORSRule, origins []string) []string {
	var missing []string
	for _, o := range origins {
		methods := map[string]bool{}
		etag, header := false, false
		for _, r := range rules {
			if r == nil || !slices.ContainsFunc(split(r.AllowedOrigins), func(p string) bool { return p == "*" || strings.EqualFold(p, o) }) {
				continue
			}
			for _, m := range split(r.AllowedMethods) {
				methods[strings.ToUpper(m)] = true
			}
			etag = etag || slices.ContainsFunc(split(r.ExposedHeaders), func(h string) bool { return headerMatches(h, "ETag") })
			header = header || slices.ContainsFunc(split(r.AllowedHeaders), func(h string) bool { return headerMatches(h, BlobTypeHeader) })
		}
		for _, m := range []string{"GET", "HEAD", "PUT"} {
			if !methods[m] {
				missing = append(missing, o+" "+m)
			}
		}
		if !header {
			missing = append(missing, o+" (x-ms-* request headers not allowed)")
		}
		if !etag {
			missing = append(missing, o+" (ETag not exposed)")
		}
	}
	return missing
}

// headerMatches reports whether an Azure CORS header entry, a name or a
// prefix ending in "*", covers name.
func headerMatches(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(strings.ToLower(name), strings.ToLower(p))
	}
	return strings.EqualFold(pattern, name)
}

func split(s *string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, f := range strings.Split(*s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// probeCORS asks the store what a browser at each origin may do with a
// blob below the prefix (see driver.CORSProbe), its PUT sending
// x-ms-blob-type.
func (b *Backend) probeCORS(ctx context.Context, origins []string) ([]string, error) {
	p := driver.CORSProbe{
		Client:     b.httpc,
		URL:        string(b.blobURL(nil, b.prefix+"signet-doctor-cors-probe")),
		PutHeader:  BlobTypeHeader,
		PutRefused: "(x-ms-* request headers not allowed)",
		Match:      headerMatches,
	}
	return p.Missing(ctx, origins)
}

// checkEncryption: Azure Storage encrypts everything at rest; which key
// (Microsoft- or customer-managed) is an account setting the data plane
// does not show. A container's default encryption scope is shown.
func (b *Backend) checkEncryption(ctx context.Context) driver.Check {
	c := driver.Check{Name: "encryption", Status: driver.CheckOK}
	c.Detail = "Azure Storage always encrypts data at rest (AES-256)"
	if p, err := b.client.GetProperties(ctx, nil); err == nil && p.DefaultEncryptionScope != nil && *p.DefaultEncryptionScope != "" && *p.DefaultEncryptionScope != "$account-encryption-key" {
		c.Detail += "; the container's default encryption scope is " + *p.DefaultEncryptionScope
	}
	c.Detail += fmt.Sprintf("; whether the account uses customer-managed keys is not visible with data-plane credentials (check with: az storage account show --name %s --query encryption)", b.account)
	return c
}

// checkLifecycle: lifecycle management is a management-plane setting.
// Uncommitted blocks, what an abandoned chunked upload leaves, need no
// rule: Azure discards them after 7 days.
func (b *Backend) checkLifecycle() driver.Check {
	return driver.Check{
		Name:   "lifecycle",
		Status: driver.CheckSkip,
		Detail: "lifecycle management is a management-plane setting that data-plane credentials cannot read; abandoned chunked uploads need no rule: Azure garbage-collects uncommitted blocks after 7 days",
		Fix: fmt.Sprintf(`az storage account management-policy create --account-name %s --resource-group RG --policy '{"rules":[{"enabled":true,"name":"signet-old-versions","type":"Lifecycle","definition":{"filters":{"blobTypes":["blockBlob"],"prefixMatch":["%s"]},"actions":{"version":{"delete":{"daysAfterCreationGreaterThan":30}},"snapshot":{"delete":{"daysAfterCreationGreaterThan":30}}}}}]}'`,
			b.account, b.container+"/"+b.prefix),
	}
}

func (b *Backend) checkSoftDelete(props *service.GetPropertiesResponse, propsErr error) driver.Check {
	c := driver.Check{Name: "versioning"}
	fix := fmt.Sprintf("az storage account blob-service-properties update --account-name %s --resource-group RG --enable-delete-retention true --delete-retention-days 7 --enable-versioning true", b.account)
	const versioning = "; blob versioning is a management-plane setting that data-plane credentials cannot read"
	if propsErr != nil {
		c.Status, c.Fix = driver.CheckWarn, fmt.Sprintf("allow signet's identity to read the Blob service properties (the account key, or an Entra ID role with Microsoft.Storage/storageAccounts/blobServices/read), or check by hand: az storage account blob-service-properties show --account-name %s --resource-group RG", b.account)
		c.Detail = "signet may not read the Blob service properties (" + describeErr(propsErr) + "), so soft delete is not checked" + versioning
		return c
	}
	p := props.DeleteRetentionPolicy
	if p != nil && p.Enabled != nil && *p.Enabled {
		days := int32(0)
		if p.Days != nil {
			days = *p.Days
		}
		c.Status = driver.CheckOK
		c.Detail = fmt.Sprintf("blob soft delete keeps deleted and overwritten blobs for %d day(s)", days) + versioning
		return c
	}
	c.Status, c.Fix = driver.CheckWarn, fix
	c.Detail = "blob soft delete is off: an upload URL can overwrite a blob for good, unless versioning is on" + versioning
	return c
}

func (b *Backend) checkNetwork(opts *driver.DiagnoseOptions) driver.Check {
	c := driver.Check{Name: "network"}
	if len(opts.Networks) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "the team has no network allow-list"
		return c
	}
	var v4, v6 []string
	for _, p := range opts.Networks {
		if _, ok := ipRange(p); ok {
			v4 = append(v4, p.Masked().String())
		} else {
			v6 = append(v6, p.Masked().String())
		}
	}
	firewall := fmt.Sprintf("az storage account update --name %s --resource-group RG --default-action Deny, then for each public network: az storage account network-rule add --account-name %s --resource-group RG --ip-address CIDR (private ranges need --vnet-name and --subnet); signet's own address must be allowed too", b.account, b.account)
	c.Fix = firewall
	if len(v6) > 0 {
		c.Status = driver.CheckWarn
		c.Detail = "a SAS can carry IPv4 ranges only (sip): URLs for clients in " + strings.Join(v6, ", ") + " are refused; restrict those at the storage account firewall"
		return c
	}
	c.Status = driver.CheckOK
	c.Detail = "every SAS carries, as sip, the team network its requester was in (" + strings.Join(v4, ", ") +
		"), and Azure enforces it; the storage account firewall is the store-side layer, a management-plane setting signet cannot read (see the fix)"
	return c
}

// errCode returns the store's error code, or "".
func errCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// describeErr names an error by the store's code and status, by its
// signet code, or, when the store did not answer, by the cause (connection
// refused, DNS, timeout), never by message text (which may quote the
// request).
func describeErr(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if re.ErrorCode == "" {
			return fmt.Sprintf("HTTP %d", re.StatusCode)
		}
		return fmt.Sprintf("%s (HTTP %d)", re.ErrorCode, re.StatusCode)
	}
	if code := signet.ErrorCode(err); code != "" && code != signet.Internal {
		return string(code)
	}
	return "no answer from the store (" + driver.NoAnswerCause(err, string(storeCode(err))) + ")"
}

func errorDate(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		return re.RawResponse.Header.Get("Date")
	}
	return ""
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// listed names what the container check lists: "container C", or
// "prefix P in container C".
func (b *Backend) listed() string {
	if b.prefix == "" {
		return "container " + b.container
	}
	return "prefix " + b.prefix + " in container " + b.container
}

func orWhole(prefix string) string {
	if prefix == "" {
		return "the whole container"
	}
	return "prefix " + prefix
}
