package jetstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/triaged/triaged/bus"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

type jsHarness struct {
	t   testing.TB
	nc  *nats.Conn
	js  natsjs.JetStream
	src *Intake
	ctx context.Context
}

func openTestIntake(t testing.TB, capacity, maxDeliver int) *jsHarness {
	t.Helper()
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src, err := Open(ctx, Options{
		JS: js, Subject: "t.ingest",
		Stream:  bus.StreamSpec{Name: "T_INGEST", Replicas: 1, DuplicateWindow: time.Hour},
		Durable: "d", AckWait: 2 * time.Second, MaxDeliver: maxDeliver,
		Backoff: []time.Duration{50 * time.Millisecond}, Capacity: capacity,
		DeadLetterSubject: "t.dead", DeadLetterStream: "T_DEAD", ObjectBucket: "T_FILMS",
		Manage: true, SpoolDir: t.TempDir(), MaxObjectSize: 64 << 20, Timeout: 5 * time.Second,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	go src.Run(ctx)
	return &jsHarness{t: t, nc: nc, js: js, src: src, ctx: ctx}
}

func (h *jsHarness) publish(data []byte, hdr map[string]string) {
	h.t.Helper()
	m := nats.NewMsg("t.ingest")
	m.Data = data
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	if _, err := h.js.PublishMsg(h.ctx, m); err != nil {
		h.t.Fatal(err)
	}
}

func (h *jsHarness) next() *Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	m, err := h.src.next(ctx)
	if err != nil {
		h.t.Fatalf("no film delivered: %v", err)
	}
	return m
}

func readMsg(t *testing.T, m *Message) ([]byte, error) {
	t.Helper()
	rc, size, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || int64(len(b)) != size {
		t.Fatalf("read %d of %d bytes: %v", len(b), size, err)
	}
	return b, nil
}

func openCodeOf(err error) string {
	var oe *ingest.OpenError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

func (h *jsHarness) streamMsgs(stream string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(h.ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// Inline and object-store films read back byte for byte; an acknowledged
// film leaves the work-queue stream; the film ID is stable across a
// redelivery.
func TestJetStreamInlineObjectAckAndStableID(t *testing.T) {
	h := openTestIntake(t, 4, 5)
	inline := []byte("inline film bytes")
	h.publish(inline, map[string]string{HeaderPriority: "STAT", HeaderFilename: "a.dcm"})
	m1 := h.next()
	if b, err := readMsg(t, m1); err != nil || string(b) != string(inline) {
		t.Fatalf("inline film: %q %v", b, err)
	}
	if m1.Header(HeaderPriority) != "STAT" || m1.Header(HeaderFilename) != "a.dcm" || m1.Deliveries() != 1 {
		t.Fatalf("headers/deliveries: %q %q %d", m1.Header(HeaderPriority), m1.Header(HeaderFilename), m1.Deliveries())
	}
	id := m1.ID()
	m1.Retry(0)
	again := h.next()
	if again.ID() != id || again.Deliveries() != 2 {
		t.Fatalf("redelivery: id %s (was %s), deliveries %d", again.ID(), id, again.Deliveries())
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}

	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	sum := sha256.Sum256(big)
	hexSum := hex.EncodeToString(sum[:])
	obs, err := h.js.ObjectStore(h.ctx, "T_FILMS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(h.ctx, hexSum, big); err != nil {
		t.Fatal(err)
	}
	ref, _ := json.Marshal(ObjectRef{Schema: ObjectRefSchema, Bucket: "T_FILMS", Name: hexSum, Size: int64(len(big)), SHA256: hexSum})
	h.publish(ref, nil)

	m2 := h.next()
	for range 2 { // the second Open reads the spool, not the bucket
		b, err := readMsg(t, m2)
		if err != nil || string(b) != string(big) {
			t.Fatalf("object film: %d bytes, %v", len(b), err)
		}
	}
	if err := m2.Ack(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "acknowledged films leave the stream", func() bool { return h.streamMsgs("T_INGEST") == 0 })
	st := h.src.Stats(h.ctx)
	if st.Acked != 2 || st.Held != 0 || st.Retried != 1 || st.InfoError != "" {
		t.Fatalf("stats: %+v", st)
	}
}

// Bad references are OpenErrors with a reason code; dead-lettering stores
// a copy with the reason and ends deliveries; a film delivered more than
// max_deliver times is refused with max_deliveries.
func TestJetStreamBadInputDeadLetterAndMaxDeliver(t *testing.T) {
	h := openTestIntake(t, 4, 2)
	h.publish([]byte(`{"schema":"triaged.object-ref/v1","bucket":"T_FILMS","name":"nope"}`), nil)
	m := h.next()
	if _, err := readMsg(t, m); openCodeOf(err) != "object_missing" {
		t.Fatalf("missing object: %v", err)
	}
	if err := m.DeadLetter("object_missing", "gone", "test"); err != nil {
		t.Fatal(err)
	}
	h.publish([]byte(`{"schema":"something/else"}`), nil)
	m = h.next()
	if _, err := readMsg(t, m); openCodeOf(err) != "bad_reference" {
		t.Fatalf("bad reference: %v", err)
	}
	m.Retry(time.Millisecond) // pretend a transient failure, twice
	m = h.next()
	m.Retry(time.Millisecond)
	m = h.next()
	if m.Deliveries() != 3 {
		t.Fatalf("deliveries %d", m.Deliveries())
	}
	if _, err := readMsg(t, m); openCodeOf(err) != "max_deliveries" {
		t.Fatalf("third delivery with max_deliver 2: %v", err)
	}
	if err := m.DeadLetter("max_deliveries", "too many", "test"); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 10*time.Second, "terminated films leave the stream", func() bool { return h.streamMsgs("T_INGEST") == 0 })
	dl, err := h.js.Stream(h.ctx, "T_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for seq := uint64(1); seq <= 2; seq++ {
		msg, err := dl.GetMsg(h.ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, msg.Header.Get(HeaderDLCode))
		if msg.Header.Get(HeaderDLFilmID) == "" || msg.Header.Get(HeaderDLSequence) != strconv.Itoa(int(seq)) || len(msg.Data) == 0 {
			t.Errorf("dead letter %d: %v %q", seq, msg.Header, msg.Data)
		}
	}
	if codes[0] != "object_missing" || codes[1] != "max_deliveries" {
		t.Fatalf("dead-letter codes %v", codes)
	}
	if st := h.src.Stats(h.ctx); st.DeadLettered != 2 || st.Held != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// The intake holds no more than its capacity: the backlog stays in the
// stream (backpressure, not memory growth).
func TestJetStreamHoldsAtMostCapacity(t *testing.T) {
	h := openTestIntake(t, 3, 5)
	for i := range 20 {
		h.publish([]byte("film "+strconv.Itoa(i)), nil)
	}
	var held []*Message
	for range 3 {
		held = append(held, h.next())
	}
	ctx, cancel := context.WithTimeout(h.ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := h.src.next(ctx); err == nil {
		t.Fatalf("a fourth film was handed out beyond capacity 3: %s", m.ID())
	}
	st := h.src.Stats(h.ctx)
	if st.Held != 3 || st.AckPending > 3 || st.Pending < 17 {
		t.Fatalf("stats: %+v", st)
	}
	for _, m := range held {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	for range 17 {
		if err := h.next().Ack(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseObjectRef(t *testing.T) {
	dicom := append(make([]byte, 128), "DICM"...)
	if _, isRef, err := ParseObjectRef(dicom); isRef || err != nil {
		t.Fatal("a DICOM file is not a reference")
	}
	if r, isRef, err := ParseObjectRef([]byte(` {"schema":"triaged.object-ref/v1","bucket":"B","name":"n","size":3}`)); !isRef || err != nil || r.Name != "n" {
		t.Fatalf("%+v %v %v", r, isRef, err)
	}
	if _, isRef, err := ParseObjectRef([]byte(`{"schema":"triaged.object-ref/v1","nam":"n"}`)); !isRef || err == nil {
		t.Fatal("unknown fields are refused")
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/x.dcm": "x.dcm", `C:\films\a b.dcm`: "a_b.dcm", "film.dcm": "film.dcm", "": "",
		"..": "", "Müller^Hans.dcm": "M__ller_Hans.dcm", ".hidden": "hidden",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Giving a film back for a local reason (Release: shutting down, a full
// spool, NATS away) does not spend its max_deliver budget; only genuine
// failed attempts (Failed) do.
func TestLocalReleasesDoNotCountTowardMaxDeliver(t *testing.T) {
	h := openTestIntake(t, 4, 2)
	h.publish([]byte("DICM-ish payload"), nil)
	m := h.next()
	for range 4 {
		m.Release(time.Millisecond)
		m = h.next()
	}
	if m.Deliveries() != 5 {
		t.Fatalf("deliveries %d, want 5", m.Deliveries())
	}
	if _, err := readMsg(t, m); err != nil {
		t.Fatalf("after 4 local releases with max_deliver 2 the film must still be offered: %v", err)
	}
	m.Failed(time.Millisecond)
	m = h.next()
	if _, err := readMsg(t, m); err != nil {
		t.Fatalf("after one genuine failure: %v", err)
	}
	m.Failed(time.Millisecond)
	m = h.next()
	if _, err := readMsg(t, m); openCodeOf(err) != "max_deliveries" {
		t.Fatalf("after two genuine failures with max_deliver 2: %v", err)
	}
	if err := m.DeadLetter("max_deliveries", "too many", "test"); err != nil {
		t.Fatal(err)
	}
}

// Only the bucket's leader decides that an object is missing: it answers
// for a stored object, a never-stored one and a deleted one (the check
// behind object_missing when a lagging replica says "not found").
func TestLeaderHasObject(t *testing.T) {
	h := openTestIntake(t, 1, 3)
	obs, err := h.js.ObjectStore(h.ctx, "T_FILMS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(h.ctx, "kept", []byte("film")); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(h.ctx, "gone", []byte("film")); err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(h.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"kept": true, "gone": false, "never-stored": false} {
		got, err := leaderHasObject(h.ctx, h.js, "T_FILMS", name)
		if err != nil || got != want {
			t.Errorf("leaderHasObject(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := leaderHasObject(h.ctx, h.js, "NO_SUCH_BUCKET", "kept"); err == nil {
		t.Error("a bucket without a stream: no error")
	}
}
