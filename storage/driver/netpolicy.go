package driver

import (
	"context"
	"net/netip"
)

// Kinds of NetworkPolicy.
const (
	// PolicyS3Bucket is an S3 bucket policy (JSON) holding one Deny
	// statement for the team's prefix.
	PolicyS3Bucket = "s3-bucket-policy"
	// PolicyGCSIPFilter is a GCS bucket IP filter configuration, the JSON
	// file of `gcloud storage buckets update --ip-filter-file`.
	PolicyGCSIPFilter = "gcs-ip-filter"
)

// NetworkPolicy is a store-side network restriction for one team: what a
// NetworkPolicer rendered or applied.
type NetworkPolicy struct {
	Kind string
	// ID names signet's part of the document (the statement Sid in an S3
	// bucket policy), "" when the document is signet's alone.
	ID string
	// Document is the rendered JSON; after Apply, the bucket's whole
	// policy as now in force ("" when none is left).
	Document string
	// Kept counts the statements of others that Apply left untouched.
	Kept int
	// Removed is set when Apply removed signet's part because the team
	// has no networks.
	Removed bool
	// Notes say what the document does not cover; never secrets.
	Notes []string
}

// NetworkPolicer is implemented by backends whose store can refuse
// requests from outside a team's networks by a bucket-level policy. It is
// optional and found by type assertion.
type NetworkPolicer interface {
	// RenderNetworkPolicy returns the policy that restricts the team's
	// objects to nets. It makes no network call. Invalid when nets (and
	// any other allowed sources of the connector) are empty.
	RenderNetworkPolicy(team string, nets []netip.Prefix) (*NetworkPolicy, error)
	// ApplyNetworkPolicy puts the rendered policy in force, merged with
	// the bucket's other settings; with no nets it removes signet's part.
	// Unimplemented when only rendering is possible (the error says how
	// to apply it by hand).
	ApplyNetworkPolicy(ctx context.Context, team string, nets []netip.Prefix) (*NetworkPolicy, error)
}
