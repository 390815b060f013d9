// Package testenv gives tests the real components they run against: the
// shared data beside the repository, the ONNX Runtime library, the committed
// models and an embedded JetStream server in a temporary directory.
package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/triaged/triaged/internal/ortlib"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// SharedData returns ../shared/data, or skips the test with a clear message
// when it is absent (it is present on developer machines and in CI).
func SharedData(t testing.TB) string {
	t.Helper()
	d := filepath.Join(Root(), "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
		t.Skipf("skipping: the shared data set is not at %s (it sits beside the repository in CI and on developer machines)", d)
	}
	return d
}

// Slow skips t under -short (`go test -short ./...`, the fast path of unit
// tests): call it first in a test that starts a subprocess, a real peer, a
// NATS server or a daemon, runs the real models over more than a couple of
// films, walks the DICOM corpora, or otherwise takes more than about a
// second. Such a test runs in the full suite, `make test`.
func Slow(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping under -short: slow or needs real peers; it runs in `make test`")
	}
}

// KnownGoroutines are third-party background goroutines that the
// goroutine-leak checks (goleak.VerifyTestMain in each package's TestMain)
// must not count against us.
func KnownGoroutines() []goleak.Option {
	return []goleak.Option{
		// nats.go v1.55.0: ObjectStore.Put publishes through a JetStream
		// context of its own and deferred-cleans it (object.go,
		// cleanupReplySub), which sets the publisher's status channel to nil;
		// the goroutine newAsyncReply has just started may read it after that
		// and then waits on a nil channel forever. One per racing Put, owned
		// by the library, not by our code.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	}
}

// DICOM returns the path of a file under shared/data/dicom.
func DICOM(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(SharedData(t), "dicom", rel)
}

// ORT makes sure the ONNX Runtime library can be found; `make test` fetches
// it, so its absence is a failure, not a skip.
func ORT(t testing.TB) string {
	t.Helper()
	lib, err := ortlib.Find("")
	if err != nil {
		t.Fatalf("%v (run the tests with `make test`, which fetches it)", err)
	}
	return lib
}

// Model returns a committed model directory.
func Model(t testing.TB, name string) string {
	t.Helper()
	d := filepath.Join(Root(), "models", name)
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		t.Fatalf("model %s is not committed under models/: %v", name, err)
	}
	return d
}

// NATS starts an embedded JetStream server storing in a temporary directory
// and shuts it down when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return NATSWith(t, &server.Options{})
}

// NATSWith starts a server with extra options (port, auth, TLS...).
func NATSWith(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.JetStream = true
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	o.NoSigs = true
	o.NoLog = true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("embedded NATS: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Msg is a stored JetStream message.
type Msg struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// StreamMessages reads every message stored in a stream (up to its last
// sequence when called) with an ordered consumer: one request per batch,
// not per message, so a stream of thousands reads in well under its
// deadline on a loaded machine. It fails the test rather than return a
// partial list.
func StreamMessages(t testing.TB, url, stream string) []Msg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []Msg
	if info.State.Msgs == 0 {
		return out
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("stream %s: ordered consumer: %v", stream, err)
	}
	// Ask for no more than the sequences left, and always drain a batch: a
	// fetch still waiting for messages keeps a goroutine that outlives the
	// connection until its wait ends (goleak sees it).
	last, empty := info.State.FirstSeq-1, 0
	for last < info.State.LastSeq && uint64(len(out)) < info.State.Msgs {
		n := min(1000, int(info.State.Msgs)-len(out))
		batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("stream %s: fetch: %v", stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatalf("stream %s: %v", stream, err)
			}
			if md.Sequence.Stream > info.State.LastSeq {
				continue
			}
			got++
			last = md.Sequence.Stream
			out = append(out, Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s: read %d messages, up to sequence %d wanted: %v", stream, len(out), info.State.LastSeq, ctx.Err())
		}
		if got == 0 {
			// Nothing more in three waits: the last sequences were deleted
			// (a work queue, a purge) after the stream's info was read.
			if empty++; empty == 3 {
				break
			}
			continue
		}
		empty = 0
	}
	return out
}

// Films returns the full-size film set of the bench (`make films`, or
// $TRIAGED_FILMS), or skips: it is generated, never committed.
func Films(t testing.TB) string {
	t.Helper()
	d := os.Getenv("TRIAGED_FILMS")
	if d == "" {
		d = filepath.Join(Root(), "var", "films")
	}
	if ps, _ := filepath.Glob(filepath.Join(d, "*.dcm")); len(ps) == 0 {
		t.Skipf("skipping: no generated films in %s (make films)", d)
	}
	return d
}

// AllModels returns the committed models and, for benchmarks, the untrained
// ones of `make bench-models` (var/bench-models) whose architecture is not
// committed yet.
func AllModels(t testing.TB) []string {
	t.Helper()
	var out []string
	have := map[string]bool{}
	for _, dir := range []string{filepath.Join(Root(), "models"), filepath.Join(Root(), "var", "bench-models")} {
		ms, _ := filepath.Glob(filepath.Join(dir, "*", "manifest.json"))
		for _, m := range ms {
			d := filepath.Dir(m)
			if !have[filepath.Base(d)] {
				have[filepath.Base(d)] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// Stored reads every message stored in stream on subject and decodes its
// JSON into T, failing the test on a message that does not decode. It is the
// one way tests read the record (results, events, alerts).
func Stored[T any](t testing.TB, url, stream, subject string) []T {
	t.Helper()
	var out []T
	for _, m := range StreamMessages(t, url, stream) {
		if m.Subject != subject {
			continue
		}
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("stream %s, subject %s: %v", stream, subject, err)
		}
		out = append(out, v)
	}
	return out
}
