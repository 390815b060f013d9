package pacs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// An outbox on a full disk (a small tmpfs, filled up) holds the film in
// the stream and retries it with backoff, reporting the destination
// failing, leaving no partial or temporary file; once space is freed the
// film is delivered without a restart.
func TestOutboxDiskFullRetried(t *testing.T) {
	testenv.Slow(t)
	bo := buildObjects(t, films[0])
	objs := bo.objs.List()
	size := 0
	for _, o := range objs {
		size += len(o.File)
	}
	// Room for the objects twice over; the filler takes all of it.
	dir := testenv.Tmpfs(t, fmt.Sprintf("%dk", max(2*size/1024+64, 256)))
	filler := filepath.Join(dir, "filler")
	testenv.FillDisk(t, filler)

	srv := testenv.NATS(t)
	js := jsOf(t, srv.ClientURL())
	storeInRecord(t, js, bo)
	b, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "full", Dir: dir, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pacs.New(js, pacs.Options{ManageStreams: true, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, Log: testLog(t)}, b)
	if err != nil {
		t.Fatal(err)
	}
	runDelivery(t, d)
	testenv.Eventually(t, 30*time.Second, "disk full retried three times", func() bool { return d.Stats()[0].Retries >= 3 })
	st := d.Stats()[0]
	if st.Delivered != 0 || st.DeadLetters != 0 || st.FailingSince.IsZero() || d.Health() == nil {
		t.Fatalf("on a full disk: %+v, health %v", st, d.Health())
	}
	t.Logf("on a full disk: %d retries, health: %v", st.Retries, d.Health())
	if !strings.Contains(st.LastError, "no space left on device") {
		t.Errorf("last error %q does not say the disk is full", st.LastError)
	}
	// Nothing half-written (only the filler) while it retries.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("full outbox holds %q, want only the filler", names)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "delivered once space is freed", func() bool { return d.Stats()[0].Delivered == 1 })
	wantFiles(t, dir, objs)
	if d.Health() != nil {
		t.Errorf("health after delivery: %v", d.Health())
	}
}
