package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/signetdev/signet/internal/testpeer"
)

// serverWithTeams starts a server with the dev bootstrap, creates teams
// and returns the admin's cli.
func serverWithTeams(t *testing.T, teams ...string) cli {
	t.Helper()
	m, adminToken := MustRunMain(t)
	admin := cli{tb: t, addr: m.URL(), token: adminToken}
	for _, team := range teams {
		admin.must("team", "create", team)
	}
	return admin
}

// addMember creates user (with userFlags, such as --service), adds them
// to team with role, and returns their cli, holding a new key of theirs.
func addMember(admin cli, team, user, role string, userFlags ...string) cli {
	admin.tb.Helper()
	admin.must(append([]string{"user", "create", user}, userFlags...)...)
	admin.must("member", "add", team, user, "--role", role)
	return admin.as(strings.TrimSpace(admin.must("key", "create", user)))
}

// azureTeam starts a server with team cv, administered by the instance
// admin, whose connector is a new container on Azurite below prefix cv/,
// signed with the account key, which connector set takes from the
// environment and must not print. args are added to connector set. It
// returns the admin's cli.
func azureTeam(t *testing.T, args ...string) cli {
	t.Helper()
	peer := testpeer.Azurite(t)
	container := peer.Container(t)
	admin := serverWithTeams(t, "cv")
	admin.must("member", "add", "cv", "admin", "--role", "admin")
	if out := setAzureConnector(admin, peer, "cv", container, append([]string{"--prefix", "cv/"}, args...)...); strings.Contains(out, peer.Key) {
		t.Fatal("connector set printed the account key")
	}
	return admin
}

// setAzureConnector points team's connector at container on the Azurite
// peer, signed with the account key (--shared-key), which connector set
// takes from the environment, and returns what connector set printed.
// extra are more flags.
func setAzureConnector(admin cli, peer *testpeer.AzuritePeer, team, container string, extra ...string) string {
	admin.tb.Helper()
	set := admin
	set.env = map[string]string{"SIGNET_ACCOUNT_KEY": peer.Key}
	return set.must(append([]string{"connector", "set", team, "--backend", "azure", "--account", peer.Account,
		"--container", container, "--endpoint", peer.Endpoint, "--shared-key"}, extra...)...)
}

// minioTeam starts a server with team ml, whose connector is a new bucket
// on MinIO below prefix ml/, signed with the root user's keys, whose
// secret connector set takes from the environment and must not print.
// args are added to connector set. It returns the admin's cli, the peer
// and the bucket.
func minioTeam(t *testing.T, args ...string) (cli, *testpeer.MinIOPeer, string) {
	t.Helper()
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	admin := serverWithTeams(t, "ml")
	if out := setS3Connector(admin, peer, bucket, args...); strings.Contains(out, peer.SecretAccessKey) {
		t.Fatal("connector set printed the secret")
	}
	return admin, peer, bucket
}

// setS3Connector points team ml's connector at bucket on the MinIO peer,
// under prefix ml/, with the root user's secret key from the environment,
// and returns what connector set printed. extra are more flags.
func setS3Connector(admin cli, peer *testpeer.MinIOPeer, bucket string, extra ...string) string {
	admin.tb.Helper()
	set := admin
	set.env = map[string]string{"SIGNET_SECRET_ACCESS_KEY": peer.SecretAccessKey}
	return set.must(append(s3ConnectorArgs(peer, bucket, peer.AccessKeyID), extra...)...)
}

// s3ConnectorArgs is the connector set command line for team ml on bucket
// of the MinIO peer, under prefix ml/, with access key id accessKeyID; the
// secret comes from the environment or stdin.
func s3ConnectorArgs(peer *testpeer.MinIOPeer, bucket, accessKeyID string) []string {
	return []string{"connector", "set", "ml", "--backend", "s3", "--bucket", bucket, "--prefix", "ml/",
		"--endpoint", peer.Endpoint, "--region", peer.Region, "--path-style", "--access-key-id", accessKeyID}
}

// presigned is a presign answer for one object, as --json prints it.
type presigned struct {
	URL     string
	Method  string
	Headers map[string]string
}

// presignJSON runs presign with args and --json as c, and decodes the
// answer.
func presignJSON(t *testing.T, c cli, args ...string) presigned {
	t.Helper()
	var p presigned
	if err := json.Unmarshal([]byte(c.must(append([]string{"presign"}, append(args, "--json")...)...)), &p); err != nil {
		t.Fatal(err)
	}
	return p
}
