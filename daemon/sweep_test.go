package daemon_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Heatmap chunks a crash left without an object (written here directly,
// as a kill -9 between an upload's chunks and its metadata leaves them)
// are purged by the daemon's sweep once past the grace period, counted in
// triaged_heatmap_orphans_swept_total; complete heatmaps stay.
func TestOrphanedHeatmapChunksAreSwept(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	d, logs := startLogged(t, cfg, daemon.WithHeatmapSweep(200*time.Millisecond, time.Second))
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	obs, err := js.ObjectStore(ctx, "TRIAGED_HEATMAPS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "0123/cam-overlay.png", []byte("a complete heatmap")); err != nil {
		t.Fatal(err)
	}
	const orphan = "$O.TRIAGED_HEATMAPS.C.killedMidUploadNUID0001"
	for range 2 {
		if _, err := js.Publish(ctx, orphan, make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, "OBJ_TRIAGED_HEATMAPS")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the orphaned chunks purged", func() bool {
		_, err := st.GetLastMsgForSubject(ctx, orphan)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	// The purge is counted just after it is done.
	testenv.Eventually(t, 10*time.Second, "the sweep counted", func() bool {
		return counter(t, d, "triaged_heatmap_orphans_swept_total") >= 1
	})
	if v := counter(t, d, "triaged_heatmap_orphans_swept_total"); v != 1 {
		t.Errorf("triaged_heatmap_orphans_swept_total = %v, want 1", v)
	}
	if b, err := obs.GetBytes(ctx, "0123/cam-overlay.png"); err != nil || string(b) != "a complete heatmap" {
		t.Errorf("complete heatmap after the sweep: %q, %v", b, err)
	}
	if !strings.Contains(logs.String(), "purged heatmap chunks left without an object") {
		t.Errorf("the sweep is not logged:\n%s", logs.String())
	}
}

func counter(t *testing.T, d *daemon.Daemon, name string) float64 {
	t.Helper()
	mfs, err := d.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
