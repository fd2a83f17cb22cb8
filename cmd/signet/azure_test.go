package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAzureEndToEnd drives an Azure connector through the CLI against a
// real Azurite: the account key from the environment, a single upload URL
// with the headers the client must send, and a download.
func TestAzureEndToEnd(t *testing.T) {
	admin := azureTeam(t, "--json")
	put := presignJSON(t, admin, "put", "cv", "images/a.png")
	if put.Headers["x-ms-blob-type"] != "BlockBlob" {
		t.Errorf("upload headers %v lack x-ms-blob-type: BlockBlob", put.Headers)
	}
	payload := []byte("not really a png")
	if st := send(t, put.Method, strings.Replace(put.URL, "sig=", "sig=A", 1), put.Headers, payload); st != 403 {
		t.Fatalf("Azurite answered %d to a tampered SAS; invalid environment", st)
	}
	if st := send(t, put.Method, put.URL, put.Headers, payload); st != 201 {
		t.Fatalf("PUT via SAS answered %d", st)
	}
	get := strings.TrimSpace(admin.must("presign", "get", "cv", "images/a.png"))
	if got := httpGet(t, get); !bytes.Equal(got, payload) {
		t.Errorf("downloaded %q", got)
	}
	// A read SAS does not allow writing.
	if st := send(t, "PUT", get, put.Headers, []byte("overwrite")); st != 403 {
		t.Errorf("PUT with a read SAS answered %d, want 403", st)
	}

	// signet cp: Azure cannot bind size and SHA-256 to one PUT, so a small
	// file goes as a one-part block list; a large one in blocks whose
	// ETags come from the store's block list. signet verifies both. An
	// empty file cannot be chunked: it goes as one unbound PUT of no
	// bytes (x-ms-blob-type: BlockBlob), which the client reads back.
	dir := t.TempDir()
	for name, size := range map[string]int{"empty.bin": 0, "small.bin": 1000, "big.bin": 12<<20 + 7} {
		data := make([]byte, size)
		rand.Read(data)
		src := filepath.Join(dir, name)
		os.WriteFile(src, data, 0o600)
		admin.must("cp", "--part-size", "5242880", src, "signet://cv/cp/"+name)
		back := filepath.Join(dir, "back-"+name)
		admin.must("cp", "signet://cv/cp/"+name, back)
		if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
			t.Errorf("cp %s round trip through Azurite: %d bytes back, want %d equal bytes", name, len(b), size)
		}
	}
}
