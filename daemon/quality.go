package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/deliver/alertmanager"
	"github.com/triaged/triaged/drift"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// Reason codes of the input-quality gate (publish.Result.NotAssessable and
// the reason label of triaged_films_not_assessable_total).
const (
	ReasonBlank              = "blank"
	ReasonUniform            = "uniform"
	ReasonTooSmall           = "too_small"
	ReasonOutsideCalibration = "outside_calibration"
)

// assess is the input-quality gate: why a decoded film cannot be assessed
// by the models ("" when it can). A blank 64x64 film once scored 0.883 and
// raised critical alerts: a model says something about any pixels, so the
// pixels are checked before it is asked. inputs is the calibration profile
// (nil: the outside_calibration check is off). The detail carries only
// numbers.
func assess(q config.Quality, h *decode.Header, st drift.Stats, inputs *drift.Profile) (code, detail string) {
	if !q.Enabled {
		return "", ""
	}
	if q.MinSize > 0 && (h.Rows < q.MinSize || h.Columns < q.MinSize) {
		return ReasonTooSmall, fmt.Sprintf("film is %dx%d, below quality.min_size %d", h.Columns, h.Rows, q.MinSize)
	}
	if st.Levels <= 1 {
		return ReasonBlank, fmt.Sprintf("display image is a single gray level (%.0f)", st.Mean)
	}
	if q.MinLevels > 0 && st.Levels < q.MinLevels {
		return ReasonUniform, fmt.Sprintf("display image uses %d gray levels, below quality.min_levels %d", st.Levels, q.MinLevels)
	}
	if q.MinSpread > 0 && st.Spread < q.MinSpread {
		return ReasonUniform, fmt.Sprintf("display image spread %.2f gray levels, below quality.min_spread %g", st.Spread, q.MinSpread)
	}
	if q.CalibrationMargin > 0 && inputs != nil {
		for _, c := range []struct {
			name string
			v    float64
		}{{drift.SignalMean, st.Mean}, {drift.SignalSpread, st.Spread}} {
			hist := inputs.Numeric[c.name]
			if hist == nil {
				continue
			}
			if c.v < hist.Min-q.CalibrationMargin || c.v > hist.Max+q.CalibrationMargin {
				return ReasonOutsideCalibration, fmt.Sprintf("display %s %.1f outside the calibration films' %.1f..%.1f by more than quality.calibration_margin %g",
					c.name, c.v, hist.Min, hist.Max, q.CalibrationMargin)
			}
		}
	}
	return "", ""
}

// driftState is the drift watch of one model set: rebuilt, with an empty
// window, when a reload swaps the models.
type driftState struct {
	owner  *triage.Engine
	inputs *drift.Profile // the first model's profile: its input statistics
	watch  *drift.Watch
	scores map[string]string // model name -> score signal
}

// quality holds the gate's and the watch's state (Daemon.quality).
type quality struct {
	once    sync.Once
	metrics *drift.Metrics

	mu    sync.Mutex
	state *driftState
	// drifting is the last computed list of drifting signals with their
	// index, for the health condition.
	drifting map[string]float64
}

func (d *Daemon) qualityMetrics() *drift.Metrics {
	q := &d.quality
	q.once.Do(func() {
		if d.svc.metrics != nil {
			q.metrics = drift.NewMetrics(d.svc.metrics.Registry)
		}
	})
	return q.metrics
}

// driftFor is the watch of eng's model set.
func (d *Daemon) driftFor(eng *triage.Engine) *driftState {
	q := &d.quality
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != nil && q.state.owner == eng.Owner() {
		return q.state
	}
	s := &driftState{owner: eng.Owner(), scores: map[string]string{}}
	hists := map[string]*drift.Hist{}
	for _, m := range eng.Models {
		p := m.Manifest.Drift
		if p == nil {
			continue
		}
		if s.inputs == nil {
			s.inputs = p
		}
		sig := drift.SignalScore + ":" + m.Manifest.Name
		s.scores[m.Manifest.Name] = sig
		hists[sig] = p.Numeric[drift.SignalScore]
	}
	c := d.cfg.Drift
	s.watch = drift.NewWatch(s.inputs, hists, drift.Options{Window: c.Window, MinFilms: c.MinFilms, Level: c.PSILevel})
	if s.inputs == nil && c.Enabled {
		d.log.Warn().Str("model_set", eng.Set).Msg("no model manifest has a drift profile (run `triaged model calibrate -write`): drift is not watched, only input metrics are kept")
	}
	q.state = s
	q.drifting = nil
	return s
}

// sampleOf is what a decoded film tells the drift watch; no identifier.
func sampleOf(a *film.Analysis, st drift.Stats) drift.Sample {
	h := a.Header
	return drift.Sample{Stats: st, PixelSpacing: h.PixelSpacing, Manufacturer: h.Manufacturer,
		Model: h.ModelName, TransferSyntax: h.TransferSyntax, Photometric: h.Photometric}
}

// observeInputs feeds a handled film (scored or not assessable) to the
// drift watch and the metrics, once its result is stored.
func (d *Daemon) observeInputs(log zerolog.Logger, ds *driftState, s drift.Sample, res *triage.Result) {
	var scores map[string]float64
	if res != nil {
		scores = map[string]float64{}
		for _, m := range res.Models {
			if sig, ok := ds.scores[m.Name]; ok {
				scores[sig] = m.Probability
			}
		}
	}
	ob := ds.watch.Observe(s, scores)
	for sig, v := range ob.FirstUnseen {
		log.Warn().Str("signal", sig).Str("value", v).Msg("film with a value the models' calibration never saw (counted in triaged_films_unseen_total; logged once per value)")
	}
	m := d.qualityMetrics()
	m.Film(s, ob)
	if !d.cfg.Drift.Enabled {
		return
	}
	psi := ds.watch.PSI()
	m.PSI(psi)
	drifting := map[string]float64{}
	for sig, v := range psi {
		if v >= d.cfg.Drift.PSILevel {
			drifting[sig] = v
		}
	}
	q := &d.quality
	q.mu.Lock()
	was := len(q.drifting) > 0
	if q.state == ds {
		q.drifting = drifting
	}
	q.mu.Unlock()
	if !was && len(drifting) > 0 {
		log.Warn().Str("signals", driftSummary(drifting)).Float64("psi_level", d.cfg.Drift.PSILevel).Msg("input drift: recent films no longer look like the calibration films")
	}
}

func driftSummary(m map[string]float64) string {
	var parts []string
	for sig, v := range m {
		parts = append(parts, fmt.Sprintf("%s %.2f", sig, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// driftCondition is the health condition sent to the on-call channel
// (Alertmanager destinations) while any signal drifts.
func (d *Daemon) driftCondition() alertmanager.Condition {
	q := &d.quality
	q.mu.Lock()
	drifting := q.drifting
	q.mu.Unlock()
	return alertmanager.Condition{Name: "TriagedInputDrift", Severity: "warning", Firing: len(drifting) > 0,
		Summary: fmt.Sprintf("recent films differ from the models' calibration films (population stability index %s, level %g over the last %d films): check the senders, then recalibrate (runbook: input quality and drift)",
			driftSummary(drifting), d.cfg.Drift.PSILevel, d.cfg.Drift.Window)}
}

// notAssessable stores the result of a film the gate stopped: no score, no
// alert; the film was handled, so it is acknowledged.
func (d *Daemon) notAssessable(ctx context.Context, log zerolog.Logger, j *job, a *film.Analysis, eng *triage.Engine, code, detail string) bool {
	it := j.item
	a.Timings.TotalMS = ms(time.Since(j.claimed))
	r := &publish.Result{
		Schema:         publish.ResultSchema,
		Kind:           "result",
		Source:         it.Origin(),
		Film:           film.Of(a.Header),
		Models:         []publish.ModelScore{},
		Priority:       publish.PriorityNotAssessable,
		PriorityReason: "not assessable: " + detail,
		NotAssessable:  code,
		Thresholds:     publish.Thresholds{Urgent: eng.Thresholds.Urgent, Critical: eng.Thresholds.Critical, CalibratedOn: eng.Thresholds.CalibratedOn},
		ModelSet:       eng.Set,
		Timings:        a.Timings,
		ScoredAt:       time.Now().UTC(),
		Daemon:         d.version,
		Host:           d.host,
	}
	if r.Film.SOPInstanceUID == "" {
		r.Film.SOPInstanceUID = "film-" + it.ID()
	}
	err := d.durably(ctx, "publish result", func(ctx context.Context) error {
		_, err := d.pub.PublishResult(ctx, r, false)
		return err
	})
	if err != nil {
		it.Release(0) // shutting down: the next start processes it again
		return false
	}
	if err := it.Ack(); err != nil {
		log.Error().Err(err).Msg("result stored but the input could not be acknowledged; it is retried with backoff (the repeat is deduplicated)")
		return false
	}
	d.qualityMetrics().NotAssessable(code)
	log.Warn().Str("priority", r.Priority).Str("reason", code).Str("detail", detail).Msg("film not assessable: stored without a score or alert")
	return true
}
