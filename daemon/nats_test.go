package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	jsingest "github.com/triaged/triaged/ingest/jetstream"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

const (
	ingestSubject = "triaged.ingest"
	filmBucket    = "TRIAGED_FILMS"
)

func natsConfig(t *testing.T, url string) *config.Config {
	cfg := newConfig(t, url)
	cfg.Ingest.NATS.Enabled = true
	cfg.Ingest.NATS.AckWait = 3 * time.Second
	cfg.Ingest.NATS.Backoff = []time.Duration{200 * time.Millisecond}
	cfg.Ingest.NATS.SpoolDir = t.TempDir()
	return cfg
}

func jsClient(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

func synthUID(i int) string { return fmt.Sprintf("1.2.826.0.1.3680043.10.1234.77.%d", i) }

// Films arrive over NATS inline and through the object store; each scored
// film gets exactly one result naming its NATS origin; bad input gets an
// error event and lands on the dead-letter subject with its reason; the
// ingest stream ends empty (everything acknowledged or terminated).
func TestNATSIngestToDurableResults(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	h := start(t, natsConfig(t, srv.ClientURL()))
	js := jsClient(t, srv.ClientURL())

	sub := func(name string, data []byte, object bool, hdr map[string]string) {
		if hdr == nil {
			hdr = map[string]string{}
		}
		hdr[jsingest.HeaderFilename] = name
		hdr[jsingest.HeaderSource] = "test-pacs"
		natstest.Submit(t, js, ingestSubject, filmBucket, data, hdr, object)
	}
	real := map[string]bool{ // film -> through the object store
		"original/nih_cxr_dx_implicit.dcm":          true, // 1 MB: above the default max payload
		"derived/nih_dx_jpegBaseline.dcm":           false,
		"derived/RG1_chest_CR_mono1_explicitLE.dcm": true, // 7 MB
	}
	for rel, obj := range real {
		b, err := os.ReadFile(testenv.DICOM(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		sub(filepath.Base(rel), b, obj, nil)
	}
	for i := range 5 {
		sub(fmt.Sprintf("synth%d.dcm", i), dicomtest.Film(synthUID(i), 64, 64, ""), i%2 == 1, nil)
	}
	trunc := dicomtest.Film(synthUID(99), 64, 64, "")
	sub("notes.txt", []byte("this is not a film\n"), false, nil)
	sub("truncated.dcm", trunc[:len(trunc)-3000], false, nil)
	sub("missing.ref", []byte(`{"schema":"triaged.object-ref/v1","bucket":"TRIAGED_FILMS","name":"no-such-object"}`), false, nil)
	sub("garbled.ref", []byte(`{"schema":"triaged.object-ref/v1","bucket":`), false, nil)
	wantBad := map[string]string{"notes.txt": "not_dicom", "truncated.dcm": "truncated", "missing.ref": "object_missing", "garbled.ref": "bad_reference"}

	testenv.Eventually(t, 120*time.Second, "every film handled", func() bool {
		return len(results(t, srv.ClientURL())) == 8 && len(events(t, srv.ClientURL())) == 4 && natstest.StreamLen(js, "TRIAGED_INGEST") == 0
	})
	for uid, rs := range results(t, srv.ClientURL()) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results", uid, len(rs))
		}
		if s := rs[0].Source; s.Kind != "nats" || s.Name != ingestSubject || s.File == "" || s.Sender != "test-pacs" || len(s.FilmID) != 16 {
			t.Errorf("result source: %+v", s)
		}
	}
	for name, e := range events(t, srv.ClientURL()) {
		if wantBad[name] != e.Code {
			t.Errorf("error event for %s: code %q, want %q", name, e.Code, wantBad[name])
		}
	}
	dead := testenv.StreamMessages(t, srv.ClientURL(), "TRIAGED_DEAD_LETTER")
	if len(dead) != len(wantBad) {
		t.Errorf("dead letters: %d, want %d", len(dead), len(wantBad))
	}
	for _, m := range dead {
		name := m.Header.Get(jsingest.HeaderFilename)
		if c := m.Header.Get(jsingest.HeaderDLCode); c != wantBad[name] || m.Header.Get(jsingest.HeaderDLReason) == "" {
			t.Errorf("dead letter %s: code %q reason %q", name, c, m.Header.Get(jsingest.HeaderDLReason))
		}
	}
	st := h.d.IngestStats(context.Background())
	if len(st) != 1 || st[0].Held != 0 || st[0].Acked != 8 || st[0].DeadLettered != 4 || st[0].Pending != 0 {
		t.Errorf("ingest stats: %+v", st)
	}
}

// startFixed starts a JetStream server on a fixed port and store, so that
// a restart brings back the same server.
func startFixed(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS did not start")
	}
	return s
}

// The NATS server goes away mid-stream and comes back: the daemon keeps
// running, acknowledges nothing meanwhile, reconnects by itself, resumes
// pulling (films published after the restart are scored too), and every
// film, including one dropped into the folder during the outage, ends with
// exactly one result.
func TestNATSOutageLosesNothing(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	port := natstest.FreePorts(t, 1)[0]
	dir := t.TempDir()
	srv := startFixed(t, port, dir)
	defer func() {
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}()
	url := srv.ClientURL()
	cfg := natsConfig(t, url)
	cfg.Pipeline.Workers = 2
	h := start(t, cfg)
	js := jsClient(t, url)

	const before, after = 40, 10
	for i := range before {
		natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(i), 256, 256, ""), nil, i%4 == 0)
	}
	testenv.Eventually(t, 60*time.Second, "some results before the outage", func() bool { return len(results(t, url)) >= 3 })

	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.Eventually(t, 10*time.Second, "the daemon sees the outage", func() bool { return !h.d.NATSConnected() })
	drop(t, cfg.Ingest.Folders[0].Path, "during-outage.dcm", dicomtest.Film(synthUID(1000), 64, 64, ""))
	time.Sleep(2 * cfg.Ingest.NATS.AckWait) // long enough for ack waits to run out
	if !slices.ContainsFunc(h.d.IngestStats(context.Background()), func(s jsingest.Stats) bool { return s.InfoError != "" }) {
		t.Error("ingest stats during the outage should say the consumer is unreachable")
	}

	srv = startFixed(t, port, dir)
	testenv.Eventually(t, 30*time.Second, "the daemon reconnects by itself", h.d.NATSConnected)
	for i := before; i < before+after; i++ {
		natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(i), 256, 256, ""), nil, i%4 == 0)
	}
	testenv.Eventually(t, 120*time.Second, "every film scored", func() bool {
		return len(results(t, url)) == before+after+1 && natstest.StreamLen(js, "TRIAGED_INGEST") == 0
	})
	for uid, rs := range results(t, url) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results", uid, len(rs))
		}
	}
	if n := len(testenv.StreamMessages(t, url, "TRIAGED_DEAD_LETTER")); n != 0 {
		t.Errorf("%d films dead-lettered", n)
	}
	if n := count(filepath.Join(cfg.Ingest.Folders[0].Path, "done"), isFilm); n != 1 {
		t.Errorf("the film dropped during the outage: %d in done/", n)
	}
	h.stop()
}

// With a backlog, films flagged STAT (by message header or by their DICOM
// priority) are scored before routine ones.
func TestNATSStatFilmsJumpTheBacklog(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := natsConfig(t, srv.ClientURL())
	cfg.Pipeline.Workers = 1
	start(t, cfg).stop() // creates the streams; the backlog builds while no daemon runs
	js := jsClient(t, srv.ClientURL())
	const routine = 24
	for i := range routine {
		natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(i), 700, 700, ""), nil, false)
	}
	stat := map[string]bool{synthUID(500): true, synthUID(501): true, synthUID(502): true}
	natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(500), 64, 64, ""), map[string]string{jsingest.HeaderPriority: "STAT"}, false)
	natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(501), 64, 64, ""), map[string]string{jsingest.HeaderPriority: "stat"}, true)
	natstest.Submit(t, js, ingestSubject, filmBucket, dicomtest.Film(synthUID(502), 64, 64, "STAT"), nil, false)

	start(t, cfg)
	var order []string
	testenv.Eventually(t, 180*time.Second, "every film scored", func() bool {
		order = order[:0]
		for _, r := range testenv.Stored[publish.Result](t, srv.ClientURL(), "TRIAGED_RESULTS", "triaged.result") {
			order = append(order, r.Film.SOPInstanceUID)
		}
		return len(order) == routine+len(stat)
	})
	// The single worker takes routine films while the admitters are still
	// reading the 24 routine headers ahead of the STAT ones (a few, more on
	// a loaded machine: 4 were seen in CI); once admitted, STAT films go
	// first, far ahead of the 24 they were queued behind.
	for i, uid := range order {
		if stat[uid] && i >= len(stat)+6 {
			t.Errorf("STAT film scored in position %d of %d: %v", i, len(order), order)
		}
	}
}
