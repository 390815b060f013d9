// Package jetstream is the JetStream intake: films published on an ingest
// subject (inline, or as a reference to an object store entry for large
// ones) are pulled from a durable consumer shared by every daemon of a
// fleet. Its films follow the contract of package ingest: a message is
// acknowledged only after its result is stored, a bad one is copied to the
// dead-letter subject with its reason, and a released one is redelivered
// with backoff. It also owns the wire format senders use (headers, object
// references).
package jetstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
)

// Message headers a film may carry on the ingest subject (`triaged submit`
// sets them; any producer may).
const (
	HeaderPriority = "Triaged-Priority" // STAT, HIGH, ROUTINE...: scheduling and escalation
	HeaderSource   = "Triaged-Source"   // free text naming the sender (a PACS, a modality)
	HeaderFilename = "Triaged-Filename" // the film's file name, for the result message only
)

// Headers of a dead-letter copy, besides the original message's own.
const (
	HeaderDLCode       = "Triaged-Code"
	HeaderDLReason     = "Triaged-Reason"
	HeaderDLFilmID     = "Triaged-Film-Id"
	HeaderDLStream     = "Triaged-Original-Stream"
	HeaderDLSubject    = "Triaged-Original-Subject"
	HeaderDLSequence   = "Triaged-Original-Sequence"
	HeaderDLDeliveries = "Triaged-Deliveries"
	HeaderDLAt         = "Triaged-Dead-Lettered-At"
	HeaderDLDropped    = "Triaged-Payload-Dropped"
)

// ObjectRefSchema marks a payload that is a reference to an Object Store
// object rather than the DICOM file itself.
const ObjectRefSchema = "triaged.object-ref/v1"

// ObjectRef is the JSON payload that stands for a film too large for a
// message: the film is the object Name in Bucket.
type ObjectRef struct {
	Schema string `json:"schema"`
	Bucket string `json:"bucket"`
	Name   string `json:"name"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // hex; checked against the object's digest
}

// ParseObjectRef reports whether a payload is an object reference. A DICOM
// file starts with a 128-byte preamble and never with '{'.
func ParseObjectRef(data []byte) (*ObjectRef, bool, error) {
	d := bytes.TrimLeft(data, " \t\r\n")
	if len(d) == 0 || d[0] != '{' {
		return nil, false, nil
	}
	var r ObjectRef
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, true, fmt.Errorf("the payload looks like an object reference but is not valid: %w", err)
	}
	if r.Schema != ObjectRefSchema {
		return nil, true, fmt.Errorf("object reference schema %q, want %q", r.Schema, ObjectRefSchema)
	}
	if r.Name == "" {
		return nil, true, errors.New("object reference without a name")
	}
	return &r, true, nil
}

// ObjectDigest is the Object Store's digest string for a hex SHA-256.
func ObjectDigest(hexSum string) (string, error) {
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("sha256 %q is not 64 hex digits", hexSum)
	}
	return "SHA-256=" + base64.URLEncoding.EncodeToString(b), nil
}

// Options configure the JetStream intake.
type Options struct {
	JS      natsjs.JetStream
	Subject string // the consumer's filter (the stream captures it)
	Stream  bus.StreamSpec
	Durable string
	AckWait time.Duration
	// MaxDeliver: a film delivered more often than this is dead-lettered
	// (code max_deliveries) instead of being processed again.
	MaxDeliver int
	Backoff    []time.Duration // redelivery delay after a transient failure, by attempt
	// Capacity bounds the films this daemon holds (delivered, not yet
	// finished): the pipeline's workers + queue + admission. Pulling stops
	// at the bound, so a backlog waits in the stream, not in memory.
	Capacity int
	// MaxAckPending is the consumer's bound across every daemon sharing it;
	// 0 means Capacity.
	MaxAckPending     int
	DeadLetterSubject string
	DeadLetterStream  string
	ObjectBucket      string
	ObjectMaxAge      time.Duration
	// Manage creates or updates the streams and the bucket; otherwise they
	// must exist. The consumer is always created or updated: it is ours.
	Manage        bool
	SpoolDir      string        // object-store films while in flight; "" = $TMPDIR
	MaxObjectSize int64         // larger objects are refused unread (too_large)
	Timeout       time.Duration // one NATS operation (ack, dead-letter publish)
	Daemon        string        // the daemon's version, on dead-letter copies
	Log           zerolog.Logger
}

// Intake pulls films from a durable JetStream consumer. It holds at most
// Capacity of them at once, keeps each alive with InProgress while the
// daemon works on it, and ends each with exactly one of Ack, DeadLetter
// (Term + a copy on the dead-letter subject) or Retry (Nak with backoff).
type Intake struct {
	o    Options
	log  zerolog.Logger
	cons natsjs.Consumer

	slots chan struct{} // a token per film held
	out   chan *Message

	mu   sync.Mutex
	held map[uint64]*Message // by stream sequence
	obs  natsjs.ObjectStore
	// local counts, by stream sequence, the deliveries this daemon gave
	// back for reasons that were not the film's (shutting down, a full
	// spool, NATS unreachable while fetching): they do not count toward
	// MaxDeliver. Kept in memory: a restart or another daemon of the fleet
	// counts them as deliveries, which errs toward dead-lettering later
	// rather than never.
	local map[uint64]uint64

	delivered, acked, retried, deadLettered, coalesced atomic.Uint64
}

// Open prepares the ingest stream, the dead-letter stream, the
// object bucket and the durable consumer.
func Open(ctx context.Context, o Options) (*Intake, error) {
	if o.Capacity < 1 {
		o.Capacity = 1
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = o.Capacity
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{time.Second}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	s := &Intake{
		o:     o,
		log:   o.Log.With().Str("ingest", "nats").Str("stream", o.Stream.Name).Logger(),
		slots: make(chan struct{}, o.Capacity),
		out:   make(chan *Message),
		held:  map[uint64]*Message{},
		local: map[uint64]uint64{},
	}
	// A spool that cannot be written would make every large film fail
	// later, one retry at a time: fail now instead.
	if o.SpoolDir != "" {
		if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
			return nil, fmt.Errorf("ingest.nats.spool_dir: %w", err)
		}
	}
	f, err := os.CreateTemp(o.SpoolDir, ".triaged-spool-check-*")
	if err != nil {
		return nil, fmt.Errorf("ingest.nats.spool_dir is not writable: %w", err)
	}
	f.Close()
	os.Remove(f.Name())
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Intake) ensure(ctx context.Context) error {
	o := s.o
	streams := []bus.Stream{{
		Spec:        o.Stream,
		Subjects:    []string{o.Subject},
		Description: "triaged films to score (work queue: a film leaves once a daemon acknowledged it)",
		WorkQueue:   true,
		// A full stream refuses new films instead of dropping unscored ones.
		DiscardNew: true,
	}, {
		Spec:        bus.StreamSpec{Name: o.DeadLetterStream, Replicas: o.Stream.Replicas, DuplicateWindow: o.Stream.DuplicateWindow},
		Subjects:    []string{o.DeadLetterSubject},
		Description: "triaged films given up on, with the reason in headers",
		DiscardNew:  true,
	}}
	for _, st := range streams {
		if err := bus.EnsureStream(ctx, o.JS, st, o.Manage); err != nil {
			return err
		}
	}
	obs, err := bus.EnsureObjectStore(ctx, o.JS, bus.StreamSpec{Name: o.ObjectBucket, MaxAge: o.ObjectMaxAge, Replicas: o.Stream.Replicas},
		"triaged films too large for a message", o.Manage)
	if err != nil {
		return fmt.Errorf("ingest object bucket: %w", err)
	}
	s.mu.Lock()
	s.obs = obs
	s.mu.Unlock()
	return s.ensureConsumer(ctx)
}

func (s *Intake) ensureConsumer(ctx context.Context) error {
	o := s.o
	c, err := o.JS.CreateOrUpdateConsumer(ctx, o.Stream.Name, natsjs.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "triaged daemons (shared)",
		FilterSubject: o.Subject,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       o.AckWait,
		// Deliveries are bounded by the daemon, not the server: a server
		// bound would strand the film whose last delivery was lost to a
		// crash; the daemon dead-letters it instead.
		MaxDeliver:    -1,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: natsjs.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("create or update consumer %s on stream %s: %w", o.Durable, o.Stream.Name, err)
	}
	s.mu.Lock()
	s.cons = c
	s.mu.Unlock()
	return nil
}

func (s *Intake) consumer() natsjs.Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cons
}

// Run pulls films until ctx ends, keeps the held ones alive, and survives
// NATS outages and server restarts: the pull resumes by itself once the
// server is back. At the end, films pulled but not handed out are given
// back at once (Nak) so another daemon can take them.
func (s *Intake) Run(ctx context.Context) error {
	// The heartbeat is Run's own goroutine: it stops with ctx and Run
	// returns only after it has, so nothing of the intake outlives Run.
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(ctx)
	}()
	defer func() { <-hbDone }()
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		it, err := s.consumer().Messages(
			natsjs.PullMaxMessages(min(4, s.o.Capacity)),
			natsjs.WithMessagesErrOnMissingHeartbeat(false),
		)
		if err == nil {
			err = s.pump(ctx, it)
			s.giveBack(it)
			if ctx.Err() != nil {
				return nil
			}
		}
		s.log.Warn().Err(err).Msg("pulling from the ingest consumer failed; retrying")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
		// The consumer may be gone (a memory stream after a server restart,
		// an operator's mistake): put it back.
		cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		if err := s.ensure(cctx); err != nil {
			s.log.Warn().Err(err).Msg("cannot restore the ingest consumer yet")
		}
		cancel()
	}
	return nil
}

// pump hands films to Next, one per free slot.
func (s *Intake) pump(ctx context.Context, it natsjs.MessagesContext) error {
	for {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := it.Next(natsjs.NextContext(ctx))
		if err != nil {
			<-s.slots
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		m, err := s.wrap(msg)
		if err != nil {
			<-s.slots
			s.log.Error().Err(err).Msg("message without JetStream metadata on the ingest consumer; leaving it to redelivery")
			continue
		}
		if m == nil {
			<-s.slots // a redelivery of a film this daemon already holds
			continue
		}
		select {
		case s.out <- m:
		case <-ctx.Done():
			m.Retry(0)
			return nil
		}
	}
}

// giveBack stops the pull and Naks what was buffered but not handed out.
func (s *Intake) giveBack(it natsjs.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(natsjs.NextMaxWait(time.Second))
		if err != nil {
			it.Stop()
			return
		}
		_ = msg.Nak()
	}
}

// wrap registers a delivered film. A redelivery of a film this daemon still
// holds (its ack wait ran out during an outage) is not processed twice: the
// held copy is kept alive and acknowledged by stream sequence, which
// covers every delivery.
func (s *Intake) wrap(msg natsjs.Msg) (*Message, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.held[md.Sequence.Stream]; ok {
		h.deliveries.Store(md.NumDelivered)
		_ = msg.InProgress()
		s.coalesced.Add(1)
		return nil, nil
	}
	m := &Message{s: s, msg: msg, seq: md.Sequence.Stream, ts: md.Timestamp, subject: msg.Subject()}
	m.deliveries.Store(md.NumDelivered)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], md.Sequence.Stream)
	h := sha256.New()
	h.Write([]byte(md.Stream + "\x00"))
	h.Write(b[:])
	h.Write([]byte(strconv.FormatInt(md.Timestamp.UnixNano(), 10)))
	m.id = hex.EncodeToString(h.Sum(nil))[:16]
	s.held[m.seq] = m
	s.delivered.Add(1)
	return m, nil
}

// heartbeat tells the server every AckWait/3 that held films are still
// being worked on. While NATS is away this fails quietly; a film whose ack
// wait ran out meanwhile is redelivered and coalesced (see wrap) or, in a
// fleet, processed by another daemon and deduplicated by message ID. When
// ctx ends it beats once more for every held film and stops: the films in
// flight then have a whole AckWait to drain (the default ack_wait equals the
// default pipeline.drain_timeout); one drained for longer may be redelivered,
// and its output is deduplicated by message ID, never lost.
func (s *Intake) heartbeat(ctx context.Context) {
	t := time.NewTicker(max(s.o.AckWait/3, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.beat()
		case <-ctx.Done():
			s.beat()
			return
		}
	}
}

// beat sends InProgress for every held film.
func (s *Intake) beat() {
	s.mu.Lock()
	held := make([]*Message, 0, len(s.held))
	for _, m := range s.held {
		held = append(held, m)
	}
	s.mu.Unlock()
	for _, m := range held {
		_ = m.msg.InProgress()
	}
}

// Next returns the next film, waiting for one.
func (s *Intake) Next(ctx context.Context) (ingest.Film, error) {
	m, err := s.next(ctx)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Intake) next(ctx context.Context) (*Message, error) {
	select {
	case m := <-s.out:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Intake) objectStore(ctx context.Context, bucket string) (natsjs.ObjectStore, error) {
	if bucket != "" && bucket != s.o.ObjectBucket {
		return nil, &ingest.OpenError{Code: "bad_reference", Err: fmt.Errorf("the reference names bucket %q; this daemon reads films only from %q (ingest.nats.object_bucket)", bucket, s.o.ObjectBucket)}
	}
	s.mu.Lock()
	obs := s.obs
	s.mu.Unlock()
	if obs != nil {
		return obs, nil
	}
	obs, err := s.o.JS.ObjectStore(ctx, s.o.ObjectBucket)
	if err != nil {
		return nil, &ingest.TransientError{Err: fmt.Errorf("object store bucket %s: %w", s.o.ObjectBucket, err)}
	}
	s.mu.Lock()
	s.obs = obs
	s.mu.Unlock()
	return obs, nil
}

// Stats is the intake's state, for health and metrics.
type Stats struct {
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	// Held: films this daemon holds (delivered, not yet finished).
	Held int `json:"held"`
	// Pending: films in the stream not yet delivered to any daemon;
	// AckPending: delivered to some daemon and not yet acknowledged.
	// Both come from the server; InfoError says why they are missing.
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
	InfoError  string `json:"info_error,omitempty"`
	// Since this daemon started.
	Delivered    uint64 `json:"delivered"`
	Acked        uint64 `json:"acked"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	Coalesced    uint64 `json:"coalesced_redeliveries"`
}

// Stats reports the intake's counters and asks the server for the
// consumer's backlog.
func (s *Intake) Stats(ctx context.Context) Stats {
	s.mu.Lock()
	held := len(s.held)
	s.mu.Unlock()
	st := Stats{
		Stream: s.o.Stream.Name, Consumer: s.o.Durable, Held: held,
		Delivered: s.delivered.Load(), Acked: s.acked.Load(), Retried: s.retried.Load(),
		DeadLettered: s.deadLettered.Load(), Coalesced: s.coalesced.Load(),
	}
	info, err := s.consumer().Info(ctx)
	if err != nil {
		st.InfoError = err.Error()
		return st
	}
	st.Pending, st.AckPending = info.NumPending, info.NumAckPending
	return st
}

// Message is one delivered film.
type Message struct {
	s          *Intake
	msg        natsjs.Msg
	seq        uint64
	ts         time.Time
	subject    string
	id         string
	deliveries atomic.Uint64

	mu       sync.Mutex
	spool    *os.File
	size     int64
	finished bool
}

// ID is the film ID: derived from the stream and the message's sequence and
// timestamp, so it is the same on every redelivery, carries no patient
// data, and keys the error event and dead-letter message IDs.
func (m *Message) ID() string { return m.id }

// Subject is the subject the film was published to.
func (m *Message) Subject() string { return m.subject }

// Sequence is the film's stream sequence.
func (m *Message) Sequence() uint64 { return m.seq }

// Deliveries is how many times the server has delivered the film.
func (m *Message) Deliveries() uint64 { return m.deliveries.Load() }

// Header returns a message header.
func (m *Message) Header(k string) string { return m.msg.Headers().Get(k) }

// Open returns the film's bytes: the payload itself, or the object it
// references, fetched once into an unlinked spool file (so a queued film
// does not hold memory and a read never fails halfway for a network
// reason). Errors are *ingest.OpenError (bad input: quarantine) or
// *ingest.TransientError (retry later).
func (m *Message) Open() (io.ReadCloser, int64, error) {
	if n := m.attempts(); m.s.o.MaxDeliver > 0 && n > uint64(m.s.o.MaxDeliver) {
		return nil, 0, &ingest.OpenError{Code: "max_deliveries", Err: fmt.Errorf("tried %d times (ingest.nats.max_deliver %d) without being finished", n, m.s.o.MaxDeliver)}
	}
	data := m.msg.Data()
	ref, isRef, err := ParseObjectRef(data)
	if err != nil {
		return nil, 0, &ingest.OpenError{Code: "bad_reference", Err: err}
	}
	if !isRef {
		return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.spool == nil {
		if err := m.fetch(ref); err != nil {
			return nil, 0, err
		}
	}
	return io.NopCloser(io.NewSectionReader(m.spool, 0, m.size)), m.size, nil
}

func (m *Message) fetch(ref *ObjectRef) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.s.o.Timeout)
	defer cancel()
	obs, err := m.s.objectStore(ctx, ref.Bucket)
	if err != nil {
		return err
	}
	info, err := obs.GetInfo(ctx, ref.Name)
	if errors.Is(err, natsjs.ErrObjectNotFound) {
		return m.missingOrLagging(ctx, ref.Name, "is not in bucket "+m.s.o.ObjectBucket+" (never uploaded, deleted, or expired after ingest.nats.object_max_age)")
	}
	if err != nil {
		return &ingest.TransientError{Err: fmt.Errorf("object %q info: %w", ref.Name, err)}
	}
	if m.s.o.MaxObjectSize > 0 && int64(info.Size) > m.s.o.MaxObjectSize {
		return &ingest.OpenError{Code: "too_large", Err: fmt.Errorf("object of %d bytes is above ingest.max_file_size (%d)", info.Size, m.s.o.MaxObjectSize)}
	}
	if ref.SHA256 != "" {
		want, err := ObjectDigest(ref.SHA256)
		if err != nil {
			return &ingest.OpenError{Code: "bad_reference", Err: err}
		}
		if info.Digest != want {
			return &ingest.OpenError{Code: "object_mismatch", Err: fmt.Errorf("object %q has digest %s, the reference says %s", ref.Name, info.Digest, want)}
		}
	}
	// A large film may take longer than one operation's timeout.
	fctx, fcancel := context.WithTimeout(context.Background(), m.s.o.Timeout+time.Duration(info.Size>>20)*time.Second)
	defer fcancel()
	r, err := obs.Get(fctx, ref.Name)
	if errors.Is(err, natsjs.ErrObjectNotFound) {
		return m.missingOrLagging(fctx, ref.Name, "disappeared from bucket "+m.s.o.ObjectBucket)
	}
	if err != nil {
		return &ingest.TransientError{Err: fmt.Errorf("get object %q: %w", ref.Name, err)}
	}
	defer r.Close()
	f, err := os.CreateTemp(m.s.o.SpoolDir, ".triaged-spool-*")
	if err != nil {
		return &ingest.TransientError{Err: fmt.Errorf("spool file: %w", err)}
	}
	// Unlinked at once: the data lives as long as the descriptor, and a
	// crash leaves nothing behind.
	os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if errors.Is(err, natsjs.ErrDigestMismatch) {
		f.Close()
		return &ingest.OpenError{Code: "object_corrupt", Err: fmt.Errorf("object %q: %w", ref.Name, err)}
	}
	if err != nil {
		f.Close()
		return &ingest.TransientError{Err: fmt.Errorf("read object %q: %w", ref.Name, err)}
	}
	if n != int64(info.Size) {
		f.Close()
		return &ingest.TransientError{Err: fmt.Errorf("read object %q: got %d of %d bytes", ref.Name, n, info.Size)}
	}
	m.spool, m.size = f, n
	return nil
}

// finish forgets the film: no more heartbeats, the spool file goes, the
// slot frees. It reports false if the film was already finished.
func (m *Message) finish() bool {
	m.mu.Lock()
	if m.finished {
		m.mu.Unlock()
		return false
	}
	m.finished = true
	if m.spool != nil {
		m.spool.Close()
		m.spool = nil
	}
	m.mu.Unlock()
	m.s.mu.Lock()
	delete(m.s.held, m.seq)
	m.s.mu.Unlock()
	<-m.s.slots
	return true
}

// Ack acknowledges the film and waits for the server to confirm. Call it
// only once the film's output is durably stored. If the confirmation does
// not come (NATS went away), the film is redelivered later and its output
// deduplicated by message ID.
func (m *Message) Ack() error {
	if !m.finish() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.s.o.Timeout)
	defer cancel()
	if err := m.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("acknowledge film %s (stream sequence %d): %w", m.id, m.seq, err)
	}
	m.s.acked.Add(1)
	m.forget()
	return nil
}

// Origin is the film's source for its result message. The file name a
// sender put in a header is reduced to a safe base name.
func (m *Message) Origin() publish.Source {
	return publish.Source{Kind: "nats", Name: m.subject, File: SafeName(m.Header(HeaderFilename)), FilmID: m.id, Sender: m.Header(HeaderSource)}
}

// SafeName reduces a file name a sender supplied to its base name in a
// safe character set (letters, digits, '.', '-', '_'; others become '_'),
// at most 255 bytes: "../../etc/x.dcm" becomes "x.dcm".
func SafeName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), ".")
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// PriorityHint is the priority the sender put in the Triaged-Priority header.
func (m *Message) PriorityHint() string {
	return strings.ToUpper(strings.TrimSpace(m.Header(HeaderPriority)))
}

// Quarantine keeps the film on the dead-letter subject with its reason and
// stops its deliveries (the daemon has already stored the error event).
func (m *Message) Quarantine(code, reason string) error {
	return m.DeadLetter(code, reason, "triaged "+m.s.o.Daemon)
}

// Release gives the film back for a retry after the delay, for a reason
// that is not the film's: the delivery does not count toward MaxDeliver.
func (m *Message) Release(after time.Duration) {
	m.s.mu.Lock()
	m.s.local[m.seq]++
	m.s.mu.Unlock()
	m.Retry(after)
}

// Failed gives the film back after the daemon genuinely tried to process
// it and failed: the delivery counts toward MaxDeliver.
func (m *Message) Failed(after time.Duration) { m.Retry(after) }

// attempts is the deliveries that count toward MaxDeliver.
func (m *Message) attempts() uint64 {
	m.s.mu.Lock()
	local := m.s.local[m.seq]
	m.s.mu.Unlock()
	n := m.Deliveries()
	return n - min(local, n)
}

// forget drops the local count of a film that is finished for good.
func (m *Message) forget() {
	m.s.mu.Lock()
	delete(m.s.local, m.seq)
	m.s.mu.Unlock()
}

// Retry gives the film back: at once (after == 0, a shutdown) or, after a
// failure, following the backoff schedule (never sooner than after).
func (m *Message) Retry(after time.Duration) {
	if !m.finish() {
		return
	}
	m.s.retried.Add(1)
	if after == 0 {
		_ = m.msg.Nak()
		return
	}
	n := int(m.Deliveries())
	delay := m.s.o.Backoff[min(max(n-1, 0), len(m.s.o.Backoff)-1)]
	_ = m.msg.NakWithDelay(max(delay, after))
}

// DeadLetter stores a copy of the film on the dead-letter subject with the
// reason, then terminates it (no more deliveries). If the copy cannot be
// stored, the film is retried later instead: nothing is dropped.
func (m *Message) DeadLetter(code, reason, daemon string) error {
	if !m.finish() {
		return nil
	}
	o := m.s.o
	dl := nats.NewMsg(o.DeadLetterSubject)
	for k, v := range m.msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue // the original's message ID and the like are not ours to repeat
		}
		dl.Header[k] = v
	}
	dl.Header.Set(nats.MsgIdHdr, m.id+":dead-letter")
	dl.Header.Set(HeaderDLCode, code)
	dl.Header.Set(HeaderDLReason, reason)
	dl.Header.Set(HeaderDLFilmID, m.id)
	dl.Header.Set(HeaderDLStream, o.Stream.Name)
	dl.Header.Set(HeaderDLSubject, m.subject)
	dl.Header.Set(HeaderDLSequence, strconv.FormatUint(m.seq, 10))
	dl.Header.Set(HeaderDLDeliveries, strconv.FormatUint(m.Deliveries(), 10))
	dl.Header.Set(HeaderDLAt, time.Now().UTC().Format(time.RFC3339Nano))
	dl.Header.Set("Triaged-Daemon", daemon)
	dl.Data = m.msg.Data()
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	_, err := o.JS.PublishMsg(ctx, dl)
	if errors.Is(err, nats.ErrMaxPayload) {
		// The original filled the max payload and our headers pushed the
		// copy over: keep the reason, and say the payload is only in the
		// ingest stream's history (or the sender's hands).
		dl.Data = nil
		dl.Header.Set(HeaderDLDropped, "the film did not fit with the dead-letter headers")
		_, err = o.JS.PublishMsg(ctx, dl)
	}
	if err != nil {
		n := int(m.Deliveries())
		_ = m.msg.NakWithDelay(o.Backoff[min(max(n-1, 0), len(o.Backoff)-1)])
		return fmt.Errorf("film %s: store dead-letter copy (the film will be retried): %w", m.id, err)
	}
	m.s.deadLettered.Add(1)
	m.forget()
	if err := m.msg.TermWithReason(code); err != nil {
		// Redelivered later: dead-lettered again under the same message ID.
		return fmt.Errorf("film %s: dead-lettered but not terminated: %w", m.id, err)
	}
	return nil
}
