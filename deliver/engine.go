// Package deliver takes alerts from the alerts stream to outside systems
// (Alertmanager, webhooks, paging services) durably.
//
// Each Destination has its own durable JetStream pull consumer on the
// alerts stream, named "triaged-deliver-<name>", filtered on the alert
// priorities it takes, <prefix>.alert.ack and (optionally)
// <prefix>.alert.update. The consumer lives on the server, so a delivery
// survives restarts, and every daemon of a fleet pulls from the same one:
// each message goes to one daemon at a time, one delivery per alert.
//
// A message is acknowledged only after the destination accepted it (2xx).
// A retryable failure (connection error, timeout, 408, 425, 429, 5xx) is
// negatively acknowledged with a delay (capped exponential backoff with
// jitter, or the receiver's Retry-After), together with the rest of its
// batch, and the destination is paused for that delay; MaxDeliver is
// unlimited, so a receiver down for an hour loses nothing. Any other
// failure (a 4xx, an undecodable message) is published to the dead-letter
// subject <prefix>.deliver.dead.<destination> (stored in its own stream,
// Options.DeadLetterStream) with the status and a bounded excerpt of the
// response, then terminated. While a send is in progress the ack deadline
// of every message held is kept alive with InProgress.
//
// Ordering: messages are taken in batches of what is available (up to
// Options.Batch) and each batch is delivered critical first, then urgent,
// then in stream order; an acknowledgement or an update ranks with its
// alert's priority and always follows its alert (it is stored later). A
// backlog built up during an outage comes back as a batch once the delays
// expire, so it is delivered by priority then age within each batch of up
// to Options.Batch messages, and batch after batch in stream order. Nothing
// stronger is promised: with several daemons each orders its own batches.
//
// Resolution: an alert ends when an acknowledgement (publish.Ack) for its
// alert ID is stored; destinations receive it as KindAck (Alertmanager
// endsAt, PagerDuty resolve, Opsgenie close). With Options.TTL the engine
// publishes that acknowledgement itself (Via "ttl") for alerts still active
// after TTL, so every destination resolves them the same way.
//
// The active set: a tracker consumer ("triaged-deliver-active") keeps every
// unacknowledged alert in the JetStream KV bucket Options.ActiveBucket
// (key: triage ID). Destinations implementing Periodic (Alertmanager,
// which forgets alerts not re-sent) get the active set every Interval; one
// daemon of the fleet does each re-send, chosen by a compare-and-set on the
// bucket. The bucket also lets `triaged ack` turn a triage ID back into an
// alert ID.
//
// Usage (the daemon wires it; see docs/deliveries.md):
//
//	e, err := deliver.New(js, deliver.Options{Prefix: "triaged", Stream: "TRIAGED_ALERTS", TriageKey: key}, dests...)
//	go e.Run(ctx) // returns once ctx ends and every goroutine has stopped
//	e.Stats(); e.Health()
package deliver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/publish"
)

// Destination is an outside system alerts go to.
type Destination interface {
	// Name is unique among destinations and names the durable consumer;
	// it must match NamePattern.
	Name() string
	// Send delivers one event and returns nil once the receiver accepted
	// it, else an error; a *SendError says whether to retry and when.
	// Send is called from one goroutine per destination at a time.
	Send(ctx context.Context, ev *Event) error
}

// Filterer is implemented by destinations that take only some priorities
// (or want alert updates). Without it a destination takes every priority
// and no updates.
type Filterer interface{ Filter() Filter }

// Filter says what a destination takes.
type Filter struct {
	Priorities []string // alert priorities; empty: all
	Updates    bool     // <prefix>.alert.update follow-ups
}

func (f Filter) takes(priority string) bool {
	return len(f.Priorities) == 0 || slices.Contains(f.Priorities, priority)
}

// Periodic is implemented by destinations that must hear about active
// alerts again and again (Alertmanager). Tick gets the active alerts of
// the priorities the destination takes; one daemon of a fleet calls it per
// Interval.
type Periodic interface {
	Interval() time.Duration
	Tick(ctx context.Context, active []Active) error
}

// LocalPeriodic is implemented by destinations that also send something of
// this daemon's own every Interval (Alertmanager: the pipeline's health);
// every daemon of a fleet calls it, unlike Tick.
type LocalPeriodic interface {
	LocalTick(ctx context.Context) error
}

// AckPublisher stores acknowledgements (publish.Publisher does); the engine
// needs it only to end alerts whose TTL passed.
type AckPublisher interface {
	PublishAck(ctx context.Context, a *publish.Ack) (publish.Published, error)
}

// Outcome of one attempt, for metrics.
type Outcome string

const (
	Delivered   Outcome = "delivered"   // the receiver accepted it
	Retried     Outcome = "retried"     // retryable failure: tried again later
	DeadLetter  Outcome = "dead_letter" // permanent failure: dead-lettered and terminated
	Skipped     Outcome = "skipped"     // not for this destination (priority filter)
	Redelivered Outcome = "redelivered" // delivered, but JetStream had handed it out before: a possible duplicate at the receiver
	TickFailed  Outcome = "tick_failed" // a periodic re-send failed
)

// Observer receives every outcome (the daemon counts them in Prometheus).
// It is called from the delivery goroutines and must not block.
type Observer interface {
	Delivery(destination string, o Outcome)
}

// NamePattern is what a destination name may look like: it becomes part
// of a consumer name and a subject.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)

// Default names of the active-alerts bucket and the dead-letter stream.
const (
	DefaultActiveBucket     = "TRIAGED_ALERTS_ACTIVE"
	DefaultDeadLetterStream = "TRIAGED_DELIVER_DEAD"
)

// Options configure the engine. Zero values take the defaults noted.
type Options struct {
	Prefix string // subject prefix (triaged)
	Stream string // the alerts stream (TRIAGED_ALERTS)
	// ActiveBucket is the KV bucket of active alerts
	// (TRIAGED_ALERTS_ACTIVE); DeadLetterStream stores
	// <prefix>.deliver.dead.> (TRIAGED_DELIVER_DEAD).
	ActiveBucket     string
	DeadLetterStream string
	DeadLetterMaxAge time.Duration // 30 days
	// ActiveMaxAge bounds how long an alert stays in the active set
	// without an acknowledgement or TTL (30 days, the alert stream's
	// default max_age): the set must not grow for ever.
	ActiveMaxAge time.Duration
	Replicas     int // of the bucket and dead-letter stream (1)
	// ManageStreams creates or updates the bucket and the dead-letter
	// stream; false only looks them up (they must exist).
	ManageStreams bool
	// TriageKey keys the triage ID (HMAC-SHA256): required.
	TriageKey []byte
	// TTL ends alerts no one acknowledged after this long (0: never); it
	// needs Acks.
	TTL  time.Duration
	Acks AckPublisher
	// Backfill: a destination's consumer created for the first time starts
	// with the alerts stored this long ago (1h), not the stream's whole
	// history (a new pager must not ring for last month's films).
	Backfill time.Duration
	// AckWait is how long a message handed out stays with this daemon
	// without a sign of life before JetStream gives it to another (30s).
	AckWait time.Duration
	// Batch bounds the messages taken and ordered at once (256): a backlog up to this size goes out strictly by priority then age.
	Batch int
	// MinBackoff and MaxBackoff bound the retry delay (1s, 1m).
	MinBackoff, MaxBackoff time.Duration
	// StatsEvery is how often backlog figures are refreshed (5s).
	StatsEvery time.Duration
	Log        zerolog.Logger
	Observer   Observer
}

func (o *Options) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defd := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Prefix, "triaged")
	def(&o.Stream, "TRIAGED_ALERTS")
	def(&o.ActiveBucket, DefaultActiveBucket)
	def(&o.DeadLetterStream, DefaultDeadLetterStream)
	defd(&o.DeadLetterMaxAge, 30*24*time.Hour)
	defd(&o.ActiveMaxAge, 30*24*time.Hour)
	defd(&o.Backfill, time.Hour)
	defd(&o.AckWait, 30*time.Second)
	defd(&o.MinBackoff, time.Second)
	defd(&o.MaxBackoff, time.Minute)
	defd(&o.StatsEvery, 5*time.Second)
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Batch < 1 {
		o.Batch = 256
	}
}

// Engine runs every destination's delivery loop.
type Engine struct {
	js    jetstream.JetStream
	opts  Options
	dests []*destState
	log   zerolog.Logger

	active  *ActiveSet
	tracker jetstream.Consumer
	ready   chan struct{} // closed once the set-up is done

	mu       sync.Mutex
	setupErr error
}

func (e *Engine) setSetupErr(err error) {
	e.mu.Lock()
	e.setupErr = err
	e.mu.Unlock()
}

// destState is one destination and what is known about it.
type destState struct {
	d       Destination
	filter  Filter
	durable string
	cons    jetstream.Consumer

	delivered, retries, dead, skipped, redelivered, tickFailed atomic.Uint64

	failing Failing

	mu      sync.Mutex
	pending uint64
	oldest  time.Duration
}

// New checks the options and destinations; Run does the I/O.
func New(js jetstream.JetStream, opts Options, dests ...Destination) (*Engine, error) {
	opts.defaults()
	if len(opts.TriageKey) < 16 {
		return nil, errors.New("deliver: the triage ID key must be at least 16 bytes")
	}
	if opts.TTL > 0 && opts.Acks == nil {
		return nil, errors.New("deliver: a TTL needs an acknowledgement publisher")
	}
	e := &Engine{js: js, opts: opts, log: opts.Log.With().Str("component", "deliver").Logger(), ready: make(chan struct{})}
	seen := map[string]bool{}
	for _, d := range dests {
		n := d.Name()
		if !NamePattern.MatchString(n) {
			return nil, fmt.Errorf("deliver: destination name %q must match %s", n, NamePattern)
		}
		if seen[n] {
			return nil, fmt.Errorf("deliver: destination %q is listed twice", n)
		}
		seen[n] = true
		s := &destState{d: d, durable: "triaged-deliver-" + n}
		if f, ok := d.(Filterer); ok {
			s.filter = f.Filter()
		}
		for _, p := range s.filter.Priorities {
			if rank(p) < 0 {
				return nil, fmt.Errorf("deliver: destination %q: unknown priority %q", n, p)
			}
		}
		e.dests = append(e.dests, s)
	}
	return e, nil
}

// subjects a destination's consumer filters on.
func (e *Engine) subjects(f Filter) []string {
	var out []string
	for _, p := range Priorities {
		if f.takes(p) {
			out = append(out, e.subject(publish.SubjectAlert+"."+p))
		}
	}
	out = append(out, e.subject(publish.SubjectAck))
	if f.Updates {
		out = append(out, e.subject(publish.SubjectUpdate))
	}
	return out
}

func (e *Engine) subject(s string) string { return e.opts.Prefix + "." + s }

// DeadLetterSubject is where a destination's refused messages go.
func DeadLetterSubject(prefix, destination string) string {
	return prefix + ".deliver.dead." + destination
}

// OpenActive opens the active-alerts bucket (for operator tools).
func OpenActive(ctx context.Context, js jetstream.JetStream, bucket string) (*ActiveSet, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("active alerts bucket %s: %w", bucket, err)
	}
	return &ActiveSet{kv: kv}, nil
}

// setup creates (or finds) the bucket, the dead-letter stream and the
// consumers.
func (e *Engine) setup(ctx context.Context) error {
	o := e.opts
	if o.ManageStreams {
		kv, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: o.ActiveBucket, Description: "triaged: alerts not yet acknowledged", Replicas: o.Replicas,
			Storage: jetstream.FileStorage, History: 1, TTL: o.ActiveMaxAge,
		})
		if err != nil {
			return fmt.Errorf("create active alerts bucket %s: %w", o.ActiveBucket, err)
		}
		e.active = &ActiveSet{kv: kv}
		if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: o.DeadLetterStream, Description: "triaged: alerts a destination refused",
			Subjects: []string{DeadLetterSubject(o.Prefix, ">")}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, MaxAge: o.DeadLetterMaxAge, Duplicates: 24 * time.Hour,
		}); err != nil {
			return fmt.Errorf("create dead-letter stream %s: %w", o.DeadLetterStream, err)
		}
	} else {
		a, err := OpenActive(ctx, e.js, o.ActiveBucket)
		if err != nil {
			return err
		}
		e.active = a
		if _, err := e.js.Stream(ctx, o.DeadLetterStream); err != nil {
			return fmt.Errorf("dead-letter stream %s (nats.manage_streams is off, so it must exist): %w", o.DeadLetterStream, err)
		}
	}
	for _, s := range e.dests {
		c, err := e.consumer(ctx, s.durable, "triaged delivery to "+s.d.Name(), e.subjects(s.filter), max(1000, 4*e.opts.Batch))
		if err != nil {
			return err
		}
		s.cons = c
	}
	// One message in flight across the fleet: an alert and its
	// acknowledgement taken by two daemons at once could be applied in the
	// wrong order and leave a resolved alert active.
	t, err := e.consumer(ctx, "triaged-deliver-active", "triaged active alerts (TTL, re-sends, triage IDs)",
		e.subjects(Filter{}), 1)
	if err != nil {
		return err
	}
	e.tracker = t
	return nil
}

// consumer creates or updates a durable consumer. Its start point is fixed
// at creation (Backfill); an update keeps it, as JetStream requires.
func (e *Engine) consumer(ctx context.Context, durable, desc string, subjects []string, maxAckPending int) (jetstream.Consumer, error) {
	start := time.Now().Add(-e.opts.Backfill)
	return DurableConsumer(ctx, e.js, e.opts.Stream, jetstream.ConsumerConfig{
		Durable: durable, Description: desc, FilterSubjects: subjects,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: e.opts.AckWait, MaxDeliver: -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
}

// Run delivers until ctx ends; call it once. It returns an error only if
// the set-up (bucket, dead-letter stream, consumers) still fails after
// about a minute of retries; after that, failures are retried forever.
// Messages in hand when ctx ends are handed back (Nak) for another daemon,
// and Run returns once every goroutine it started has stopped.
func (e *Engine) Run(ctx context.Context) error {
	// A cluster electing leaders, or daemons of a fleet creating the same
	// bucket at once, time out for a while.
	for attempt := 1; ; attempt++ {
		err := e.setup(ctx)
		e.setSetupErr(err)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 12 {
			return err
		}
		e.log.Warn().Err(err).Int("attempt", attempt).Msg("delivery set-up failed; retrying")
		Sleep(ctx, 5*time.Second)
	}
	close(e.ready)
	var wg sync.WaitGroup
	wg.Go(func() { e.track(ctx, e.tracker) })
	for _, s := range e.dests {
		wg.Go(func() { e.deliverLoop(ctx, s) })
		if p, ok := s.d.(Periodic); ok && p.Interval() > 0 {
			wg.Go(func() { e.periodic(ctx, s, p) })
		}
	}
	wg.Go(func() { e.statsLoop(ctx) })
	wg.Wait()
	return nil
}

// fetch waits (up to a few seconds) for one message, then takes whatever
// else is available at once, so a backlog is ordered as a whole.
func (e *Engine) fetch(ctx context.Context, c jetstream.Consumer) []jetstream.Msg {
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = max(time.Until(dl), 10*time.Millisecond)
	}
	fctx, cancel := context.WithTimeout(ctx, wait)
	first, err := c.Next(jetstream.FetchContext(fctx))
	cancel()
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			e.log.Warn().Err(err).Msg("fetch from the alerts stream failed; retrying")
			Sleep(ctx, time.Second)
		}
		return nil
	}
	msgs := []jetstream.Msg{first}
	if e.opts.Batch > 1 {
		if b, err := c.FetchNoWait(e.opts.Batch - 1); err == nil {
			for m := range b.Messages() {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs
}

// held is a message taken from the consumer and what it decoded to.
type held struct {
	m   jetstream.Msg
	md  *jetstream.MsgMetadata
	ev  *Event
	err error // undecodable
}

func (h *held) seq() uint64 {
	if h.md == nil {
		return 0
	}
	return h.md.Sequence.Stream
}

func (e *Engine) decode(msgs []jetstream.Msg) []*held {
	out := make([]*held, 0, len(msgs))
	for _, m := range msgs {
		h := &held{m: m}
		h.md, _ = m.Metadata()
		h.ev, h.err = DecodeEvent(e.opts.Prefix, m.Subject(), m.Data(), e.opts.TriageKey)
		if h.ev != nil && h.md != nil {
			h.ev.Seq, h.ev.Stored, h.ev.Redelivered = h.md.Sequence.Stream, h.md.Timestamp, h.md.NumDelivered > 1
		}
		out = append(out, h)
	}
	// Critical first, then stream order; undecodable ones first of all, to
	// get them out of the way.
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := -1, -1
		if out[i].ev != nil {
			ri = rank(out[i].ev.Priority)
		}
		if out[j].ev != nil {
			rj = rank(out[j].ev.Priority)
		}
		if ri != rj {
			return ri < rj
		}
		return out[i].seq() < out[j].seq()
	})
	return out
}

// deliverLoop is one destination's delivery.
func (e *Engine) deliverLoop(ctx context.Context, s *destState) {
	log := e.log.With().Str("destination", s.d.Name()).Logger()
	for ctx.Err() == nil {
		msgs := e.fetch(ctx, s.cons)
		if len(msgs) == 0 {
			continue
		}
		if pause := e.deliverBatch(ctx, s, log, e.decode(msgs)); pause > 0 {
			// Let the delays of the messages handed back run out together,
			// so they come back as one batch to be ordered.
			Sleep(ctx, pause+50*time.Millisecond)
		}
	}
}

// deliverBatch sends a batch in order. It returns how long to pause after
// a retryable failure.
func (e *Engine) deliverBatch(ctx context.Context, s *destState, log zerolog.Logger, batch []*held) time.Duration {
	// Keep every message in hand alive while sends are in flight.
	var mu sync.Mutex
	next := 0
	stop := make(chan struct{})
	var keep sync.WaitGroup
	keep.Go(func() {
		t := time.NewTicker(max(e.opts.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				for _, h := range batch[next:] {
					_ = h.m.InProgress()
				}
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); keep.Wait() }()
	advance := func(i int) { mu.Lock(); next = i + 1; mu.Unlock() }
	// release hands the rest back; the keep-alive stops touching them first,
	// or an InProgress would stretch their delay to a whole AckWait.
	release := func(i int, delay time.Duration) {
		mu.Lock()
		next = len(batch)
		mu.Unlock()
		e.handBack(batch[i:], delay)
	}

	for i, h := range batch {
		if ctx.Err() != nil {
			release(i, 0)
			return 0
		}
		if h.err != nil {
			log.Error().Err(h.err).Uint64("seq", h.seq()).Msg("undecodable message on the alerts stream: dead-lettered")
			if err := e.deadLetter(ctx, s, h, &SendError{Err: h.err}); err != nil {
				log.Error().Err(err).Msg("dead letter not stored; the message will be tried again")
				release(i, e.opts.MinBackoff)
				return e.opts.MinBackoff
			}
			_ = h.m.Term()
			s.count(e, DeadLetter)
			advance(i)
			continue
		}
		ev := h.ev
		if (ev.Kind == KindUpdate && !s.filter.Updates) || !s.filter.takes(ev.Priority) {
			_ = h.m.Ack()
			s.count(e, Skipped)
			advance(i)
			continue
		}
		if ev.Kind == KindAck {
			// Drop it from the active set before the resolve goes out, so no
			// periodic re-send fires the alert again after it.
			if err := e.active.Resolve(ctx, ev.TriageID); err != nil {
				log.Warn().Err(err).Str("triage_id", ev.TriageID).Msg("active alert not removed; the tracker will")
			}
		}
		err := s.d.Send(ctx, ev)
		if err == nil {
			// Not ctx: a shutdown right after the receiver accepted must
			// still record it, or the alert goes out twice.
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			aerr := h.m.DoubleAck(actx)
			cancel()
			if aerr != nil {
				log.Warn().Err(aerr).Str("triage_id", ev.TriageID).Msg("delivered, but the acknowledgement was not confirmed: it may be delivered again")
			}
			s.ok()
			if ev.Redelivered {
				s.count(e, Redelivered)
			}
			s.count(e, Delivered)
			log.Debug().Str("triage_id", ev.TriageID).Str("kind", string(ev.Kind)).Uint64("seq", ev.Seq).Msg("delivered")
			advance(i)
			continue
		}
		se := classify(err)
		if ctx.Err() != nil {
			release(i, 0)
			return 0
		}
		if !se.Retryable {
			log.Error().Int("status", se.Status).Str("triage_id", ev.TriageID).Str("kind", string(ev.Kind)).
				Str("response", se.Body).Msg("destination refused the message: dead-lettered")
			if derr := e.deadLetter(ctx, s, h, se); derr != nil {
				log.Error().Err(derr).Msg("dead letter not stored; the message will be tried again")
				release(i, e.opts.MinBackoff)
				return e.opts.MinBackoff
			}
			_ = h.m.Term()
			s.count(e, DeadLetter)
			advance(i)
			continue
		}
		// The longer of the message's own attempts (fleet-wide) and this
		// destination's failures in a row: a message that arrived during a
		// long outage must not bring the probing back to MinBackoff.
		attempt := s.fail(se)
		if h.md != nil {
			attempt = max(attempt, h.md.NumDelivered)
		}
		wait := e.backoff(attempt, se.RetryAfter)
		s.count(e, Retried)
		log.Warn().Err(se).Int("status", se.Status).Uint64("attempt", attempt).Dur("retry_in", wait).
			Int("held", len(batch)-i).Msg("delivery failed; retrying")
		release(i, wait)
		return wait
	}
	return 0
}

// handBack returns messages to JetStream to be delivered again after delay
// (0: at once, to any daemon).
func (e *Engine) handBack(hs []*held, delay time.Duration) {
	for _, h := range hs {
		if delay > 0 {
			_ = h.m.NakWithDelay(delay)
		} else {
			_ = h.m.Nak()
		}
	}
}

// backoff is the delay before attempt+1 (Backoff with the options').
func (e *Engine) backoff(attempt uint64, retryAfter time.Duration) time.Duration {
	return Backoff(attempt, e.opts.MinBackoff, e.opts.MaxBackoff, retryAfter)
}

// DeadLetterSchema is the schema of dead-letter messages.
const DeadLetterSchema = "triaged.deliver-dead/v1"

// DeadLetterMsg is stored on <prefix>.deliver.dead.<destination>.
type DeadLetterMsg struct {
	Schema      string    `json:"schema"`
	Destination string    `json:"destination"`
	Status      int       `json:"status,omitempty"`
	Error       string    `json:"error"`
	Response    string    `json:"response,omitempty"` // excerpt, at most 512 bytes
	Subject     string    `json:"subject"`
	StreamSeq   uint64    `json:"stream_seq"`
	MessageID   string    `json:"message_id,omitempty"`
	TriageID    string    `json:"triage_id,omitempty"`
	At          time.Time `json:"at"`
	Message     []byte    `json:"message"` // the original message (base64 in JSON)
}

func (e *Engine) deadLetter(ctx context.Context, s *destState, h *held, se *SendError) error {
	d := DeadLetterMsg{Schema: DeadLetterSchema, Destination: s.d.Name(), Status: se.Status, Error: se.Error(),
		Response: se.Body, Subject: h.m.Subject(), StreamSeq: h.seq(), At: time.Now().UTC(), Message: h.m.Data()}
	id := "seq:" + strconv.FormatUint(h.seq(), 10)
	if h.ev != nil {
		d.MessageID, d.TriageID, id = h.ev.ID, h.ev.TriageID, h.ev.ID
	}
	data, err := publish.Encode(d)
	if err != nil {
		return err
	}
	m := nats.NewMsg(DeadLetterSubject(e.opts.Prefix, s.d.Name()))
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, "dead:"+s.d.Name()+":"+id)
	m.Header.Set("Triaged-Schema", DeadLetterSchema)
	if se.Status != 0 {
		m.Header.Set("Triaged-Status", strconv.Itoa(se.Status))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(pctx, m); err != nil {
		return fmt.Errorf("publish dead letter for %s: %w", s.d.Name(), err)
	}
	return nil
}

// track keeps the active set: alerts in, acknowledged ones out, in stream
// order; and ends alerts past their TTL.
func (e *Engine) track(ctx context.Context, c jetstream.Consumer) {
	var sweepEvery time.Duration
	if e.opts.TTL > 0 {
		sweepEvery = min(max(e.opts.TTL/20, 100*time.Millisecond), time.Minute)
	}
	lastSweep := time.Now()
	for ctx.Err() == nil {
		if sweepEvery > 0 && time.Since(lastSweep) >= sweepEvery {
			e.sweep(ctx)
			lastSweep = time.Now()
		}
		fctx := ctx
		var cancel context.CancelFunc = func() {}
		if sweepEvery > 0 {
			fctx, cancel = context.WithTimeout(ctx, sweepEvery)
		}
		msgs := e.fetch(fctx, c)
		cancel()
		for i, m := range msgs {
			if err := e.trackOne(ctx, m); err != nil {
				if ctx.Err() == nil {
					e.log.Warn().Err(err).Msg("active alert set not updated; retrying")
				}
				e.handBack(e.decode(msgs[i:]), e.opts.MinBackoff)
				Sleep(ctx, e.opts.MinBackoff)
				break
			}
			_ = m.Ack()
		}
	}
}

func (e *Engine) trackOne(ctx context.Context, m jetstream.Msg) error {
	ev, err := DecodeEvent(e.opts.Prefix, m.Subject(), m.Data(), e.opts.TriageKey)
	if err != nil {
		return nil // the destinations dead-letter it; nothing to track
	}
	switch ev.Kind {
	case KindAlert:
		a := Active{TriageID: ev.TriageID, AlertID: ev.AlertID, Priority: ev.Priority, ModelSet: ev.ModelSet, Alert: m.Data()}
		if md, err := m.Metadata(); err == nil {
			a.Seq, a.Since = md.Sequence.Stream, md.Timestamp
		}
		return e.active.Put(ctx, a)
	case KindAck:
		return e.active.Resolve(ctx, ev.TriageID)
	}
	return nil
}

// sweep acknowledges, on behalf of the TTL, alerts active for longer. Every
// daemon may sweep: the acknowledgement's message ID makes it one.
func (e *Engine) sweep(ctx context.Context) {
	list, err := e.active.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn().Err(err).Msg("TTL sweep: active alerts not listed")
		}
		return
	}
	for _, a := range list {
		if a.Since.IsZero() || time.Since(a.Since) < e.opts.TTL {
			continue
		}
		ack := &publish.Ack{AlertID: a.AlertID, By: "triaged", Via: "ttl",
			Note: "not acknowledged within " + e.opts.TTL.String()}
		if _, err := e.opts.Acks.PublishAck(ctx, ack); err != nil {
			e.log.Warn().Err(err).Str("triage_id", a.TriageID).Msg("TTL acknowledgement not stored; retrying at the next sweep")
			continue
		}
		_ = e.active.Resolve(ctx, a.TriageID)
		e.log.Info().Str("triage_id", a.TriageID).Dur("ttl", e.opts.TTL).Msg("alert ended by its time to live")
	}
}

// periodic calls a destination's Tick with the active alerts it takes,
// once per interval across the fleet.
func (e *Engine) periodic(ctx context.Context, s *destState, p Periodic) {
	every := p.Interval()
	t := time.NewTicker(every)
	defer t.Stop()
	local, _ := s.d.(LocalPeriodic)
	for {
		if local != nil {
			lctx, cancel := context.WithTimeout(ctx, every)
			if err := local.LocalTick(lctx); err != nil && ctx.Err() == nil {
				s.count(e, TickFailed)
				e.log.Warn().Err(err).Str("destination", s.d.Name()).Msg("periodic send of this daemon's health failed")
			}
			cancel()
		}
		if won, err := e.active.claim(ctx, "tick."+s.d.Name(), every, time.Now()); err != nil {
			if ctx.Err() == nil {
				e.log.Warn().Err(err).Str("destination", s.d.Name()).Msg("periodic re-send: claim failed")
			}
		} else if won {
			if err := e.tick(ctx, s, p); err != nil && ctx.Err() == nil {
				s.count(e, TickFailed)
				e.log.Warn().Err(err).Str("destination", s.d.Name()).Msg("periodic re-send failed")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) tick(ctx context.Context, s *destState, p Periodic) error {
	list, err := e.active.List(ctx)
	if err != nil {
		return err
	}
	list = slices.DeleteFunc(list, func(a Active) bool { return !s.filter.takes(a.Priority) })
	sort.Slice(list, func(i, j int) bool {
		if ri, rj := rank(list[i].Priority), rank(list[j].Priority); ri != rj {
			return ri < rj
		}
		return list[i].Seq < list[j].Seq
	})
	tctx, cancel := context.WithTimeout(ctx, p.Interval())
	defer cancel()
	return p.Tick(tctx, list)
}

func (s *destState) count(e *Engine, o Outcome) {
	switch o {
	case Delivered:
		s.delivered.Add(1)
	case Retried:
		s.retries.Add(1)
	case DeadLetter:
		s.dead.Add(1)
	case Skipped:
		s.skipped.Add(1)
	case Redelivered:
		s.redelivered.Add(1)
	case TickFailed:
		s.tickFailed.Add(1)
	}
	if e.opts.Observer != nil {
		e.opts.Observer.Delivery(s.d.Name(), o)
	}
}

func (s *destState) ok() { s.failing.OK() }

// fail records a retryable failure and returns how many in a row.
func (s *destState) fail(se *SendError) uint64 { return s.failing.Fail(se) }

// Stats is one destination's figures.
type Stats struct {
	Destination string
	Delivered   uint64 // accepted by the receiver
	Retries     uint64 // retryable failures
	DeadLetters uint64
	Skipped     uint64 // not for this destination
	// Redelivered counts deliveries of messages JetStream had handed out
	// before (after a retry, or a daemon's death): only those after a
	// death or a timeout may have reached the receiver twice, which its
	// idempotency key tells.
	Redelivered  uint64
	TickFailures uint64 // periodic re-sends that failed
	// Pending is what the consumer has not had acknowledged yet; Oldest the
	// age of the oldest of it (refreshed every Options.StatsEvery).
	Pending      uint64
	Oldest       time.Duration
	FailingSince time.Time // zero while the last attempt succeeded
	LastError    string
}

// Stats returns every destination's figures without doing any I/O.
func (e *Engine) Stats() []Stats {
	out := make([]Stats, 0, len(e.dests))
	for _, s := range e.dests {
		since, last := s.failing.State()
		s.mu.Lock()
		st := Stats{Destination: s.d.Name(), Delivered: s.delivered.Load(), Retries: s.retries.Load(),
			DeadLetters: s.dead.Load(), Skipped: s.skipped.Load(), Redelivered: s.redelivered.Load(), TickFailures: s.tickFailed.Load(),
			Pending: s.pending, Oldest: s.oldest, FailingSince: since, LastError: last}
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Ready is closed once Run has set up the bucket, the dead-letter stream
// and the consumers, and deliveries have started.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Health is nil while every destination's last attempt succeeded, else an
// error naming the failing ones (for /readyz).
func (e *Engine) Health() error {
	var bad []string
	e.mu.Lock()
	if e.setupErr != nil {
		bad = append(bad, "set-up: "+e.setupErr.Error())
	}
	e.mu.Unlock()
	for _, st := range e.Stats() {
		if !st.FailingSince.IsZero() {
			bad = append(bad, fmt.Sprintf("%s failing for %s: %s", st.Destination, time.Since(st.FailingSince).Round(time.Second), st.LastError))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("deliveries failing: %s", strings.Join(bad, "; "))
	}
	return nil
}

func (e *Engine) statsLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.StatsEvery)
	defer t.Stop()
	for {
		for _, s := range e.dests {
			e.refresh(ctx, s)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh reads a consumer's backlog and the age of its oldest message not
// yet acknowledged: the first message above the ack floor on a subject the
// consumer takes.
func (e *Engine) refresh(ctx context.Context, s *destState) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.cons.Info(rctx)
	if err != nil {
		return
	}
	pending := info.NumPending + uint64(info.NumAckPending)
	var oldest time.Duration
	if pending > 0 {
		if st, err := e.js.Stream(rctx, e.opts.Stream); err == nil {
			subs := e.subjects(s.filter)
			seq := info.AckFloor.Stream + 1
			for range 64 {
				m, err := st.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(e.subject(publish.SubjectAlert+".>")))
				if err != nil {
					break
				}
				if slices.Contains(subs, m.Subject) {
					oldest = time.Since(m.Time)
					break
				}
				seq = m.Sequence + 1
			}
		}
	}
	s.mu.Lock()
	s.pending, s.oldest = pending, oldest
	s.mu.Unlock()
}
