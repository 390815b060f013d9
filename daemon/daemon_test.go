package daemon_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/testenv"
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

type harness struct {
	t      *testing.T
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
	h := &harness{t: t, cfg: cfg, url: cfg.NATS.URL, drop: cfg.Ingest.Folders[0].Path, cancel: cancel, done: make(chan error, 1)}
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
	for _, m := range testenv.StreamMessages(t, url, "TRIAGED_RESULTS") {
		if m.Subject != "triaged.result" {
			continue
		}
		var r publish.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out[r.Film.SOPInstanceUID] = append(out[r.Film.SOPInstanceUID], r)
	}
	return out
}

func events(t *testing.T, url string) map[string]publish.Event {
	t.Helper()
	out := map[string]publish.Event{}
	for _, m := range testenv.StreamMessages(t, url, "TRIAGED_RESULTS") {
		if m.Subject != "triaged.error" {
			continue
		}
		var e publish.Event
		json.Unmarshal(m.Data, &e)
		out[e.Source.File] = e
	}
	return out
}

// The spine end to end: real films and bad files dropped into a real
// folder reach durable results (one per instance) and error events, and
// every input ends in done/ or failed/.
func TestDropFolderToDurableResults(t *testing.T) {
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
