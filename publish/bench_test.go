package publish

import (
	"context"
	"fmt"
	"github.com/triaged/triaged/bus"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// BenchmarkPublishResult publishes a result (and, positive, its alert too)
// until the PubAck, on an embedded JetStream that fsyncs every write as the
// daemon's default (nats.embedded.sync_always) does, and without fsync.
func BenchmarkPublishResult(b *testing.B) {
	for _, sync := range []bool{true, false} {
		s := testenv.NATSWith(b, &server.Options{SyncAlways: sync})
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		p, err := New(nc, Options{Prefix: "triaged", Timeout: 10 * time.Second, ManageStreams: true,
			Results: bus.StreamSpec{Name: "R", Replicas: 1, DuplicateWindow: time.Hour},
			Alerts:  bus.StreamSpec{Name: "A", Replicas: 1, DuplicateWindow: time.Hour}})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := p.EnsureStreams(ctx); err != nil {
			b.Fatal(err)
		}
		for _, positive := range []bool{false, true} {
			b.Run(fmt.Sprintf("sync=%v/alert=%v", sync, positive), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					r := &Result{Schema: ResultSchema, Kind: "result", Priority: "urgent", ModelSet: "ms-bench", Score: 0.7,
						Film:   Film{SOPInstanceUID: fmt.Sprintf("2.25.%v.%v.%d", sync, positive, i), Rows: 2000, Columns: 2406},
						Models: []ModelScore{{Name: "squeezenet1_1", Provider: "CPUExecutionProvider", Probability: 0.7}}}
					if _, err := p.PublishResult(ctx, r, positive); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		nc.Close()
	}
}
