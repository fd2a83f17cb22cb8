package transfer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/transfer"
)

// A training job saves a checkpoint to team "ml". It needs a running signet
// server: SIGNET_ADDR and SIGNET_TOKEN name it and an API key.
func ExampleUploadFile() {
	ctx := context.Background()
	c := sighttp.NewClient(os.Getenv("SIGNET_ADDR"), os.Getenv("SIGNET_TOKEN"))
	res, err := transfer.UploadFile(ctx, c, "ml", "ckpt/step-100.pt", "step-100.pt", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Key, res.Size, res.SHA256)
}

// A job whose uploads may be interrupted (preempted machines, flaky
// networks) keeps resume state, so that running it again sends only the
// parts the store does not hold yet.
func ExampleUploadFile_resume() {
	ctx := context.Background()
	c := sighttp.NewClient(os.Getenv("SIGNET_ADDR"), os.Getenv("SIGNET_TOKEN"))
	cache, err := os.UserCacheDir()
	if err != nil {
		log.Fatal(err)
	}
	o := &transfer.Options{ResumeDir: filepath.Join(cache, "signet", "uploads")}
	res, err := transfer.UploadFile(ctx, c, "ml", "ckpt/step-100.pt", "step-100.pt", o)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d of %d parts were already stored\n", res.Key, res.ResumedParts, res.Parts)
}

// Loading the checkpoint back checks its SHA-256 where the store reports
// one.
func ExampleDownloadFile() {
	ctx := context.Background()
	c := sighttp.NewClient(os.Getenv("SIGNET_ADDR"), os.Getenv("SIGNET_TOKEN"))
	res, err := transfer.DownloadFile(ctx, c, "ml", "ckpt/step-100.pt", "step-100.pt", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.SHA256, res.Verified)
}
