package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/drift"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// job is an admitted film waiting for (or in) a worker.
type job struct {
	item    ingest.Film
	header  *decode.Header
	stat    bool
	seq     uint64
	claimed time.Time
}

// admit reads a film's header (cheap: no pixel data), quarantines what is
// not a readable DICOM film, skips what the routing filter turns away, and
// queues the rest by priority.
func (d *Daemon) admit(intake, work context.Context, it ingest.Film) {
	claimed := time.Now()
	if g := crashGuard(it); g != nil && g.Crashes() >= d.cfg.Pipeline.PoisonAfter {
		d.quarantine(work, it, nil, "poison_film", fmt.Sprintf(
			"the daemon died %d times while decoding this film (pipeline.poison_after %d); it is not decoded again", g.Crashes(), d.cfg.Pipeline.PoisonAfter))
		return
	}
	rc, size, err := it.Open()
	if err != nil {
		if ingest.Transient(err) {
			d.log.Warn().Str("film_id", it.ID()).Err(err).Msg("cannot read the film now; it will be retried")
			it.Release(time.Second)
			return
		}
		d.quarantine(work, it, nil, ingest.CodeOf(err), err.Error())
		return
	}
	h, err := decode.ReadHeader(rc, size, d.limits)
	rc.Close()
	if err != nil {
		d.quarantine(work, it, nil, string(decode.CodeOf(err)), decode.Reason(err))
		return
	}
	if !d.routeOrCheck(work, it, h) {
		return
	}
	j := &job{item: it, header: h, claimed: claimed, stat: triage.IsStat(h.Priority) || triage.IsStat(it.PriorityHint())}
	if err := d.q.push(intake, j); err != nil {
		it.Release(0)
	}
}

// process takes one admitted film to a durable result and acknowledges it.
func (d *Daemon) process(ctx context.Context, j *job) {
	it := j.item
	log := d.log.With().Str("film_id", it.ID()).Logger()
	if p := d.pseudonym(j.header.SOPInstanceUID); p != "" {
		log = log.With().Str("pseudo_id", p).Logger()
	}
	queued := ms(time.Since(j.claimed))

	// Decoding runs C codecs, whose crash Go cannot recover: mark the film
	// durably first, so a film that kills the daemon every time is
	// quarantined after pipeline.poison_after starts instead of crash-looping.
	// A film already in flight at a crash is decoded alone, so a second
	// crash names it unambiguously and the films that merely shared the
	// first one are not blamed.
	guard := crashGuard(it)
	suspect := guard != nil && guard.Crashes() > 0
	if suspect {
		log.Warn().Int("crashes", guard.Crashes()).Msg("the daemon died while decoding this film before; decoding it alone")
		d.decodeMu.Lock()
	} else {
		d.decodeMu.RLock()
	}
	unlock := sync.OnceFunc(func() {
		if suspect {
			d.decodeMu.Unlock()
		} else {
			d.decodeMu.RUnlock()
		}
	})
	endDecode := func() {
		if guard != nil {
			guard.EndDecode()
			guard = nil
		}
		unlock()
	}
	defer endDecode()
	if guard != nil {
		if err := guard.BeginDecode(); err != nil {
			log.Warn().Err(err).Msg("cannot mark the film before decoding; it is retried")
			endDecode()
			it.Release(5 * time.Second)
			return
		}
	}
	if d.beforeProcess != nil {
		d.beforeProcess(ctx, it)
	}

	rc, size, err := it.Open()
	if err != nil {
		if ingest.Transient(err) {
			log.Warn().Err(err).Msg("cannot read the film now; it will be retried")
			it.Release(time.Second)
			return
		}
		d.quarantine(ctx, it, j.header, ingest.CodeOf(err), err.Error())
		return
	}
	requested := j.header.Priority
	if hint := it.PriorityHint(); triage.IsStat(hint) {
		requested = hint
	}
	// The engine is held until the film is done, so a reload that swaps in
	// new models closes the old ones only after this film.
	eng, release := d.acquireEngine()
	defer release()
	// Decoded, then through the input-quality gate, then scored (quality.go).
	a, err := film.Decode(ctx, rc, size, d.limits)
	rc.Close()
	var sample drift.Sample
	ds := d.driftFor(eng)
	if err == nil {
		sample = sampleOf(a, drift.Measure(a.Display))
		if code, detail := assess(d.cfg.Quality, a.Header, sample.Stats, ds.inputs); code != "" {
			endDecode()
			if d.notAssessable(ctx, log, j, a, eng, code, detail) {
				d.observeInputs(log, ds, sample, nil)
			}
			return
		}
		err = a.Score(ctx, eng, requested)
	}
	endDecode()
	if err != nil {
		var de *decode.Error
		if errors.As(err, &de) {
			d.quarantine(ctx, it, j.header, string(de.Code), decode.Reason(err))
			return
		}
		if ctx.Err() == nil {
			log.Error().Err(err).Msg("scoring failed; the film will be retried")
		}
		if f, ok := it.(ingest.Failer); ok && ctx.Err() == nil {
			f.Failed(5 * time.Second) // a genuine attempt: it counts
		} else {
			it.Release(5 * time.Second)
		}
		return
	}
	prio := a.Priority
	r := a.Message(eng, it.Origin(), d.version, d.host)
	if r.Film.SOPInstanceUID == "" {
		// Without an instance UID, deduplicate on the film ID, which is stable
		// across restarts.
		r.Film.SOPInstanceUID = "film-" + it.ID()
	}
	// shadow.all: the result is stored without alert or heatmap (shadow.go).
	d.shadowLive(r)
	heat, err := d.heatmaps(ctx, log, eng, a, r) // positive films: stored before the alert names them
	a.Display = nil                              // the full-size film is not needed past this point
	if err != nil {
		it.Release(0) // shutting down: the next start processes it again
		return
	}
	t := a.Timings
	t.QueueMS = queued
	t.TotalMS = ms(time.Since(j.claimed))
	r.Timings = t

	var pubs []publish.Published
	pubStart := time.Now()
	err = d.durably(ctx, "publish result", func(ctx context.Context) error {
		var err error
		pubs, err = d.pub.PublishResult(ctx, r, prio.Positive())
		return err
	})
	if err != nil {
		it.Release(0) // shutting down: the next start processes it again
		return
	}
	dup := len(pubs) > 0 && pubs[len(pubs)-1].Duplicate
	// The candidate model set, if any, after the live result is stored and
	// before the film is acknowledged; it never fails the film (shadow.go).
	d.scoreCandidate(ctx, log, a, r, requested)
	// The DICOM result objects (SR, CAM image) into the record before the Ack.
	if err := d.storeResultObjects(ctx, log, it, r, heat); err != nil {
		it.Release(0) // shutting down: the next start processes it again
		return
	}
	// A film owed a late occlusion map is acknowledged once that is stored.
	owed := d.settleHeatmaps(ctx, log, it, r, heat, len(pubs) > 1 && pubs[0].Duplicate)
	if !owed {
		if err := it.Ack(); err != nil {
			log.Error().Err(err).Msg("result stored but the input could not be acknowledged; it is retried with backoff (the repeat is deduplicated)")
			return
		}
	}
	d.observeResult(a, r, dup, time.Since(pubStart))
	d.observeInputs(log, ds, sample, a.Result)
	log.Info().Str("priority", r.Priority).Float64("score", r.Score).Str("model_set", r.ModelSet).
		Float64("total_ms", ms(time.Since(j.claimed))).Int("batch", t.BatchSize).Bool("duplicate", dup).
		Bool("heatmap_pending", owed).Msg("film scored")
}

// quarantine publishes an error event and then moves the film aside. The
// reason strings come from the decoder and never carry attribute values.
func (d *Daemon) quarantine(ctx context.Context, it ingest.Film, h *decode.Header, code, reason string) {
	ev := &publish.Event{
		Schema:    publish.EventSchema,
		Kind:      "error",
		MessageID: it.ID() + ":error:" + code,
		Source:    it.Origin(),
		Code:      code,
		Reason:    reason,
		At:        time.Now().UTC(),
		Daemon:    d.version,
		Host:      d.host,
	}
	if h != nil {
		f := film.Of(h)
		ev.Film = &f
	}
	if err := d.durably(ctx, "publish error event", func(ctx context.Context) error {
		_, err := d.pub.PublishEvent(ctx, ev)
		return err
	}); err != nil {
		it.Release(0)
		return
	}
	if err := it.Quarantine(code, reason); err != nil {
		d.log.Error().Str("film_id", it.ID()).Err(err).Msg("cannot quarantine film; it is retried with backoff")
		return
	}
	d.log.Warn().Str("film_id", it.ID()).Str("code", code).Str("reason", reason).Msg("film quarantined")
}

// durably retries fn with backoff until it succeeds or ctx ends: while NATS
// is away, workers wait here, the queue fills and intake pauses.
func (d *Daemon) durably(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		d.noteStore(err)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.retrying(what)
		if attempt == 1 || attempt%10 == 0 {
			d.log.Warn().Err(err).Int("attempt", attempt).Msgf("%s failed; retrying", what)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// crashGuard is the film's intake's crash guard, if it has one.
func crashGuard(it ingest.Film) ingest.CrashGuard {
	if t, ok := it.(*trackedItem); ok {
		it = t.Film
	}
	g, _ := it.(ingest.CrashGuard)
	return g
}
