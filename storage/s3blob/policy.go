package s3blob

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// Network conditions: what a team's allow-list becomes in S3 policies.
//
// A request is inside the team's networks when its aws:SourceIp is in one
// of the networks OR it arrives through one of the VPC endpoints
// (aws:SourceVpce). Both policies below express exactly that:
//
//   - the STS session policy (NetworkSessionPolicy) allows the objects only
//     when one of two Allow statements matches: one with IpAddress
//     aws:SourceIp, one with StringEquals aws:SourceVpce (conditions inside
//     a statement are ANDed, statements ORed);
//   - the bucket policy statement (NetworkStatement) denies the prefix when
//     NotIpAddress aws:SourceIp AND StringNotEquals aws:SourceVpce both
//     hold, which is the negation of the same OR. A request through a VPC
//     endpoint carries no public aws:SourceIp, so NotIpAddress holds for it
//     and only the endpoint list can let it in; a request from the internet
//     carries no aws:SourceVpce, so StringNotEquals holds and only the
//     address list can.

// MaxSessionPolicy is the largest session policy STS accepts (plain text,
// 2,048 characters); Open refuses networks that would not fit.
const MaxSessionPolicy = 2048

// vpceRE matches a VPC endpoint id.
var vpceRE = regexp.MustCompile(`^vpce-[0-9a-f]{1,32}$`)

// ParseVPCEndpoints parses VPC endpoint ids separated by commas (or given
// one per element), such as "vpce-1a2b3c4d". Invalid on any bad entry.
func ParseVPCEndpoints(items ...string) ([]string, error) {
	var out []string
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !vpceRE.MatchString(s) {
				return nil, signet.Errorf(signet.Invalid, "%q is not a VPC endpoint id (like vpce-1a2b3c4d)", s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// statement is one statement of an IAM or bucket policy.
type statement struct {
	Sid       string                         `json:"Sid,omitempty"`
	Effect    string                         `json:"Effect"`
	Principal any                            `json:"Principal,omitempty"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

type policyDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

func networkStrings(nets []netip.Prefix) []string {
	out := make([]string, len(nets))
	for i, p := range nets {
		out[i] = p.Masked().String()
	}
	return out
}

// NetworkSessionPolicy is SessionPolicy with the object and listing
// statements allowed only from nets or through the VPC endpoints vpces
// (see above); the KMS statement is left as it is, since S3 calls KMS on
// the requester's behalf. With neither nets nor vpces it is SessionPolicy.
func NetworkSessionPolicy(region, bucket, prefix, kmsKeyID string, nets []netip.Prefix, vpces []string) string {
	base := SessionPolicy(region, bucket, prefix, kmsKeyID)
	if len(nets) == 0 && len(vpces) == 0 {
		return base
	}
	var doc policyDoc
	if err := json.Unmarshal([]byte(base), &doc); err != nil {
		panic("s3blob: SessionPolicy is not JSON: " + err.Error())
	}
	var out []statement
	for _, s := range doc.Statement {
		if s.Sid == "SignetKMS" {
			out = append(out, s)
			continue
		}
		if len(nets) > 0 {
			c := s
			c.Sid += "FromNetworks"
			c.Condition = withCondition(s.Condition, "IpAddress", "aws:SourceIp", networkStrings(nets))
			out = append(out, c)
		}
		if len(vpces) > 0 {
			c := s
			c.Sid += "FromVpce"
			c.Condition = withCondition(s.Condition, "StringEquals", "aws:SourceVpce", vpces)
			out = append(out, c)
		}
	}
	doc.Statement = out
	b, err := marshal(doc)
	if err != nil {
		panic("s3blob: marshalling a session policy: " + err.Error())
	}
	return string(b)
}

// withCondition returns a copy of cond with op: {key: values} added.
func withCondition(cond map[string]map[string][]string, op, key string, values []string) map[string]map[string][]string {
	out := make(map[string]map[string][]string, len(cond)+1)
	for k, v := range cond {
		out[k] = v
	}
	out[op] = map[string][]string{key: values}
	return out
}

// NetworkStatementID is the Sid of signet's statement for team in a bucket
// policy; apply finds its own statement by it and leaves others alone.
func NetworkStatementID(team string) string {
	return "signet-team-" + team + "-network"
}

// NetworkStatement returns the bucket policy statement that denies every
// S3 action on the objects below prefix in bucket to every principal,
// unless the request comes from one of nets or through one of the VPC
// endpoints vpces. Invalid when both are empty: there is nothing to allow.
func NetworkStatement(region, bucket, prefix, team string, nets []netip.Prefix, vpces []string) (json.RawMessage, error) {
	if len(nets) == 0 && len(vpces) == 0 {
		return nil, signet.Errorf(signet.Invalid, "team %q has no network allow-list; set one with signet team set %s --allow-cidr CIDR", team, team)
	}
	s := statement{
		Sid:       NetworkStatementID(team),
		Effect:    "Deny",
		Principal: "*",
		Action:    []string{"s3:*"},
		Resource:  []string{"arn:" + awsPartition(region) + ":s3:::" + bucket + "/" + prefix + "*"},
		Condition: map[string]map[string][]string{},
	}
	if len(nets) > 0 {
		s.Condition["NotIpAddress"] = map[string][]string{"aws:SourceIp": networkStrings(nets)}
	}
	if len(vpces) > 0 {
		s.Condition["StringNotEquals"] = map[string][]string{"aws:SourceVpce": vpces}
	}
	return marshal(s)
}

// NetworkPolicyDocument wraps statement into a bucket policy of its own.
func NetworkPolicyDocument(stmt json.RawMessage) (string, error) {
	b, err := marshal(struct {
		Version   string            `json:"Version"`
		Statement []json.RawMessage `json:"Statement"`
	}{"2012-10-17", []json.RawMessage{stmt}})
	return string(b), err
}

// MergeBucketPolicy returns existing (a bucket policy, "" for none) with
// every statement whose Sid is sid removed and stmt appended (when not
// nil), and the number of other statements kept. Other statements and
// top-level fields are kept byte for byte. It returns "" when nothing is
// left. Invalid when existing is not a policy document.
func MergeBucketPolicy(existing, sid string, stmt json.RawMessage) (merged string, kept int, err error) {
	doc := map[string]json.RawMessage{}
	var stmts []json.RawMessage
	if strings.TrimSpace(existing) != "" {
		if err := json.Unmarshal([]byte(existing), &doc); err != nil {
			return "", 0, signet.Errorf(signet.Invalid, "the bucket's policy is not a JSON object")
		}
		if raw, ok := doc["Statement"]; ok {
			raw = bytes.TrimSpace(raw)
			if len(raw) > 0 && raw[0] == '{' {
				stmts = []json.RawMessage{raw}
			} else if err := json.Unmarshal(raw, &stmts); err != nil {
				return "", 0, signet.Errorf(signet.Invalid, "the bucket policy's Statement is neither an object nor a list")
			}
		}
	}
	out := make([]json.RawMessage, 0, len(stmts)+1)
	for _, s := range stmts {
		var id struct{ Sid string }
		if err := json.Unmarshal(s, &id); err != nil {
			return "", 0, signet.Errorf(signet.Invalid, "a statement of the bucket policy is not a JSON object")
		}
		if id.Sid != sid {
			out = append(out, s)
		}
	}
	kept = len(out)
	if stmt != nil {
		out = append(out, stmt)
	}
	if len(out) == 0 {
		return "", 0, nil
	}
	if _, ok := doc["Version"]; !ok {
		doc["Version"] = json.RawMessage(`"2012-10-17"`)
	}
	// Version first, other fields as found (sorted), Statement last.
	var buf bytes.Buffer
	buf.WriteString(`{"Version":`)
	buf.Write(doc["Version"])
	field := func(k string, v json.RawMessage) {
		kb, _ := json.Marshal(k)
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if k != "Version" && k != "Statement" {
			field(k, doc[k])
		}
	}
	buf.WriteString(`,"Statement":[`)
	for i, s := range out {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(s)
	}
	buf.WriteString("]}")
	return buf.String(), kept, nil
}

// marshal is json.Marshal without HTML escaping, so policies read as
// written ("<", ">" and "&" are legal in prefixes).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

var _ driver.NetworkPolicer = (*Backend)(nil)

// networkNotes says what the bucket policy does not cover.
var networkNotes = []string{
	"the Deny applies to every principal, bucket administrators and signet's own calls (chunked uploads, SHA-256 read-back) included: signet's address must be inside the networks or those calls fail",
	"listing (s3:ListBucket) is a bucket-level action and is not covered; signet never signs listing URLs",
}

// RenderNetworkPolicy implements driver.NetworkPolicer: the bucket policy
// that ApplyNetworkPolicy would merge in for team and nets (with the
// connector's VPC endpoints), as a document of its own with one
// statement. Invalid when there are neither networks nor VPC endpoints.
func (b *Backend) RenderNetworkPolicy(team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	stmt, err := NetworkStatement(b.region, b.bucket, b.prefix, team, nets, b.vpces)
	if err != nil {
		return nil, err
	}
	doc, err := NetworkPolicyDocument(stmt)
	if err != nil {
		return nil, signet.E("s3blob.RenderNetworkPolicy", signet.Internal, "", err)
	}
	return &driver.NetworkPolicy{Kind: driver.PolicyS3Bucket, ID: NetworkStatementID(team), Document: doc, Notes: networkNotes}, nil
}

// ApplyNetworkPolicy implements driver.NetworkPolicer: it makes the
// bucket's policy hold NetworkStatement for team, nets and the backend's
// VPC endpoints, replacing an earlier statement with the same Sid and
// keeping every other statement. With neither nets nor endpoints it
// removes signet's statement (and deletes the policy when nothing else is
// left). The policy is read and written with signet's own identity, not a
// role session (whose policy allows objects only): it needs
// s3:GetBucketPolicy, s3:PutBucketPolicy and s3:DeleteBucketPolicy on the
// bucket.
//
// The read-modify-write is not atomic: S3 has no conditional
// PutBucketPolicy, so an edit by someone else at the same instant may be
// lost; apply again. Errors: Invalid when the present policy does not
// parse; the store's errors as mapped by storeError.
func (b *Backend) ApplyNetworkPolicy(ctx context.Context, team string, nets []netip.Prefix) (*driver.NetworkPolicy, error) {
	const op = "s3blob.ApplyNetworkPolicy"
	out := &driver.NetworkPolicy{Kind: driver.PolicyS3Bucket, ID: NetworkStatementID(team), Notes: networkNotes}
	var stmt json.RawMessage
	if len(nets) > 0 || len(b.vpces) > 0 {
		var err error
		if stmt, err = NetworkStatement(b.region, b.bucket, b.prefix, team, nets, b.vpces); err != nil {
			return nil, err
		}
	}
	existing, err := b.GetBucketPolicy(ctx)
	if err != nil {
		return nil, err
	}
	merged, kept, err := MergeBucketPolicy(existing, out.ID, stmt)
	if err != nil {
		return nil, err
	}
	out.Document, out.Kept, out.Removed = merged, kept, stmt == nil
	switch {
	case merged == "" && existing == "":
	case merged == "":
		if _, err := b.config.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(b.bucket)}); err != nil {
			return nil, storeError(op, "cannot delete the bucket policy", err)
		}
	default:
		if _, err := b.config.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(b.bucket), Policy: aws.String(merged)}); err != nil {
			return nil, storeError(op, "cannot set the bucket policy", err)
		}
	}
	return out, nil
}

// GetBucketPolicy returns the bucket's policy, "" when it has none, read
// with signet's own identity.
func (b *Backend) GetBucketPolicy(ctx context.Context) (string, error) {
	out, err := b.config.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		if isAPIError(err, "NoSuchBucketPolicy") {
			return "", nil
		}
		return "", storeError("s3blob.GetBucketPolicy", "cannot read the bucket policy", err)
	}
	return aws.ToString(out.Policy), nil
}

// isAPIError reports whether err is the store's answer with error code.
func isAPIError(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
