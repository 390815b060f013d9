package daemon

import (
	"context"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// heatmapper makes the heatmaps attached to alerts and stores them in the
// attachment bucket. The CAM comes out of the scoring pass and is rendered
// inline; occlusion maps are made by one background worker (they are
// CPU-bound: running several at once would only slow every film down), so
// an alert waits for one at most its priority's budget. A map that misses
// its budget follows the alert as an update, and the film is acknowledged
// only once that update is stored: the alert promised it
// (pending_attachments), so it is an output the film owes.
type heatmapper struct {
	cfg    config.Heatmap
	render heatmap.RenderOptions
	occ    heatmap.Occlusion
	att    *publish.Attachments
	queue  chan *occlusionJob
	slots  chan struct{}  // one per occlusion map queued or in progress
	late   sync.WaitGroup // films waiting for a late occlusion map
	worker sync.WaitGroup
	cancel context.CancelFunc

	mu  sync.Mutex
	avg time.Duration // moving average of one occlusion map's time
}

type occlusionJob struct {
	x      []float32
	models []heatmap.ModelRunner
	done   chan struct{}
	queued time.Time
	m      *heatmap.Map
	err    error
	// release gives back the reference on the engine whose sessions models
	// use: a model swap must not close them under a queued job.
	release func()
}

func (j *occlusionJob) finish() {
	close(j.done)
	if j.release != nil {
		j.release()
	}
}

// filmHeatmaps is what a positive film got: stored attachments, and the
// occlusion map still being made, if any.
type filmHeatmaps struct {
	late    *occlusionJob
	display *image.Gray
	filmW   int // the film's own size (display may be shrunk)
	filmH   int
	crop    preprocess.Crop
	key     string // object name prefix of the film's attachments
	inline  bool   // an occlusion map was attached to the alert itself
	// camOverlay is the CAM overlay PNG, for the result objects' SC.
	camOverlay []byte
}

func newHeatmapper(ctx context.Context, cfg *config.Config, pub *publish.Publisher) (*heatmapper, error) {
	hc := cfg.Heatmap
	if !hc.Enabled {
		return nil, nil
	}
	ro, occ, err := provision.Heatmap(hc)
	if err != nil {
		return nil, err
	}
	h := &heatmapper{
		cfg:    hc,
		render: ro,
		occ:    occ,
		queue:  make(chan *occlusionJob, hc.Occlusion.MaxPending),
		slots:  make(chan struct{}, hc.Occlusion.MaxPending),
	}
	h.att, err = pub.EnsureBucket(ctx, provision.HeatmapBucket(hc))
	if err != nil {
		return nil, err
	}
	return h, nil
}

// start runs the occlusion worker until stop.
func (h *heatmapper) start(ctx context.Context) {
	ctx, h.cancel = context.WithCancel(ctx)
	h.worker.Add(1)
	go func() {
		defer h.worker.Done()
		h.run(ctx)
	}()
}

// stop ends the occlusion worker and waits for it: its ONNX Runtime call
// must be over before the sessions are closed.
func (h *heatmapper) stop() {
	h.cancel()
	h.worker.Wait()
}

// run makes occlusion maps, one at a time, until ctx ends.
func (h *heatmapper) run(ctx context.Context) {
	for {
		select {
		case j := <-h.queue:
			t0 := time.Now()
			j.m, j.err = h.occ.Occlude(ctx, j.models, j.x)
			if j.err == nil {
				h.observe(time.Since(t0))
			}
			<-h.slots
			j.finish()
		case <-ctx.Done():
			for {
				select {
				case j := <-h.queue:
					j.err = ctx.Err()
					<-h.slots
					j.finish()
				default:
					return
				}
			}
		}
	}
}

// observe keeps a moving average of how long one occlusion map takes.
func (h *heatmapper) observe(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.avg == 0 {
		h.avg = d
	} else {
		h.avg = (3*h.avg + d) / 4
	}
}

// expected is when a map submitted now, with ahead maps queued or in
// progress including itself, should be ready; 0 before any map was made.
func (h *heatmapper) expected(ahead int) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.avg * time.Duration(ahead)
}

// submit queues an occlusion map unless max_pending maps already are.
func (h *heatmapper) submit(j *occlusionJob) bool {
	select {
	case h.slots <- struct{}{}:
		h.queue <- j // cannot block: the queue holds as many as there are slots
		return true
	default:
		return false
	}
}

// heatmaps attaches a positive film's heatmaps to its result r: the CAM
// always, the occlusion map if its priority has a budget and it is ready in
// time (else r says it is pending). Heatmaps that cannot be made are noted
// in r, never fail the film; an error means ctx ended while storing them.
func (d *Daemon) heatmaps(ctx context.Context, log zerolog.Logger, eng *triage.Engine, a *film.Analysis, r *publish.Result) (*filmHeatmaps, error) {
	h := d.heat
	if h == nil || !a.Priority.Positive() || a.Display == nil || r.Shadow {
		return nil, nil
	}
	t0 := time.Now()
	defer func() { a.Timings.HeatmapMS = ms(time.Since(t0)) }()
	fh := &filmHeatmaps{display: a.Display, filmW: a.Header.Columns, filmH: a.Header.Rows, crop: a.Input.Crop,
		key: publish.AttachmentKey(publish.ResultID(r.Film.SOPInstanceUID, r.ModelSet))}

	// Occlusion first, so it runs while the CAM is rendered and stored.
	var job *occlusionJob
	var ahead int // occlusion maps queued or in progress, this one included
	budget := h.cfg.Occlusion.Budget.For(string(a.Priority))
	if budget.On() {
		job = &occlusionJob{x: make([]float32, preprocess.TensorLen), done: make(chan struct{}), queued: time.Now()}
		preprocess.Tensor(a.Input.Gray, job.x)
		job.models = heatmap.Runners(eng, a.Result)
		job.release = d.retainEngine(eng)
		ahead = len(h.slots) + 1
		if !h.submit(job) {
			job.release()
			r.HeatmapNotes = append(r.HeatmapNotes, fmt.Sprintf("occlusion skipped: %d occlusion maps already pending (heatmap.occlusion.max_pending)", cap(h.slots)))
			job = nil
		}
	}

	if cam, err := heatmap.ResultCAM(a.Result); err != nil {
		log.Warn().Err(err).Msg("no class activation map for this alert")
		r.HeatmapNotes = append(r.HeatmapNotes, "class activation map unavailable: "+err.Error())
	} else if err := d.attach(ctx, log, fh, cam, &r.Attachments, &r.HeatmapNotes); err != nil {
		return nil, err
	}

	if job == nil {
		return fh, nil
	}
	pending := func() (*filmHeatmaps, error) {
		fh.late = job
		// Only the overlay's resolution is needed later; a film of up to
		// decode.max_pixels must not wait in memory for its update.
		fh.display = heatmap.Shrink(fh.display, h.render.MaxSide)
		r.PendingAttachments = append(r.PendingAttachments, heatmap.MethodOcclusion)
		return fh, nil
	}
	if budget == 0 {
		return pending() // a zero budget always sends the map as an update
	}
	if est := h.expected(ahead); est > time.Duration(budget) {
		// The last maps say this one cannot make it (a CPU, a backlog):
		// do not hold the alert for a budget it cannot use.
		return pending()
	}
	wait := time.NewTimer(time.Duration(budget) - time.Since(t0))
	defer wait.Stop()
	select {
	case <-job.done: // a map that is ready goes with the alert even if the budget is spent
	default:
		select {
		case <-job.done:
		case <-wait.C:
			return pending()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if job.err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.Warn().Err(job.err).Msg("occlusion heatmap failed")
		r.HeatmapNotes = append(r.HeatmapNotes, "occlusion failed: "+job.err.Error())
		return fh, nil
	}
	if err := d.attach(ctx, log, fh, job.m, &r.Attachments, &r.HeatmapNotes); err != nil {
		return nil, err
	}
	fh.inline = true
	return fh, nil
}

// attach renders and stores a map, adding its attachments to atts, or a
// note saying why it could not be rendered. The only error is ctx ending
// while NATS is away.
func (d *Daemon) attach(ctx context.Context, log zerolog.Logger, fh *filmHeatmaps, m *heatmap.Map, atts *[]publish.Attachment, notes *[]string) error {
	as, err := d.storeHeatmap(ctx, fh, m)
	switch {
	case err == nil:
		*atts = append(*atts, as...)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		log.Warn().Err(err).Str("method", m.Method).Msg("heatmap not rendered")
		*notes = append(*notes, m.Method+" heatmap not rendered: "+err.Error())
	}
	return nil
}

// storeHeatmap renders a map (overlay PNG and raw .npy) and stores both,
// retrying while NATS is away.
func (d *Daemon) storeHeatmap(ctx context.Context, fh *filmHeatmaps, m *heatmap.Map) ([]publish.Attachment, error) {
	img, err := heatmap.Render(fh.display, fh.crop, m, d.heat.render)
	if err != nil {
		return nil, err
	}
	png, err := heatmap.EncodePNG(img)
	if err != nil {
		return nil, err
	}
	raw, err := heatmap.Raw(m)
	if err != nil {
		return nil, err
	}
	win := heatmap.CropWindow(fh.filmW, fh.filmH, fh.crop)
	crop := &publish.CropWindow{X: win.X, Y: win.Y, W: win.W, H: win.H}
	var out []publish.Attachment
	for _, o := range []struct {
		kind, ext, ct string
		data          []byte
	}{{"overlay", "png", "image/png", png}, {"raw", "npy", heatmap.RawContentType, raw}} {
		name := fmt.Sprintf("%s/%s-%s.%s", fh.key, m.Method, o.kind, o.ext)
		var a publish.Attachment
		err := d.durably(ctx, "store heatmap", func(ctx context.Context) error {
			var err error
			a, err = d.heat.att.Put(ctx, name, o.ct, o.data)
			return err
		})
		if err != nil {
			return nil, err
		}
		a.Kind, a.Method, a.Model, a.Crop = o.kind, m.Method, m.Model, crop
		if o.kind == "overlay" && m.Method == heatmap.MethodCAM && d.objs != nil {
			fh.camOverlay = o.data
		}
		if o.kind == "raw" {
			a.Unit = m.Unit
		}
		out = append(out, a)
	}
	return out, nil
}

// settleHeatmaps runs after the alert is stored. It reports whether the
// film is now owned by a late update (or was released), in which case the
// caller must not acknowledge it.
func (d *Daemon) settleHeatmaps(ctx context.Context, log zerolog.Logger, it ingest.Film, r *publish.Result, fh *filmHeatmaps, alertDup bool) bool {
	if fh == nil {
		return false
	}
	if fh.late != nil {
		d.heat.late.Add(1)
		go func() {
			defer d.heat.late.Done()
			d.lateOcclusion(ctx, log, it, r, fh)
		}()
		return true
	}
	if fh.inline && alertDup {
		// This film was processed before (a crash or a resend): the stored
		// alert may have promised the occlusion map as an update, so send
		// one. Its message ID keeps it from being stored twice.
		var occ []publish.Attachment
		for _, a := range r.Attachments {
			if a.Method == heatmap.MethodOcclusion {
				occ = append(occ, a)
			}
		}
		if err := d.publishUpdate(ctx, r, occ, nil, 0); err != nil {
			it.Release(0)
			return true
		}
	}
	return false
}

// lateOcclusion waits for a film's occlusion map, stores it, publishes the
// alert's update and only then acknowledges the film. If the daemon stops
// first the film is released: the next start processes it again, the
// alert deduplicates and the update is sent then.
func (d *Daemon) lateOcclusion(ctx context.Context, log zerolog.Logger, it ingest.Film, r *publish.Result, fh *filmHeatmaps) {
	t0 := time.Now()
	select {
	case <-fh.late.done:
	case <-ctx.Done():
		it.Release(0)
		return
	}
	var atts []publish.Attachment
	var notes []string
	if err := fh.late.err; err != nil {
		if ctx.Err() != nil {
			it.Release(0)
			return
		}
		log.Warn().Err(err).Msg("occlusion heatmap failed")
		notes = append(notes, "occlusion failed: "+err.Error())
	} else if err := d.attach(ctx, log, fh, fh.late.m, &atts, &notes); err != nil {
		it.Release(0)
		return
	}
	fh.display = nil
	if err := d.publishUpdate(ctx, r, atts, notes, ms(time.Since(fh.late.queued))); err != nil {
		it.Release(0)
		return
	}
	if err := it.Ack(); err != nil {
		log.Error().Err(err).Msg("update stored but the input could not be acknowledged; it will be processed again and deduplicated")
		return
	}
	log.Info().Str("priority", r.Priority).Float64("after_alert_ms", ms(time.Since(t0))).Float64("heatmap_ms", ms(time.Since(fh.late.queued))).
		Msg("occlusion heatmap sent as an alert update")
}

func (d *Daemon) publishUpdate(ctx context.Context, r *publish.Result, atts []publish.Attachment, notes []string, heatMS float64) error {
	alertID := publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, r.Priority)
	u := &publish.Update{
		Schema: publish.UpdateSchema, Kind: "update", MessageID: publish.UpdateID(alertID, heatmap.MethodOcclusion), AlertID: alertID,
		Source: r.Source, Film: r.Film, Score: r.Score, Priority: r.Priority, ModelSet: r.ModelSet,
		Attachments: atts, Notes: notes, HeatmapMS: heatMS, At: time.Now().UTC(), Daemon: d.version, Host: d.host,
	}
	return d.durably(ctx, "publish alert update", func(ctx context.Context) error {
		_, err := d.pub.PublishUpdate(ctx, u)
		return err
	})
}
