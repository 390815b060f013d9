package daemon

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/metrics"
	"github.com/triaged/triaged/triage"
)

// service is what running as a system service adds to the pipeline:
// progress tracking for the watchdog, readiness, metrics, reference-counted
// engines and reloadable sources. It is one field of Daemon so the wiring in
// daemon.go stays small.
type service struct {
	progress progress
	engines  engineSet
	srcs     sourceSet
	metrics  *metrics.Metrics
	// current is the configuration in force: the start-up one, then each
	// reload's.
	current  atomic.Pointer[config.Config]
	stall    atomic.Int64 // pipeline.stall_timeout, reloadable
	stopping atomic.Bool
	reloadMu sync.Mutex
	settle   unsettled
}

// unsettled remembers films whose output is stored but whose input could
// not be ended (a move to done/ or failed/ failed: disk full, a folder
// removed). Each is released and retried with backoff; the oldest shows in
// /readyz and the metrics, so a stuck film is never invisible.
type unsettled struct {
	mu    sync.Mutex
	films map[string]*unsettledFilm
}

type unsettledFilm struct {
	since    time.Time
	attempts int
	err      string
}

// failed records a failure to settle a film and returns the delay before
// the next attempt.
func (u *unsettled) failed(id string, err error) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.films == nil {
		u.films = map[string]*unsettledFilm{}
	}
	f := u.films[id]
	if f == nil {
		f = &unsettledFilm{since: time.Now()}
		u.films[id] = f
	}
	f.attempts++
	f.err = err.Error()
	return min(time.Second<<min(f.attempts, 7), 2*time.Minute)
}

func (u *unsettled) settled(id string) {
	u.mu.Lock()
	delete(u.films, id)
	u.mu.Unlock()
}

// oldest reports how many films are unsettled, the oldest one's age and
// its last error.
func (u *unsettled) oldest(now time.Time) (int, time.Duration, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var age time.Duration
	var why string
	for _, f := range u.films {
		if a := now.Sub(f.since); a > age {
			age, why = a, f.err
		}
	}
	return len(u.films), age, why
}

// unsettledLimit is how long a film may stay unsettled before the daemon
// says it is not ready.
const unsettledLimit = time.Minute

// initService runs at the end of New, once the engine is loaded.
func (d *Daemon) initService() {
	d.svc.current.Store(d.cfg)
	d.svc.stall.Store(int64(d.cfg.Pipeline.StallTimeout))
	d.svc.metrics = metrics.New(d.version, metrics.Gauges{
		QueueDepth:      func() float64 { return float64(d.q.len()) },
		QueueCapacity:   func() float64 { return float64(d.cfg.Pipeline.QueueCapacity) },
		InFlight:        func() float64 { return float64(d.svc.progress.inFlight()) },
		Workers:         func() float64 { return float64(d.workers) },
		NATSConnected:   func() bool { return d.natsState != nil && d.natsState.Connected() },
		Ready:           func() bool { return len(d.Readiness()) == 0 },
		Wedged:          d.Wedged,
		QuarantineFiles: d.quarantineFiles,
		UnclaimedFiles: func() map[string]int {
			out := map[string]int{}
			for _, f := range d.svc.srcs.runningFolders() {
				out[f.Path()] = f.Unclaimed()
			}
			return out
		},
		Unsettled: func() float64 {
			n, _, _ := d.svc.settle.oldest(time.Now())
			return float64(n)
		},
		OldestUnsettled: func() float64 {
			_, age, _ := d.svc.settle.oldest(time.Now())
			return age.Seconds()
		},
	})
	d.modelsInForce(d.engine.Load())
}

// Metrics are the daemon's Prometheus collectors.
func (d *Daemon) Metrics() *metrics.Metrics { return d.svc.metrics }

// Readiness lists why the daemon is not ready; none means ready: models
// loaded and streams verified (New), the start-up scan of every source done,
// NATS connected, and not shutting down.
func (d *Daemon) Readiness() []string {
	var why []string
	select {
	case <-d.Ready:
	default:
		why = append(why, "starting: the start-up scan of the sources is not finished")
	}
	if d.svc.stopping.Load() {
		why = append(why, "stopping: intake is closed and films in flight are draining")
	}
	if d.natsState == nil || !d.natsState.Connected() {
		why = append(why, "NATS is disconnected: results cannot be stored, so intake is paused")
	}
	if d.engine.Load() == nil {
		why = append(why, "no models loaded")
	}
	if n, age, err := d.svc.settle.oldest(time.Now()); age > unsettledLimit {
		why = append(why, fmt.Sprintf("%d film(s) scored but not settled for %s (moving to done/ or failed/ fails: %s); retried with backoff", n, age.Round(time.Second), err))
	}
	why = append(why, d.diskReasons()...)
	if d.deliveries != nil {
		if err := d.deliveries.Health(); err != nil {
			why = append(why, "deliveries failing: "+err.Error())
		}
	}
	if d.pacs != nil {
		if err := d.pacs.Health(); err != nil {
			why = append(why, err.Error())
		}
	}
	return why
}

// Health lists why the process is unhealthy; none means healthy. Waiting
// for NATS is not unhealthy (a restart would not bring NATS back); a
// pipeline that has films and makes no progress is.
func (d *Daemon) Health() []string {
	n, idle, wedged := d.svc.progress.stalled(time.Now(), d.stallTimeout())
	if !wedged {
		return nil
	}
	return []string{fmt.Sprintf("pipeline wedged: %d films in flight and no progress for %s (pipeline.stall_timeout %s)",
		n, idle.Round(time.Second), d.stallTimeout())}
}

// Wedged reports whether the pipeline has work and has made no progress
// for pipeline.stall_timeout. The systemd watchdog is fed only while it is
// false.
func (d *Daemon) Wedged() bool {
	_, _, w := d.svc.progress.stalled(time.Now(), d.stallTimeout())
	return w
}

func (d *Daemon) stallTimeout() time.Duration { return time.Duration(d.svc.stall.Load()) }

// retrying notes a failed attempt to store a message that will be retried:
// the film is waiting on NATS, which is progress of a kind (the watchdog
// must not restart a daemon that is merely waiting for NATS).
func (d *Daemon) retrying(what string) {
	d.svc.progress.beat()
	if d.svc.metrics != nil {
		// "publish result" -> "result": a bounded label from code literals.
		d.svc.metrics.PublishRetry(strings.ReplaceAll(strings.TrimPrefix(what, "publish "), " ", "_"))
	}
}

// beginStop marks the daemon as stopping (not ready) and closes the source
// set to additions by a late reload.
func (d *Daemon) beginStop() {
	d.svc.stopping.Store(true)
	d.svc.srcs.close()
}

// quarantineFiles counts the films in each running folder's quarantine.
func (d *Daemon) quarantineFiles() map[string]int {
	out := map[string]int{}
	for _, fs := range d.svc.srcs.runningFolders() {
		ents, err := os.ReadDir(fs.FailedDir())
		if err != nil {
			continue
		}
		n := 0
		for _, e := range ents {
			if e.Type().IsRegular() && !isReasonFile(e.Name()) {
				n++
			}
		}
		out[fs.Path()] = n
	}
	return out
}

func isReasonFile(n string) bool {
	const s = ".reason.json"
	return len(n) >= len(s) && n[len(n)-len(s):] == s
}

// progress tracks films in flight and the last time the pipeline moved.
type progress struct {
	mu        sync.Mutex
	n         int       // films claimed and not yet finished
	busySince time.Time // when n last went from 0 to 1
	last      time.Time // last film finished, or publish attempt
}

func (p *progress) start() {
	p.mu.Lock()
	if p.n == 0 {
		p.busySince = time.Now()
	}
	p.n++
	p.mu.Unlock()
}

func (p *progress) finish() {
	p.mu.Lock()
	p.n--
	p.last = time.Now()
	p.mu.Unlock()
}

func (p *progress) beat() {
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
}

func (p *progress) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// stalled: films in flight and nothing moved for longer than timeout since
// the later of the last progress and the moment work arrived (an idle
// pipeline is healthy, and work arriving after a long idle spell is not a
// stall).
func (p *progress) stalled(now time.Time, timeout time.Duration) (int, time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 || timeout <= 0 {
		return p.n, 0, false
	}
	since := p.busySince
	if p.last.After(since) {
		since = p.last
	}
	idle := now.Sub(since)
	return p.n, idle, idle > timeout
}

// trackedItem counts a film in flight from its claim until exactly one of
// Ack, Quarantine or Release ends it, and records its outcome.
type trackedItem struct {
	ingest.Film
	d            *Daemon
	kind, source string
	once         sync.Once
}

func (d *Daemon) track(it ingest.Film) ingest.Film {
	o := it.Origin()
	d.svc.progress.start()
	return &trackedItem{Film: it, d: d, kind: o.Kind, source: o.Name}
}

func (t *trackedItem) end(outcome string) {
	t.once.Do(func() {
		t.d.svc.progress.finish()
		if m := t.d.svc.metrics; m != nil {
			m.FilmDone(t.kind, t.source, outcome)
		}
	})
}

// Ack ends the film; if the intake cannot (the move to done/ fails), the
// film is released and retried with backoff: its result is stored, so the
// retry is deduplicated and only the acknowledgement is repeated.
func (t *trackedItem) Ack() error {
	err := t.Film.Ack()
	if err != nil {
		t.unsettled(err)
		return err
	}
	t.d.svc.settle.settled(t.ID())
	t.end("acked")
	return nil
}

// Quarantine ends the film aside; a failure (the reason file cannot be
// written) releases it for a retry like Ack.
func (t *trackedItem) Quarantine(code, reason string) error {
	err := t.Film.Quarantine(code, reason)
	if err != nil {
		t.unsettled(err)
		return err
	}
	t.d.svc.settle.settled(t.ID())
	if t.d.svc.metrics != nil {
		t.d.svc.metrics.Quarantined(t.kind, t.source, code)
	}
	t.end("quarantined")
	return nil
}

func (t *trackedItem) unsettled(err error) {
	delay := t.d.svc.settle.failed(t.ID(), err)
	t.Film.Release(delay)
	t.end("released")
}

// Failed ends a film the daemon tried and failed to process: it counts
// toward the intake's attempts where the intake keeps them.
func (t *trackedItem) Failed(after time.Duration) {
	if f, ok := t.Film.(ingest.Failer); ok {
		f.Failed(after)
	} else {
		t.Film.Release(after)
	}
	t.end("released")
}

func (t *trackedItem) Release(after time.Duration) {
	t.Film.Release(after)
	t.end("released")
}

// Engine is the scoring engine in force.
func (d *Daemon) Engine() *triage.Engine { return d.engine.Load() }

// ReadyDetails lists the models in force and the execution provider each
// runs on (/readyz prints them after "ready"): a GPU host that fell back
// to the CPU shows it here, not only in the log.
func (d *Daemon) ReadyDetails() []string {
	e := d.engine.Load()
	if e == nil {
		return nil
	}
	out := make([]string, 0, len(e.Models))
	for _, m := range e.Models {
		out = append(out, fmt.Sprintf("model %s %s: %s (onnxruntime.device %s)", m.Manifest.Name, m.Manifest.Version, m.Provider, d.svc.current.Load().ONNXRuntime.Device))
	}
	return out
}
