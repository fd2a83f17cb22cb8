//go:build signetprof

package main

// Built only with -tags signetprof, for measuring: SIGNET_PPROF_ADDR
// (e.g. 127.0.0.1:6060) serves net/http/pprof there, so that a CPU
// profile of `signet serve` under load can be taken with
// `go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10`.
// Release builds carry no profiling endpoint.

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("SIGNET_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
