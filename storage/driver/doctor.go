package driver

import (
	"context"
	"net/netip"
)

// Check outcomes. A Fail makes `signet doctor` exit non-zero; a Warn is a
// recommendation; Skip means the check does not apply or the store cannot
// answer it (the Detail says which).
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
	CheckSkip = "skip"
)

// Check is the result of one connector check.
type Check struct {
	Name   string `json:"name"`   // stable, such as "bucket" or "cors"
	Status string `json:"status"` // CheckOK, CheckWarn, CheckFail or CheckSkip
	Detail string `json:"detail"` // what was found; never a secret
	Fix    string `json:"fix,omitempty"`
}

// DiagnoseOptions is what the checks compare the store against.
type DiagnoseOptions struct {
	// Origins are the browser origins that must be allowed by CORS; none
	// means no browser clients, and the CORS check is skipped.
	Origins []string
	// Networks is the team's allow-list; when non-empty, the bucket policy
	// must deny the team's prefix from elsewhere.
	Networks []netip.Prefix
	// Team names the team, for fixes that name it.
	Team string
}

// Doctor is implemented by backends that can check their store's
// configuration. Diagnose makes read-only calls only and reports every
// finding as a Check; it returns an error only when it cannot run at all.
type Doctor interface {
	Diagnose(ctx context.Context, opts *DiagnoseOptions) ([]Check, error)
}
