package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// films the spine decodes, from the shared data set.
var supported = []string{
	"original/nih_cxr_dx_implicit.dcm",
	"derived/nih_dx_explicitLE.dcm",
	"derived/nih_dx_bigendian.dcm",
	"derived/nih_dx_deflate.dcm",
	"derived/nih_dx_jpegBaseline.dcm",
	"derived/RG1_chest_CR_mono1_explicitLE.dcm",
}

// harness is a daemon started in this process, stopped when the test ends.
type harness struct {
	t      *testing.T
	d      *daemon.Daemon
	cfg    *config.Config
	url    string
	drop   string
	cancel context.CancelFunc
	done   chan error
}

func newConfig(t *testing.T, url string) *config.Config {
	cfg := config.Default()
	cfg.NATS.URL = url
	cfg.Ingest.Folders = []config.Folder{{Path: filepath.Join(t.TempDir(), "incoming")}}
	cfg.Ingest.Settle = 100 * time.Millisecond
	cfg.Models = []config.Model{{Path: testenv.Model(t, "squeezenet1_1")}}
	cfg.Pipeline.Workers = 4
	cfg.Pipeline.DrainTimeout = 10 * time.Second
	return cfg
}

func start(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := daemon.New(cfg, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, d: d, cfg: cfg, url: cfg.NATS.URL, drop: cfg.Ingest.Folders[0].Path, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- d.Run(ctx); d.Close() }()
	select {
	case <-d.Ready:
	case err := <-h.done:
		t.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("daemon did not stop")
	}
}

func count(dir string, keep func(string) bool) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if !e.IsDir() && keep(e.Name()) {
			n++
		}
	}
	return n
}

func isFilm(n string) bool { return !strings.HasSuffix(n, ".reason.json") }

func drop(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	// In place, as a plain `cp` would: the lease check must wait for the close.
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func results(t *testing.T, url string) map[string][]publish.Result {
	t.Helper()
	out := map[string][]publish.Result{}
	for _, r := range testenv.Stored[publish.Result](t, url, "TRIAGED_RESULTS", "triaged.result") {
		out[r.Film.SOPInstanceUID] = append(out[r.Film.SOPInstanceUID], r)
	}
	return out
}

func events(t *testing.T, url string) map[string]publish.Event {
	t.Helper()
	out := map[string]publish.Event{}
	for _, e := range testenv.Stored[publish.Event](t, url, "TRIAGED_RESULTS", "triaged.error") {
		out[e.Source.File] = e
	}
	return out
}

// The spine end to end: real films and bad files dropped into a real
// folder reach durable results (one per instance) and error events, and
// every input ends in done/ or failed/.
func TestDropFolderToDurableResults(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	h := start(t, newConfig(t, srv.ClientURL()))
	for _, rel := range supported {
		b, err := os.ReadFile(testenv.DICOM(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		drop(t, h.drop, filepath.Base(rel), b)
	}
	drop(t, h.drop, "notes.txt", []byte("this is not a film\n"))
	good, _ := os.ReadFile(testenv.DICOM(t, "derived/nih_dx_explicitLE.dcm"))
	drop(t, h.drop, "truncated.dcm", good[:len(good)/2])

	done, failed := filepath.Join(h.drop, "done"), filepath.Join(h.drop, "failed")
	testenv.Eventually(t, 60*time.Second, "every film handled", func() bool {
		return count(done, isFilm) == len(supported) && count(failed, isFilm) == 2
	})
	if n := count(failed, func(n string) bool { return strings.HasSuffix(n, ".reason.json") }); n != 2 {
		t.Errorf("failed/ has %d reason files, want 2", n)
	}
	if n := count(filepath.Join(h.drop, ".processing"), isFilm); n != 0 {
		t.Errorf("%d films left in processing", n)
	}
	res := results(t, h.url)
	// The lossless transcodes of one film share its SOP Instance UID and so
	// are one instance: one result.
	for uid, rs := range res {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results, want exactly 1", uid, len(rs))
		}
		r := rs[0]
		if r.Schema != publish.ResultSchema || r.Film.StudyInstanceUID == "" || len(r.Models) != 1 || r.ModelSet == "" || r.Priority == "" {
			t.Errorf("incomplete result: %+v", r)
		}
	}
	if len(res) < 3 {
		t.Errorf("got results for %d instances, want at least 3 (NIH original, its JPEG transcode, RG1)", len(res))
	}
	ev := events(t, h.url)
	if ev["notes.txt"].Code != "not_dicom" || ev["truncated.dcm"].Code != "truncated" {
		t.Errorf("error events: %+v", ev)
	}
}

// A crash after the result was stored but before the file was moved leaves
// the film in processing: the next start processes it again, the stream
// deduplicates the result, and the film ends in done/ without a second
// result.
func TestCrashLeftoverIsReprocessedWithoutDuplicate(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	h := start(t, cfg)
	film, _ := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	drop(t, h.drop, "a.dcm", film)
	testenv.Eventually(t, 30*time.Second, "first result", func() bool { return count(filepath.Join(h.drop, "done"), isFilm) == 1 })
	h.stop()

	// What a crash between PubAck and the move leaves behind.
	os.WriteFile(filepath.Join(h.drop, ".processing", "00112233445566ff--a.dcm"), film, 0o644)
	h2 := start(t, cfg)
	testenv.Eventually(t, 30*time.Second, "leftover handled", func() bool { return count(filepath.Join(h2.drop, "done"), isFilm) == 2 })
	res := results(t, srv.ClientURL())
	if len(res) != 1 {
		t.Fatalf("want one instance, got %d", len(res))
	}
	for uid, rs := range res {
		if len(rs) != 1 {
			t.Fatalf("instance %s has %d results after the replay", uid, len(rs))
		}
	}
}

// skippedEvents returns the skipped events by file name.
func skippedEvents(t *testing.T, url string) map[string]publish.Event {
	t.Helper()
	out := map[string]publish.Event{}
	for _, e := range testenv.Stored[publish.Event](t, url, "TRIAGED_RESULTS", "triaged.skipped") {
		out[e.Source.File] = e
	}
	return out
}

// Hostile files dropped into a running daemon among good films: each is
// quarantined with its own reason code (error event and reason file), the
// good films, oddly named ones included, are all scored, a lateral film is
// skipped to done/, and nothing is ever written where a tag value points.
func TestHostileFilesAreQuarantinedWhileGoodFilmsFlow(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	cfg.Ingest.MaxFileSize = dicomtest.HostileMaxFileSize
	h := start(t, cfg)

	nih, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	film := func(uid string) []byte {
		im := dicomtest.Good()
		im.SOPInstanceUID = uid
		return im.Bytes()
	}
	evil := filepath.Join(t.TempDir(), "evil")
	good := map[string][]byte{
		"nih.dcm":                nih,
		"film with spaces.dcm":   film("1.2.826.0.1.3680043.10.1234.9.1"),
		"ünïcødé.dcm":            film("1.2.826.0.1.3680043.10.1234.9.2"),
		"-leading-dash.dcm":      film("1.2.826.0.1.3680043.10.1234.9.3"),
		"new\nline.dcm":          film("1.2.826.0.1.3680043.10.1234.9.4"),
		"$(touch pwned).dcm":     film("1.2.826.0.1.3680043.10.1234.9.5"),
		strings.Repeat("n", 250): film("1.2.826.0.1.3680043.10.1234.9.6"),
		"uid-traversal.dcm":      film("../../../../../../.." + evil),
	}
	lateral := dicomtest.Good()
	lateral.View = "LL"
	lateral.SOPInstanceUID = "1.2.826.0.1.3680043.10.1234.9.7"

	hostile := dicomtest.Hostile()
	wantCode := map[string]string{}
	for i, f := range hostile {
		drop(t, h.drop, f.Name, f.Data)
		wantCode[f.Name] = f.Code
		if i%4 == 0 { // good films keep arriving between hostile ones
			n := fmt.Sprintf("good-%02d.dcm", i)
			good[n] = film(fmt.Sprintf("1.2.826.0.1.3680043.10.1234.8.%d", i))
		}
	}
	long := strings.Repeat("h", 250)
	drop(t, h.drop, long, []byte("not a film"))
	wantCode[long] = "not_dicom"
	for n, b := range good {
		drop(t, h.drop, n, b)
	}
	drop(t, h.drop, "lateral.dcm", lateral.Bytes())
	outside := filepath.Join(t.TempDir(), "outside.dcm")
	os.WriteFile(outside, nih, 0o644)
	if err := os.Symlink(outside, filepath.Join(h.drop, "link.dcm")); err != nil {
		t.Fatal(err)
	}
	wantCode["link.dcm"] = "symlink"
	if err := syscall.Mkfifo(filepath.Join(h.drop, "pipe.dcm"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode["pipe.dcm"] = "not_regular_file"

	done, failed := filepath.Join(h.drop, "done"), filepath.Join(h.drop, "failed")
	// A reason file is written under a temporary name first: not a film.
	quarantined := func(n string) bool { return isFilm(n) && !strings.HasSuffix(n, ".reason.json.tmp") }
	testenv.Eventually(t, 120*time.Second, "every file handled", func() bool {
		return count(done, isFilm) == len(good)+1 && count(failed, quarantined) == len(wantCode)
	})
	// Only the folder's own marks directory (poison-film guard) may remain.
	if ents, _ := os.ReadDir(filepath.Join(h.drop, ".processing")); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != ".marks" {
		t.Errorf("%d entries left in processing: %v", len(ents), ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.drop, ".processing", ".marks")); len(ents) != 0 {
		t.Errorf("%d marks left for films that are done: %v", len(ents), ents)
	}

	// Reason files sit beside the quarantined file; a name too long to
	// take the suffix is shortened, so find them by the name they record.
	reasons := map[string]struct{ Code, Reason string }{}
	ents, _ := os.ReadDir(failed)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".reason.json") {
			b, _ := os.ReadFile(filepath.Join(failed, e.Name()))
			var r struct{ File, Code, Reason string }
			json.Unmarshal(b, &r)
			reasons[r.File] = struct{ Code, Reason string }{r.Code, r.Reason}
		}
	}
	ev := events(t, h.url)
	for name, code := range wantCode {
		if got := ev[name].Code; got != code {
			t.Errorf("%q: error event code %q, want %q (%s)", name, got, code, ev[name].Reason)
		}
		if r := reasons[name]; r.Code != code || r.Reason == "" {
			t.Errorf("%q: reason file says %q (%q), want %q", name, r.Code, r.Reason, code)
		}
	}
	res := results(t, h.url)
	scored := map[string]bool{}
	for _, rs := range res {
		for _, r := range rs {
			scored[r.Source.File] = true
		}
	}
	for name := range good {
		if !scored[name] {
			t.Errorf("good film %q has no result", name)
		}
		if _, err := os.Stat(filepath.Join(done, name)); err != nil {
			t.Errorf("good film %q not in done/: %v", name, err)
		}
	}
	if sk := skippedEvents(t, h.url)["lateral.dcm"]; sk.Code != "route_view_position" || sk.Film == nil || sk.MessageID == "" {
		t.Errorf("lateral film: skipped event %+v", sk)
	}
	if _, err := os.Lstat(evil); err == nil {
		t.Error("a path was built from the SOP Instance UID")
	}
}
