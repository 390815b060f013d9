package publish

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Chunks left without an object (a writer killed between an object's
// chunks and its metadata) are purged once older than the grace period;
// complete objects and chunks still within the grace (a Put in progress)
// are left alone.
func TestSweepOrphanChunksPurgesOnlyOldUnreferencedChunks(t *testing.T) {
	testenv.Slow(t)
	p := newPub(t, true)
	ctx := context.Background()
	att, err := p.EnsureBucket(ctx, bus.StreamSpec{Name: "HM", Replicas: 1, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := att.Put(ctx, "k/cam-overlay.png", "image/png", []byte("a complete heatmap"))
	if err != nil {
		t.Fatal(err)
	}
	// What a kill -9 between the chunks and the metadata leaves.
	for range 3 {
		if _, err := p.JS.Publish(ctx, "$O.HM.C.orphanedNUID0000000001", make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := p.JS.Publish(ctx, "$O.HM.C.uploadingNUID00000002", make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	sw, err := SweepOrphanChunks(ctx, p.JS, "HM", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sw != (Swept{Objects: 1, Orphans: 1, Young: 1}) {
		t.Errorf("sweep = %+v, want 1 object kept, 1 orphan purged, 1 young chunk set kept", sw)
	}
	st, _ := p.JS.Stream(ctx, "OBJ_HM")
	if _, err := st.GetLastMsgForSubject(ctx, "$O.HM.C.orphanedNUID0000000001"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("orphaned chunks still there: %v", err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "$O.HM.C.uploadingNUID00000002"); err != nil {
		t.Errorf("chunks within the grace period were purged: %v", err)
	}
	if b, err := FetchAttachment(ctx, p.JS, kept); err != nil || string(b) != "a complete heatmap" {
		t.Errorf("complete object after the sweep: %q, %v", b, err)
	}
	// An empty bucket sweeps cleanly.
	if _, err := p.EnsureBucket(ctx, bus.StreamSpec{Name: "EMPTY", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if sw, err := SweepOrphanChunks(ctx, p.JS, "EMPTY", time.Second); err != nil || sw != (Swept{}) {
		t.Errorf("empty bucket: %+v, %v", sw, err)
	}
}
