package pacs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/resultobj"
)

// outboxFiles lists dir: the .dcm files by name, and anything else.
func outboxFiles(t *testing.T, dir string) (dcm map[string][]byte, other []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	dcm = map[string][]byte{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".dcm") {
			other = append(other, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dcm[e.Name()] = b
	}
	return dcm, other
}

// wantFiles fails unless dir holds exactly the objects as
// <SOP Instance UID>.dcm, byte for byte, readable by others, and nothing
// else but the names in extra.
func wantFiles(t *testing.T, dir string, objs []resultobj.Object, extra ...string) {
	t.Helper()
	dcm, other := outboxFiles(t, dir)
	if len(dcm) != len(objs) || strings.Join(other, ",") != strings.Join(extra, ",") {
		t.Fatalf("outbox holds %d .dcm files and %q; want %d and %q", len(dcm), other, len(objs), extra)
	}
	for _, o := range objs {
		name := o.SOPInstanceUID + ".dcm"
		if !bytes.Equal(dcm[name], o.File) {
			t.Errorf("%s: %d bytes, not the object's %d", name, len(dcm[name]), len(o.File))
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v (%v), want 0644", name, fi.Mode(), err)
		}
	}
}

// An outbox writes each object as <SOP Instance UID>.dcm, the Part 10
// file unchanged, and nothing else; a re-send replaces the files; an
// object that cannot be a file there is refused, not retried for ever; a
// folder missing or not a folder is an error at start; a folder gone
// later is retried.
func TestOutboxSend(t *testing.T) {
	objs := buildObjects(t, films[0]).objs.List()
	if len(objs) != 2 {
		t.Fatalf("%d objects built, want SR and SC", len(objs))
	}
	dir := t.TempDir()
	// Stale temporary file of a killed daemon: swept at start; a fresh
	// one (another daemon's write in progress) and the gateway's own
	// files are left alone.
	stale, fresh := filepath.Join(dir, ".triaged-1.tmp"), filepath.Join(dir, ".triaged-2.tmp")
	for _, p := range []string{stale, fresh, filepath.Join(dir, "gateway.lock")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	b, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "gw", Dir: dir, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file not swept: %v", err)
	}
	if err := os.Remove(fresh); err != nil {
		t.Errorf("fresh temporary file swept: %v", err)
	}
	ctx := context.Background()
	if err := b.Send(ctx, objs); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, objs, "gateway.lock")

	// A re-send (same UIDs, a daemon killed before its ack; here with
	// other bytes, to see the replacement) replaces each file whole.
	again := append([]resultobj.Object(nil), objs...)
	for i := range again {
		again[i].File = append(append([]byte(nil), objs[i].File...), 0, 0)
	}
	if err := b.Send(ctx, again); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, again, "gateway.lock")

	// Refusals: retrying would not help.
	for _, bad := range []resultobj.Object{
		{SOPClassUID: objs[0].SOPClassUID, SOPInstanceUID: "../../etc/passwd", File: objs[0].File},
		{SOPClassUID: objs[0].SOPClassUID, SOPInstanceUID: "1.2.3", File: []byte("not DICOM")},
	} {
		err := b.Send(ctx, []resultobj.Object{bad})
		var se *deliver.SendError
		if !errors.As(err, &se) || se.Retryable {
			t.Errorf("%q: %v, want a refusal", bad.SOPInstanceUID, err)
		}
	}
	wantFiles(t, dir, again, "gateway.lock")

	// Start errors.
	file := filepath.Join(dir, "gateway.lock")
	for _, d := range []string{"", filepath.Join(dir, "missing"), file} {
		if _, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "gw", Dir: d}); err == nil {
			t.Errorf("NewOutbox(%q) accepted", d)
		} else {
			t.Logf("NewOutbox(%q): %v", d, err)
		}
	}

	// The folder gone after start (an unmounted share): retried.
	gone := filepath.Join(t.TempDir(), "share")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "gw", Dir: gone})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	err = g.Send(ctx, objs)
	var se *deliver.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Errorf("folder gone: %v, want a retryable error", err)
	}
	t.Logf("folder gone: %v", err)
}

// Permission denied is retried (an administrator fixes the folder's
// owner), and the objects go out once it is fixed.
func TestOutboxPermissionDeniedRetried(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipping: running as root, which file permissions do not stop (the tmpfs disk-full test covers retries)")
	}
	objs := buildObjects(t, films[0]).objs.List()
	dir := t.TempDir()
	b, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "gw", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	err = b.Send(context.Background(), objs)
	var se *deliver.SendError
	if !errors.As(err, &se) || !se.Retryable || !errors.Is(err, os.ErrPermission) {
		t.Errorf("read-only folder: %v, want a retryable permission error", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(context.Background(), objs); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, dir, objs)
}

// Films in the record reach the outbox through the durable consumer and
// are acknowledged: the consumer has nothing pending, the figures say
// delivered.
func TestOutboxDelivery(t *testing.T) {
	testenv.Slow(t)
	srv := testenv.NATS(t)
	js := jsOf(t, srv.ClientURL())
	var all []resultobj.Object
	for _, f := range films {
		bo := buildObjects(t, f)
		storeInRecord(t, js, bo)
		all = append(all, bo.objs.List()...)
	}
	dir := t.TempDir()
	b, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "gateway", Dir: dir, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pacs.New(js, pacs.Options{ManageStreams: true, Log: testLog(t)}, b)
	if err != nil {
		t.Fatal(err)
	}
	runDelivery(t, d)
	testenv.Eventually(t, 30*time.Second, "every film delivered", func() bool { return d.Stats()[0].Delivered == uint64(len(films)) })
	wantFiles(t, dir, all)
	testenv.Eventually(t, 10*time.Second, "every message acknowledged", func() bool {
		c, err := js.Consumer(context.Background(), "TRIAGED_OBJECTS", "triaged-deliver-gateway")
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if st := d.Stats()[0]; st.Retries != 0 || st.DeadLetters != 0 || d.Health() != nil {
		t.Errorf("stats %+v, health %v", st, d.Health())
	}
}
