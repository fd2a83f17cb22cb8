package azureblob_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/signetdev/signet/internal/testpeer"
)

// TestAzuriteStoredAccessPolicy records what Azurite does with stored
// access policies, the one way to withdraw a service SAS before it
// expires short of rotating the account key, and why signet does not
// sign against them yet (docs/security.md, "Revocation"):
//
//   - a SAS naming a policy (si=) works while the container's ACL holds
//     it and is refused (403) once the policy is replaced: revocation by
//     replacement works;
//   - but Azurite refuses a policy with no fields (400), and answers 500
//     to a SAS that sets its own permissions (sp) under a policy without
//     them. signet needs exactly that form (per-URL permissions and
//     expiry, one policy per team); the form Azurite serves puts the
//     permissions in the policy, which takes one policy per permission
//     set and team, against Azure's limit of 5 per container.
func TestAzuriteStoredAccessPolicy(t *testing.T) {
	p := testpeer.Azurite(t)
	name := p.Container(t)
	cred, err := container.NewSharedKeyCredential(p.Account, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientWithSharedKeyCredential(p.Endpoint+"/"+name, cred,
		&container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: p.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.NewBlockBlobClient("x").UploadBuffer(ctx, []byte("data"), nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	start, read := now.Add(-time.Minute), "r"
	setPolicy := func(id string, ap *container.AccessPolicy) error {
		_, err := c.SetAccessPolicy(ctx, &container.SetAccessPolicyOptions{
			ContainerACL: []*container.SignedIdentifier{{ID: &id, AccessPolicy: ap}},
		})
		return err
	}
	get := func(id string, v sas.BlobSignatureValues) int {
		t.Helper()
		v.Protocol, v.ContainerName, v.BlobName, v.Identifier = sas.ProtocolHTTPSandHTTP, name, "x", id
		qp, err := v.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.Client().Get(p.Endpoint + "/" + name + "/x?" + qp.Encode())
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	withExpiry := sas.BlobSignatureValues{ExpiryTime: now.Add(time.Hour)}

	// Revocation by replacing the policy.
	if err := setPolicy("signet-1", &container.AccessPolicy{Start: &start, Permission: &read}); err != nil {
		t.Fatal(err)
	}
	if st := get("signet-1", withExpiry); st != http.StatusOK {
		t.Fatalf("SAS under its policy: %d, want 200", st)
	}
	if st := get("signet-missing", withExpiry); st != http.StatusForbidden {
		t.Errorf("SAS naming an unknown policy: %d, want 403", st)
	}
	if err := setPolicy("signet-2", &container.AccessPolicy{Start: &start, Permission: &read}); err != nil {
		t.Fatal(err)
	}
	if st := get("signet-1", withExpiry); st != http.StatusForbidden {
		t.Errorf("SAS after its policy was replaced: %d, want 403", st)
	}
	if st := get("signet-2", withExpiry); st != http.StatusOK {
		t.Errorf("SAS under the new policy: %d, want 200", st)
	}

	// The form signet would need.
	errEmpty := setPolicy("signet-3", &container.AccessPolicy{})
	if err := setPolicy("signet-4", &container.AccessPolicy{Start: &start}); err != nil {
		t.Fatal(err)
	}
	stOwnPerms := get("signet-4", sas.BlobSignatureValues{ExpiryTime: now.Add(time.Hour), Permissions: "r"})
	t.Logf("Azurite: field-less policy: %v; SAS with its own sp under a policy without permissions: %d", errEmpty != nil, stOwnPerms)
	if errEmpty == nil && stOwnPerms == http.StatusOK {
		t.Log("Azurite now serves the field-less policy form: signet could sign Azure service SAS against per-team policies")
	}
}
