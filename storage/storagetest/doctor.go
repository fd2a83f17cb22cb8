package storagetest

import (
	"context"
	"strings"
	"testing"

	"github.com/signetdev/signet/storage/driver"
)

// Diagnose runs d's checks and returns them by name. It fails t when
// Diagnose fails, when a check is reported twice, when a failure or a
// warning comes without a fix, or when a check's detail or fix shows one
// of secrets.
func Diagnose(t testing.TB, d driver.Doctor, opts *driver.DiagnoseOptions, secrets ...string) map[string]driver.Check {
	t.Helper()
	checks, err := d.Diagnose(context.Background(), opts)
	if err != nil {
		t.Fatalf("Diagnose: %v", err)
	}
	byName := map[string]driver.Check{}
	for _, c := range checks {
		if _, dup := byName[c.Name]; dup {
			t.Errorf("check %q reported twice", c.Name)
		}
		byName[c.Name] = c
		if (c.Status == driver.CheckFail || c.Status == driver.CheckWarn) && c.Fix == "" {
			t.Errorf("check %q: %s without a fix: %s", c.Name, c.Status, c.Detail)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(c.Detail+c.Fix, s) {
				t.Errorf("check %q shows a secret", c.Name)
			}
		}
	}
	return byName
}

// WantCheck fails t unless checks holds the check name with status and a
// detail that contains detail.
func WantCheck(t testing.TB, checks map[string]driver.Check, name, status, detail string) {
	t.Helper()
	c, ok := checks[name]
	switch {
	case !ok:
		t.Errorf("no %q check", name)
	case c.Status != status:
		t.Errorf("check %q: %s (%s), want %s", name, c.Status, c.Detail, status)
	case !strings.Contains(c.Detail, detail):
		t.Errorf("check %q detail %q lacks %q", name, c.Detail, detail)
	}
}
