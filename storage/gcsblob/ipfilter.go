package gcsblob

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

var _ driver.NetworkPolicer = (*Backend)(nil)

// ipFilter is a bucket IP filtering configuration as
// `gcloud storage buckets update --ip-filter-file` reads it.
type ipFilter struct {
	Mode                string `json:"mode"`
	PublicNetworkSource struct {
		AllowedIPCidrRanges []string `json:"allowedIpCidrRanges"`
	} `json:"publicNetworkSource"`
	AllowCrossOrgVPCs          bool `json:"allowCrossOrgVpcs"`
	AllowAllServiceAgentAccess bool `json:"allowAllServiceAgentAccess"`
}

// RenderNetworkPolicy implements driver.NetworkPolicer: the bucket IP
// filter that lets requests in from the public networks of nets only.
// Private ranges (RFC 1918, ULA) reach GCS through a VPC and must be
// listed under vpcNetworkSources with the VPC's name, which signet does not
// know; they are left out and named in the notes. Invalid without nets.
func (b *Backend) RenderNetworkPolicy(team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	if len(nets) == 0 {
		return nil, signet.Errorf(signet.Invalid, "team %q has no network allow-list; set one with signet team set %s --allow-cidr CIDR", team, team)
	}
	f := ipFilter{Mode: "Enabled"}
	f.PublicNetworkSource.AllowedIPCidrRanges = []string{}
	var private []string
	for _, p := range nets {
		if p.Addr().IsPrivate() || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() {
			private = append(private, p.String())
			continue
		}
		f.PublicNetworkSource.AllowedIPCidrRanges = append(f.PublicNetworkSource.AllowedIPCidrRanges, p.String())
	}
	doc, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, signet.E("gcsblob.RenderNetworkPolicy", signet.Internal, "", err)
	}
	notes := []string{
		"an IP filter applies to the whole bucket gs://" + b.bucket + ", not to the team's prefix: include the networks of every team that shares the bucket",
		"signet's own address must be allowed too (chunked uploads, SHA-256 read-back)",
		"allowAllServiceAgentAccess is false: Google services acting on the bucket (transfers, BigQuery) are refused unless you set it",
		"apply with: gcloud storage buckets update gs://" + b.bucket + " --ip-filter-file=FILE",
	}
	if len(private) > 0 {
		notes = append(notes, "private ranges "+strings.Join(private, ", ")+" are left out: add them under vpcNetworkSources with your VPC network (projects/P/global/networks/N)")
	}
	return &driver.NetworkPolicy{Kind: driver.PolicyGCSIPFilter, Document: string(doc), Notes: notes}, nil
}

// ApplyNetworkPolicy implements driver.NetworkPolicer. Setting a bucket IP
// filter takes the JSON API with an OAuth token (and
// storage.buckets.setIpFilter), which signet's signing credentials (an
// HMAC key, or a key used only to sign) are not meant for: Unimplemented,
// with the gcloud command to run instead.
func (b *Backend) ApplyNetworkPolicy(ctx context.Context, team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	return nil, signet.Errorf(signet.Unimplemented,
		"signet cannot set a GCS bucket IP filter; run: signet policy render %s > ipfilter.json && gcloud storage buckets update gs://%s --ip-filter-file=ipfilter.json (see docs/gcs.md, \"Networks\")", team, b.bucket)
}
