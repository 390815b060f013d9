package jetstream

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Run owns every goroutine it starts, the heartbeat included: once it has
// returned, nothing of the intake runs, even with a film still held; the
// held film can still be acknowledged afterwards (a drain after intake
// stopped).
func TestRunLeavesNothingRunningWhileAFilmIsHeld(t *testing.T) {
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := natsjs.New(nc)
	src, err := Open(context.Background(), Options{
		JS: js, Subject: "t.ingest",
		Stream:  bus.StreamSpec{Name: "T_INGEST", Replicas: 1, DuplicateWindow: time.Hour},
		Durable: "d", AckWait: 300 * time.Millisecond, MaxDeliver: 3, Capacity: 2,
		DeadLetterSubject: "t.dead", DeadLetterStream: "T_DEAD", ObjectBucket: "T_FILMS",
		Manage: true, SpoolDir: t.TempDir(), MaxObjectSize: 1 << 20, Timeout: 5 * time.Second,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	before := goleak.IgnoreCurrent()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	if _, err := js.Publish(ctx, "t.ingest", []byte("film")); err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
	m, err := src.next(nctx)
	ncancel()
	if err != nil {
		t.Fatalf("no film delivered: %v", err)
	}
	time.Sleep(250 * time.Millisecond) // a heartbeat or two while held
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended, with a film held")
	}
	goleak.VerifyNone(t, before)
	if err := m.Ack(); err != nil {
		t.Fatalf("acknowledging the held film after Run returned: %v", err)
	}
}
