package fileblob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/signetdev/signet/storage/driver"
)

var _ driver.Doctor = (*Store)(nil)

// Thresholds of the local store's checks.
const (
	// MinFreeSpace is the free space under which the "disk" check warns.
	MinFreeSpace = 1 << 30
	// MaxKeyAge is the age of the signing key file beyond which the
	// "keys" check recommends a rotation.
	MaxKeyAge = 90 * 24 * time.Hour
)

// Diagnose implements driver.Doctor for the local store: the data
// directory exists and is writable (a temporary file is created below tmp/
// and removed), its free space, the signing keys and the age of the key
// file, whether the public base URL can be reached by clients on other
// machines, and the team's network allow-list, which every URL carries
// signed and the store checks on use. It changes nothing else.
func (s *Store) Diagnose(ctx context.Context, opts *driver.DiagnoseOptions) ([]driver.Check, error) {
	if opts == nil {
		opts = &driver.DiagnoseOptions{}
	}
	return []driver.Check{
		s.checkDirectory(),
		s.checkDisk(),
		s.checkKeys(),
		s.checkURL(),
		checkNetwork(opts),
	}, nil
}

func (s *Store) checkDirectory() driver.Check {
	c := driver.Check{Name: "directory"}
	dir := s.root.Name()
	fix := fmt.Sprintf("make %s a directory that signet's user owns and may write (chown and chmod 0700 it)", dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "the data directory "+dir+" is gone or not a directory", fix
		return c
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	name := path.Join(dirTmp, "doctor-"+hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = f.Write([]byte("signet doctor\n"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := s.root.Remove(name); err == nil {
			err = rerr
		}
	}
	if err != nil {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "cannot write to the data directory "+dir+": "+errText(err), fix
		return c
	}
	c.Status, c.Detail = driver.CheckOK, "data directory "+dir+" exists and is writable (a test file was created and removed)"
	return c
}

// errText describes a file system error without its path (already named).
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func (s *Store) checkDisk() driver.Check {
	c := driver.Check{Name: "disk"}
	free, ok := diskFree(s.root.Name())
	if !ok {
		c.Status, c.Detail = driver.CheckSkip, "free space is not measured on this operating system"
		return c
	}
	c.Detail = fmt.Sprintf("%s free below %s", formatBytes(free), s.root.Name())
	if free < MinFreeSpace {
		c.Status = driver.CheckWarn
		c.Detail += " (under 1 GiB): uploads will fail when it is full"
		c.Fix = "free space on that file system, or move signet's data_dir to a larger one"
		return c
	}
	c.Status = driver.CheckOK
	return c
}

// diskFree is freeSpace; tests replace it.
var diskFree = freeSpace

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func (s *Store) checkKeys() driver.Check {
	c := driver.Check{Name: "keys"}
	// Key ids are public (every URL carries one as kid); secrets are never
	// shown.
	c.Detail = fmt.Sprintf("%d signing key(s) loaded; %s signs new URLs", len(s.keys), s.keys[0].ID)
	rotate := "rotate: add a new first line \"<id> <hex secret>\" to " + s.keyFile +
		` (for example: echo "$(openssl rand -hex 4) $(openssl rand -hex 32)"), restart signet, and remove the old line 7 days later, once the URLs it signed have expired`
	if s.keyFile == "" {
		c.Status = driver.CheckOK
		c.Detail += "; the key file is unknown, so its age is not checked"
		return c
	}
	fi, err := os.Stat(s.keyFile)
	if err != nil {
		c.Status = driver.CheckWarn
		c.Detail += "; the key file " + s.keyFile + " cannot be read: " + errText(err) + " (the loaded keys stay in use until a restart)"
		c.Fix = "restore " + s.keyFile + " (readable by signet only, mode 0600) before signet restarts: URLs signed with its keys stop working without it"
		return c
	}
	age := s.now().Sub(fi.ModTime())
	c.Detail += fmt.Sprintf("; the key file %s was last changed %s ago", s.keyFile, roundAge(age))
	switch {
	case age > MaxKeyAge:
		c.Status = driver.CheckWarn
		c.Detail += " (over 90 days)"
		c.Fix = rotate
	case fi.Mode().Perm()&0o077 != 0:
		c.Status = driver.CheckWarn
		c.Detail += fmt.Sprintf("; its mode %04o lets other users read the secrets", fi.Mode().Perm())
		c.Fix = "chmod 0600 " + s.keyFile + ", then " + rotate
	default:
		c.Status = driver.CheckOK
	}
	return c
}

// roundAge shows an age in days, or hours and minutes under a day.
func roundAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d >= 24*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// checkURL tells whether clients elsewhere can use the URLs: a base URL on
// a loopback or unspecified address works only on this machine.
func (s *Store) checkURL() driver.Check {
	c := driver.Check{Name: "url"}
	u, _ := url.Parse(s.baseURL) // checked by Open
	host := u.Hostname()
	addr, _ := netip.ParseAddr(host)
	loopback := strings.EqualFold(host, "localhost") || addr.IsLoopback()
	listenLoopback, listenKnown := false, false
	if h, _, err := net.SplitHostPort(s.listen); err == nil {
		a, err := netip.ParseAddr(h)
		listenKnown = true
		listenLoopback = strings.EqualFold(h, "localhost") || (err == nil && a.IsLoopback())
	}
	fix := "set public_url in signet's config file (or serve --public-url) to the address clients reach signet at, such as https://signet.example.com"
	c.Detail = "URLs point at " + s.baseURL
	switch {
	case addr.IsUnspecified():
		c.Status, c.Fix = driver.CheckWarn, fix
		c.Detail += ": an unspecified address, which clients cannot use"
	case loopback && listenKnown && !listenLoopback:
		c.Status, c.Fix = driver.CheckWarn, fix
		c.Detail += ", a loopback address, but signet listens on " + s.listen + ": clients on other machines cannot use them"
	case loopback:
		c.Status = driver.CheckOK
		c.Detail += ": usable on this machine only"
		if listenKnown {
			c.Detail += " (signet listens on " + s.listen + ")"
		}
	case u.Scheme != "https":
		c.Status = driver.CheckWarn
		c.Detail += ": plain http, so URLs and data cross the network unencrypted"
		c.Fix = "serve signet behind TLS (a reverse proxy, with --trusted-proxy) and set public_url to its https address"
	default:
		c.Status = driver.CheckOK
	}
	return c
}

func checkNetwork(opts *driver.DiagnoseOptions) driver.Check {
	c := driver.Check{Name: "network"}
	if len(opts.Networks) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "the team has no network allow-list"
		return c
	}
	nets := make([]string, len(opts.Networks))
	for i, p := range opts.Networks {
		nets[i] = p.Masked().String()
	}
	c.Status = driver.CheckOK
	c.Detail = "the team allows " + strings.Join(nets, ", ") + "; every URL carries, signed, the allowed network its requester was in, and the store refuses a use from elsewhere"
	return c
}
