package s3blob_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/s3blob"
)

type testStatement struct {
	Sid       string
	Effect    string
	Principal any
	Action    []string
	Resource  []string
	Condition map[string]map[string][]string
}

func decodePolicy(t *testing.T, s string) []testStatement {
	t.Helper()
	var doc struct {
		Version   string
		Statement []testStatement
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, s)
	}
	if doc.Version != "2012-10-17" {
		t.Errorf("Version %q", doc.Version)
	}
	return doc.Statement
}

// countStatements counts a policy's statements, whatever their form.
func countStatements(t *testing.T, s string) int {
	t.Helper()
	var doc struct{ Statement []json.RawMessage }
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, s)
	}
	return len(doc.Statement)
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// TestNetworkSessionPolicy: each allowing statement is split into one
// allowed from the networks and one through the endpoints (an OR), the
// KMS statement is untouched, and without networks nothing changes.
func TestNetworkSessionPolicy(t *testing.T) {
	if got, want := s3blob.NetworkSessionPolicy("us-east-1", "bkt", "t/", "", nil, nil), s3blob.SessionPolicy("us-east-1", "bkt", "t/", ""); got != want {
		t.Errorf("without networks: %s, want SessionPolicy %s", got, want)
	}
	nets := prefixes("10.0.0.0/8", "2001:db8::/32")
	p := s3blob.NetworkSessionPolicy("us-east-1", "bkt", "t/", "k1", nets, []string{"vpce-1a2b"})
	sts := decodePolicy(t, p)
	bySid := map[string]testStatement{}
	for _, s := range sts {
		bySid[s.Sid] = s
	}
	if len(sts) != 5 || len(bySid) != 5 {
		t.Fatalf("%d statements (%d Sids), want 5: %s", len(sts), len(bySid), p)
	}
	objNet := bySid["SignetObjectsFromNetworks"]
	if objNet.Effect != "Allow" || !reflect.DeepEqual(objNet.Resource, []string{"arn:aws:s3:::bkt/t/*"}) ||
		!reflect.DeepEqual(objNet.Condition, map[string]map[string][]string{"IpAddress": {"aws:SourceIp": {"10.0.0.0/8", "2001:db8::/32"}}}) {
		t.Errorf("SignetObjectsFromNetworks = %+v", objNet)
	}
	if c := bySid["SignetObjectsFromVpce"].Condition; !reflect.DeepEqual(c, map[string]map[string][]string{"StringEquals": {"aws:SourceVpce": {"vpce-1a2b"}}}) {
		t.Errorf("SignetObjectsFromVpce condition %v", c)
	}
	// The listing keeps its prefix condition and gains the network one.
	if c := bySid["SignetListFromNetworks"].Condition; !reflect.DeepEqual(c, map[string]map[string][]string{
		"StringLike": {"s3:prefix": {"t/*"}}, "IpAddress": {"aws:SourceIp": {"10.0.0.0/8", "2001:db8::/32"}}}) {
		t.Errorf("SignetListFromNetworks condition %v", c)
	}
	if k := bySid["SignetKMS"]; k.Condition != nil || k.Effect != "Allow" {
		t.Errorf("SignetKMS = %+v, want unconditioned", k)
	}
	// Only networks: no endpoint statements.
	if n := len(decodePolicy(t, s3blob.NetworkSessionPolicy("us-east-1", "bkt", "", "", nets, nil))); n != 2 {
		t.Errorf("networks only: %d statements, want 2", n)
	}
}

func TestNetworkStatement(t *testing.T) {
	raw, err := s3blob.NetworkStatement("us-gov-west-1", "bkt", "team/", "ml", prefixes("192.0.2.0/24"), []string{"vpce-0f"})
	if err != nil {
		t.Fatal(err)
	}
	var s testStatement
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	want := testStatement{
		Sid: "signet-team-ml-network", Effect: "Deny", Principal: "*", Action: []string{"s3:*"},
		Resource: []string{"arn:aws-us-gov:s3:::bkt/team/*"},
		Condition: map[string]map[string][]string{
			"NotIpAddress":    {"aws:SourceIp": {"192.0.2.0/24"}},
			"StringNotEquals": {"aws:SourceVpce": {"vpce-0f"}},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("statement\n%+v\nwant\n%+v", s, want)
	}
	_, err = s3blob.NetworkStatement("us-east-1", "bkt", "", "ml", nil, nil)
	wantCode(t, "a statement without networks", err, signet.Invalid)
}

func TestParseVPCEndpoints(t *testing.T) {
	got, err := s3blob.ParseVPCEndpoints("vpce-1a2b, vpce-3c4d", "", "vpce-1a2b")
	if err != nil || !reflect.DeepEqual(got, []string{"vpce-1a2b", "vpce-3c4d"}) {
		t.Errorf("ParseVPCEndpoints = %v, %v", got, err)
	}
	for _, bad := range []string{"vpc-1a2b", "vpce-", "vpce-XYZ", `vpce-1"`, "vpce-1a2b,*"} {
		_, err := s3blob.ParseVPCEndpoints(bad)
		wantCode(t, "ParseVPCEndpoints("+bad+")", err, signet.Invalid)
	}
}

// TestMergeBucketPolicy: signet's statement replaces its earlier self,
// other statements and top-level fields are kept byte for byte, and
// removing the last statement leaves no policy.
func TestMergeBucketPolicy(t *testing.T) {
	stmt, _ := s3blob.NetworkStatement("us-east-1", "bkt", "ml/", "ml", prefixes("10.0.0.0/8"), nil)
	other := `{"Sid":"Theirs","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/pub/*"}`
	old := `{"Sid":"signet-team-ml-network","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::bkt/ml/*","Condition":{"NotIpAddress":{"aws:SourceIp":"1.1.1.1/32"}}}`
	existing := `{"Version":"2012-10-17","Id":"keep-me","Statement":[` + other + `,` + old + `]}`

	merged, kept, err := s3blob.MergeBucketPolicy(existing, "signet-team-ml-network", stmt)
	if err != nil || kept != 1 {
		t.Fatalf("merge: kept %d, %v", kept, err)
	}
	if !strings.Contains(merged, other) || !strings.Contains(merged, `"Id":"keep-me"`) || !strings.Contains(merged, string(stmt)) ||
		strings.Contains(merged, "1.1.1.1") {
		t.Errorf("merged policy %s", merged)
	}
	if n := countStatements(t, merged); n != 2 {
		t.Errorf("%d statements, want 2", n)
	}
	if !strings.HasPrefix(merged, `{"Version":"2012-10-17","Id":"keep-me","Statement":[`) {
		t.Errorf("fields out of order: %s", merged)
	}
	// Idempotent.
	again, _, _ := s3blob.MergeBucketPolicy(merged, "signet-team-ml-network", stmt)
	if again != merged {
		t.Errorf("second merge changed the policy:\n%s\n%s", merged, again)
	}
	// Another team's statement is someone else's.
	other2, _, _ := s3blob.MergeBucketPolicy(merged, "signet-team-cv-network", nil)
	if other2 != merged {
		t.Errorf("removing another team's statement changed the policy")
	}
	// A single statement object, not a list, is read too.
	single, kept, err := s3blob.MergeBucketPolicy(`{"Version":"2012-10-17","Statement":`+other+`}`, "signet-team-ml-network", stmt)
	if err != nil || kept != 1 || countStatements(t, single) != 2 {
		t.Errorf("single statement: kept %d, %v, %s", kept, err, single)
	}
	// Removal.
	rest, kept, err := s3blob.MergeBucketPolicy(merged, "signet-team-ml-network", nil)
	if err != nil || kept != 1 || strings.Contains(rest, "signet-team-ml") || !strings.Contains(rest, other) {
		t.Errorf("removal: kept %d, %v, %s", kept, err, rest)
	}
	none, kept, err := s3blob.MergeBucketPolicy(`{"Version":"2012-10-17","Statement":[`+old+`]}`, "signet-team-ml-network", nil)
	if none != "" || kept != 0 || err != nil {
		t.Errorf("removing the only statement = %q, %d, %v; want no policy", none, kept, err)
	}
	fresh, kept, err := s3blob.MergeBucketPolicy("", "signet-team-ml-network", stmt)
	if err != nil || kept != 0 || countStatements(t, fresh) != 1 {
		t.Errorf("no policy before: %q, %d, %v", fresh, kept, err)
	}
	for _, bad := range []string{"[]", "{", `{"Statement":"x"}`, `{"Statement":[1]}`} {
		_, _, err := s3blob.MergeBucketPolicy(bad, "signet-team-ml-network", stmt)
		wantCode(t, "merging into "+bad, err, signet.Invalid)
	}
}

func TestOpenNetworks(t *testing.T) {
	cfg := s3blob.Config{Bucket: "bkt", AccessKeyID: "AKID", SecretAccessKey: "secret", RoleARN: "arn:aws:iam::1:role/r"}
	ctx := context.Background()
	ok := cfg
	ok.SourceNetworks, ok.SourceVPCEs = prefixes("10.0.0.0/8"), []string{"vpce-1a"}
	if _, err := s3blob.Open(ctx, ok); err != nil {
		t.Errorf("Open with networks: %v", err)
	}
	bad := cfg
	bad.SourceVPCEs = []string{"vpc-1"}
	_, err := s3blob.Open(ctx, bad)
	wantCode(t, "Open with a bad VPC endpoint", err, signet.Invalid)
	big := cfg
	for i := range 200 {
		big.SourceNetworks = append(big.SourceNetworks, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	_, err = s3blob.Open(ctx, big)
	wantCode(t, "Open with a session policy over 2,048 characters", err, signet.Invalid)
}

func TestRenderNetworkPolicy(t *testing.T) {
	b, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bkt", Prefix: "ml/", AccessKeyID: "AKID", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.RenderNetworkPolicy("ml", prefixes("10.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	sts := decodePolicy(t, p.Document)
	if p.ID != "signet-team-ml-network" || len(sts) != 1 || sts[0].Sid != p.ID || sts[0].Resource[0] != "arn:aws:s3:::bkt/ml/*" {
		t.Errorf("rendered %+v", p)
	}
	_, err = b.RenderNetworkPolicy("ml", nil)
	wantCode(t, "rendering without networks", err, signet.Invalid)
}
