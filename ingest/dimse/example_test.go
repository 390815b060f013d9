package dimse_test

import (
	"context"
	"net"
	"os"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/ingest/dimse"
	"github.com/triaged/triaged/ingest/spool"
)

// The daemon's wiring: a spool in a drop folder the folder intake watches,
// the SCP on a listener, Serve until the context ends.
func Example() {
	dir, _ := os.MkdirTemp("", "incoming")
	defer os.RemoveAll(dir)
	sp, err := spool.Open(dir, spool.Options{MinFreeBytes: 1 << 20, MaxFileSize: 512 << 20})
	if err != nil {
		panic(err)
	}
	srv, err := dimse.New(dimse.Options{AETitle: "TRIAGED", Spool: sp, Log: zerolog.Nop(),
		OnInstance: func(in dimse.Instance) {
			// Status C000: publish an error event; in.Path: a committed film.
		}})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real daemon cancels at shutdown
	if err := srv.Serve(ctx, ln); err != nil {
		panic(err)
	}
	_ = srv.Stats() // counters for Prometheus
	// Output:
}
