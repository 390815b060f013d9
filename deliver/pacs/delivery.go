package pacs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// Sender stores one film's objects at a PACS.
type Sender interface {
	// Name is unique among the deliveries (deliver.NamePattern) and names
	// the durable consumer and the dead-letter subject.
	Name() string
	// Send returns nil once the PACS accepted every object; else an error,
	// a *deliver.SendError saying whether to retry (any other error is
	// retried). Send is called from one goroutine at a time.
	Send(ctx context.Context, objs []resultobj.Object) error
	// EndBurst is called when the messages at hand are done: a C-STORE
	// sender releases its association.
	EndBurst()
	// Priorities the destination takes (empty: all).
	Priorities() []string
}

// Options configure the deliveries. Zero values take the defaults noted.
type Options struct {
	Prefix string // subject prefix (triaged)
	Stream string // the result objects stream (record.DefaultStream)
	// DeadLetterStream stores <prefix>.deliver.dead.> (the alert
	// deliveries' stream, deliver.DefaultDeadLetterStream).
	DeadLetterStream string
	DeadLetterMaxAge time.Duration // 30 days
	Replicas         int           // of the dead-letter stream (1)
	ManageStreams    bool          // create the dead-letter stream; false: it must exist
	// Backfill: a consumer created for the first time starts with the
	// objects stored this long ago (1h).
	Backfill time.Duration
	// AckWait: a message handed out stays with this daemon this long
	// without a sign of life (30s).
	AckWait time.Duration
	// Batch bounds the messages taken at once, one burst (64).
	Batch int
	// MinBackoff, MaxBackoff bound the retry delay (1s, 1m).
	MinBackoff, MaxBackoff time.Duration
	// RefusalRetries: a refused film is tried this many more times before
	// it is dead-lettered (3; -1: dead-letter at once).
	RefusalRetries int
	Log            zerolog.Logger
	Observer       deliver.Observer // may be nil
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = "triaged"
	}
	if o.Stream == "" {
		o.Stream = record.DefaultStream
	}
	if o.DeadLetterStream == "" {
		o.DeadLetterStream = deliver.DefaultDeadLetterStream
	}
	for _, x := range []struct {
		d *time.Duration
		v time.Duration
	}{{&o.DeadLetterMaxAge, 30 * 24 * time.Hour}, {&o.Backfill, time.Hour}, {&o.AckWait, 30 * time.Second},
		{&o.MinBackoff, time.Second}, {&o.MaxBackoff, time.Minute}} {
		if *x.d <= 0 {
			*x.d = x.v
		}
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Batch < 1 {
		o.Batch = 64
	}
	if o.RefusalRetries == 0 {
		o.RefusalRetries = 3
	} else if o.RefusalRetries < 0 {
		o.RefusalRetries = 0
	}
}

// Delivery runs every PACS destination's consumer loop.
type Delivery struct {
	js    jetstream.JetStream
	opts  Options
	dests []*dest
	log   zerolog.Logger
	ready chan struct{}
}

type dest struct {
	s       Sender
	durable string
	cons    jetstream.Consumer

	delivered, retries, dead, redelivered atomic.Uint64

	failing deliver.Failing
}

// New checks the options and senders; Run does the I/O.
func New(js jetstream.JetStream, o Options, senders ...Sender) (*Delivery, error) {
	o.defaults()
	d := &Delivery{js: js, opts: o, log: o.Log.With().Str("component", "deliver-pacs").Logger(), ready: make(chan struct{})}
	seen := map[string]bool{}
	for _, s := range senders {
		n := s.Name()
		if !deliver.NamePattern.MatchString(n) {
			return nil, fmt.Errorf("pacs: destination name %q must match %s", n, deliver.NamePattern)
		}
		if seen[n] {
			return nil, fmt.Errorf("pacs: destination %q is listed twice", n)
		}
		seen[n] = true
		for _, p := range s.Priorities() {
			if p != "critical" && p != "urgent" && p != "routine" {
				return nil, fmt.Errorf("pacs: destination %q: unknown priority %q", n, p)
			}
		}
		d.dests = append(d.dests, &dest{s: s, durable: "triaged-deliver-" + n})
	}
	return d, nil
}

// Ready is closed once the consumers are set up.
func (d *Delivery) Ready() <-chan struct{} { return d.ready }

func (d *Delivery) subjects(s Sender) []string {
	if len(s.Priorities()) == 0 {
		return []string{record.SubjectFilter(d.opts.Prefix)}
	}
	var out []string
	for _, p := range s.Priorities() {
		out = append(out, d.opts.Prefix+"."+record.Subject+"."+p)
	}
	return out
}

func (d *Delivery) setup(ctx context.Context) error {
	o := d.opts
	if o.ManageStreams {
		// The same stream, configured the same way, as the alert
		// deliveries' (deliver.Engine): whichever starts first creates it.
		if _, err := d.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: o.DeadLetterStream, Description: "triaged: alerts a destination refused",
			Subjects: []string{deliver.DeadLetterSubject(o.Prefix, ">")}, Storage: jetstream.FileStorage,
			Replicas: o.Replicas, MaxAge: o.DeadLetterMaxAge, Duplicates: 24 * time.Hour,
		}); err != nil {
			return fmt.Errorf("create dead-letter stream %s: %w", o.DeadLetterStream, err)
		}
	} else if _, err := d.js.Stream(ctx, o.DeadLetterStream); err != nil {
		return fmt.Errorf("dead-letter stream %s (nats.manage_streams is off, so it must exist): %w", o.DeadLetterStream, err)
	}
	for _, s := range d.dests {
		c, err := d.consumer(ctx, s)
		if err != nil {
			return err
		}
		s.cons = c
	}
	return nil
}

// consumer creates or updates a destination's durable consumer; its start
// point is fixed at creation (Backfill).
func (d *Delivery) consumer(ctx context.Context, s *dest) (jetstream.Consumer, error) {
	start := time.Now().Add(-d.opts.Backfill)
	return deliver.DurableConsumer(ctx, d.js, d.opts.Stream, jetstream.ConsumerConfig{
		Durable: s.durable, Description: "triaged result objects to PACS " + s.s.Name(), FilterSubjects: d.subjects(s.s),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: d.opts.AckWait, MaxDeliver: -1,
		MaxAckPending: max(1000, 4*d.opts.Batch), DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
}

// Run delivers until ctx ends; call it once. It returns an error only if
// the set-up still fails after about a minute; messages in hand when ctx
// ends are handed back for another daemon.
func (d *Delivery) Run(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := d.setup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 12 {
			return err
		}
		d.log.Warn().Err(err).Int("attempt", attempt).Msg("PACS delivery set-up failed; retrying")
		deliver.Sleep(ctx, 5*time.Second)
	}
	close(d.ready)
	var wg sync.WaitGroup
	for _, s := range d.dests {
		wg.Go(func() { d.loop(ctx, s) })
	}
	wg.Wait()
	return nil
}

func (d *Delivery) loop(ctx context.Context, s *dest) {
	log := d.log.With().Str("destination", s.s.Name()).Logger()
	defer s.s.EndBurst()
	for ctx.Err() == nil {
		msgs := d.fetch(ctx, s.cons, log)
		if len(msgs) == 0 {
			continue
		}
		pause := d.deliverBatch(ctx, s, log, msgs)
		s.s.EndBurst() // the burst is over: release the association
		if pause > 0 {
			deliver.Sleep(ctx, pause+50*time.Millisecond)
		}
	}
}

// fetch waits (a few seconds) for one message, then takes what else is
// available at once: one burst.
func (d *Delivery) fetch(ctx context.Context, c jetstream.Consumer, log zerolog.Logger) []jetstream.Msg {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	first, err := c.Next(jetstream.FetchContext(fctx))
	cancel()
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			log.Warn().Err(err).Msg("fetch from the result objects stream failed; retrying")
			deliver.Sleep(ctx, time.Second)
		}
		return nil
	}
	msgs := []jetstream.Msg{first}
	if d.opts.Batch > 1 {
		if b, err := c.FetchNoWait(d.opts.Batch - 1); err == nil {
			for m := range b.Messages() {
				msgs = append(msgs, m)
			}
		}
	}
	// Critical first, then urgent, then routine; stream order within.
	rank := func(m jetstream.Msg) int {
		switch m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:] {
		case "critical":
			return 0
		case "urgent":
			return 1
		}
		return 2
	}
	sort.SliceStable(msgs, func(i, j int) bool { return rank(msgs[i]) < rank(msgs[j]) })
	return msgs
}

// deliverBatch sends a burst in order and returns how long to pause after
// a retryable failure.
func (d *Delivery) deliverBatch(ctx context.Context, s *dest, log zerolog.Logger, batch []jetstream.Msg) time.Duration {
	var mu sync.Mutex
	next := 0
	stop := make(chan struct{})
	var keep sync.WaitGroup
	keep.Go(func() { // keep every message in hand alive while sends are in flight
		t := time.NewTicker(max(d.opts.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				for _, m := range batch[next:] {
					_ = m.InProgress()
				}
				mu.Unlock()
			}
		}
	})
	defer func() { close(stop); keep.Wait() }()
	advance := func(i int) { mu.Lock(); next = i + 1; mu.Unlock() }
	release := func(i int, delay time.Duration) {
		mu.Lock()
		next = len(batch)
		mu.Unlock()
		for _, m := range batch[i:] {
			if delay > 0 {
				_ = m.NakWithDelay(delay)
			} else {
				_ = m.Nak()
			}
		}
	}
	for i, m := range batch {
		if ctx.Err() != nil {
			release(i, 0)
			return 0
		}
		md, _ := m.Metadata()
		var numDelivered uint64 = 1
		if md != nil {
			numDelivered = md.NumDelivered
		}
		rm, err := record.Decode(m.Data())
		var objs []resultobj.Object
		if err == nil {
			objs, err = record.Fetch(ctx, d.js, rm)
			if err != nil && !errors.Is(err, record.ErrGone) {
				err = deliver.Retry(err) // NATS away: retried like a PACS away
			}
		}
		if err == nil {
			err = s.s.Send(ctx, objs)
		}
		if err == nil {
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if aerr := m.DoubleAck(actx); aerr != nil {
				log.Warn().Err(aerr).Msg("delivered, but the acknowledgement was not confirmed: the objects may be sent again (same SOP Instance UIDs)")
			}
			cancel()
			s.ok()
			if numDelivered > 1 {
				d.count(s, deliver.Redelivered)
			}
			d.count(s, deliver.Delivered)
			log.Debug().Int("objects", len(objs)).Uint64("seq", seq(md)).Msg("result objects delivered")
			advance(i)
			continue
		}
		if ctx.Err() != nil {
			release(i, 0)
			return 0
		}
		se := classify(err)
		if !se.Retryable {
			if numDelivered <= uint64(d.opts.RefusalRetries) {
				wait := d.backoff(numDelivered, 0)
				d.count(s, deliver.Retried)
				log.Warn().Err(se).Uint64("attempt", numDelivered).Dur("retry_in", wait).Msg("PACS refused the result objects; retrying before dead-lettering them")
				_ = m.NakWithDelay(wait)
				advance(i)
				continue
			}
			log.Error().Err(se).Uint64("attempts", numDelivered).Str("response", se.Body).Msg("PACS refused the result objects: dead-lettered")
			if derr := d.deadLetter(ctx, s, m, md, rm, se); derr != nil {
				log.Error().Err(derr).Msg("dead letter not stored; the message will be tried again")
				release(i, d.opts.MinBackoff)
				return d.opts.MinBackoff
			}
			_ = m.Term()
			d.count(s, deliver.DeadLetter)
			advance(i)
			continue
		}
		attempt := max(s.fail(se), numDelivered)
		wait := d.backoff(attempt, se.RetryAfter)
		d.count(s, deliver.Retried)
		log.Warn().Err(se).Uint64("attempt", attempt).Dur("retry_in", wait).Int("held", len(batch)-i).Msg("PACS delivery failed; retrying")
		release(i, wait)
		return wait
	}
	return 0
}

func seq(md *jetstream.MsgMetadata) uint64 {
	if md == nil {
		return 0
	}
	return md.Sequence.Stream
}

// classify: an error that is not a SendError is retried, because losing
// a result to an unexpected error is worse than sending it again.
func classify(err error) *deliver.SendError {
	var se *deliver.SendError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, record.ErrGone) {
		return &deliver.SendError{Err: err}
	}
	var de interface{ Retryable() bool }
	if errors.As(err, &de) && !de.Retryable() {
		return &deliver.SendError{Err: err}
	}
	return &deliver.SendError{Retryable: true, Err: err}
}

// backoff is the delay before attempt+1; the PACS's Retry-After wins
// when longer.
func (d *Delivery) backoff(attempt uint64, retryAfter time.Duration) time.Duration {
	return deliver.Backoff(attempt, d.opts.MinBackoff, d.opts.MaxBackoff, retryAfter)
}

func (d *Delivery) deadLetter(ctx context.Context, s *dest, m jetstream.Msg, md *jetstream.MsgMetadata, rm *record.Message, se *deliver.SendError) error {
	dl := deliver.DeadLetterMsg{Schema: deliver.DeadLetterSchema, Destination: s.s.Name(), Status: se.Status, Error: se.Error(),
		Response: se.Body, Subject: m.Subject(), StreamSeq: seq(md), At: time.Now().UTC(), Message: m.Data()}
	id := "seq:" + strconv.FormatUint(seq(md), 10)
	if rm != nil {
		dl.MessageID, id = rm.MessageID, rm.MessageID
	}
	data, err := publish.Encode(dl)
	if err != nil {
		return err
	}
	nm := nats.NewMsg(deliver.DeadLetterSubject(d.opts.Prefix, s.s.Name()))
	nm.Data = data
	nm.Header.Set(nats.MsgIdHdr, "dead:"+s.s.Name()+":"+id)
	nm.Header.Set("Triaged-Schema", deliver.DeadLetterSchema)
	if se.Status != 0 {
		nm.Header.Set("Triaged-Status", strconv.Itoa(se.Status))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.js.PublishMsg(pctx, nm); err != nil {
		return fmt.Errorf("publish dead letter for %s: %w", s.s.Name(), err)
	}
	return nil
}

func (d *Delivery) count(s *dest, o deliver.Outcome) {
	switch o {
	case deliver.Delivered:
		s.delivered.Add(1)
	case deliver.Retried:
		s.retries.Add(1)
	case deliver.DeadLetter:
		s.dead.Add(1)
	case deliver.Redelivered:
		s.redelivered.Add(1)
	}
	if d.opts.Observer != nil {
		d.opts.Observer.Delivery(s.s.Name(), o)
	}
}

func (s *dest) ok() { s.failing.OK() }

func (s *dest) fail(se *deliver.SendError) uint64 { return s.failing.Fail(se) }

// Stats returns every destination's figures without I/O (Pending and
// Oldest are not tracked here).
func (d *Delivery) Stats() []deliver.Stats {
	out := make([]deliver.Stats, 0, len(d.dests))
	for _, s := range d.dests {
		since, last := s.failing.State()
		out = append(out, deliver.Stats{Destination: s.s.Name(), Delivered: s.delivered.Load(), Retries: s.retries.Load(),
			DeadLetters: s.dead.Load(), Redelivered: s.redelivered.Load(), FailingSince: since, LastError: last})
	}
	return out
}

// Health is nil while every destination's last attempt succeeded.
func (d *Delivery) Health() error {
	var bad []string
	for _, st := range d.Stats() {
		if !st.FailingSince.IsZero() {
			bad = append(bad, fmt.Sprintf("%s failing for %s: %s", st.Destination, time.Since(st.FailingSince).Round(time.Second), st.LastError))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("PACS deliveries failing: %s", strings.Join(bad, "; "))
	}
	return nil
}
