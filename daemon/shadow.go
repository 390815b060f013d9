package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/metrics"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// Shadow mode (config shadow, docs/adopting-a-model.md): a site adopts a
// model by running it without consequences first. A candidate model set is
// scored on the same films as the live one and its results are stored,
// marked shadow, on <prefix>.shadow.result: no alert, no heatmap, no
// delivery, no worklist entry (those all read the alert stream or
// <prefix>.result). With shadow.all the live set's own results are shadow
// results too, for a site's first weeks.
//
// The candidate runs after the live result is stored, so it never delays
// an alert, and before the film is acknowledged, so a crash in between
// scores both again (each deduplicated by its message ID). A candidate
// that fails is logged and counted; the film is acknowledged regardless.

// shadowSet is the candidate engine and its counters.
type shadowSet struct {
	all     bool
	engine  *triage.Engine // nil: no candidate
	results *prometheus.CounterVec
	failed  *prometheus.CounterVec
}

// openShadow loads the candidate model set and registers the shadow
// metrics; it runs in New once the metrics exist.
func (d *Daemon) openShadow() error {
	sc := d.cfg.Shadow
	d.shadow.all = sc.All
	if !sc.On() {
		return nil
	}
	eng, err := provision.ShadowEngine(d.cfg, d.log)
	if err != nil {
		return fmt.Errorf("shadow.models: %w", err)
	}
	d.shadow.engine = eng
	d.shadow.results = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "shadow_results_total",
		Help: "Shadow results scored (stored without alert or delivery), by role (candidate: shadow.models; live: the live models under shadow.all) and the priority the set would have given."},
		[]string{"role", "priority"})
	d.shadow.failed = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "shadow_failures_total",
		Help: "Films whose candidate (shadow.models) result is missing, by stage (score, publish); the live result was not affected."},
		[]string{"stage"})
	if m := d.svc.metrics; m != nil {
		m.Registry.MustRegister(d.shadow.results, d.shadow.failed)
	}
	if eng != nil {
		d.log.Info().Str("model_set", eng.Set).Str("live_model_set", d.engine.Load().Set).Bool("all", sc.All).
			Msg("shadow mode: candidate model set scored beside the live one, its results stored without alerts")
	} else {
		d.log.Info().Msg("shadow mode: the whole daemon is in shadow (shadow.all); results are stored, nothing alerts")
	}
	return nil
}

// shadowLive marks the live result a shadow result under shadow.all,
// before heatmaps and publishing look at it.
func (d *Daemon) shadowLive(r *publish.Result) {
	if !d.shadow.all {
		return
	}
	r.Shadow = true
	if d.shadow.results != nil {
		d.shadow.results.WithLabelValues("live", r.Priority).Inc()
	}
}

// scoreCandidate scores the film with the candidate model set and stores
// its shadow result. live is the live result just stored; requested the
// priority the film was sent with. It never fails the film.
func (d *Daemon) scoreCandidate(ctx context.Context, log zerolog.Logger, a *film.Analysis, live *publish.Result, requested string) {
	eng := d.shadow.engine
	if eng == nil || a.Input.Gray == nil {
		return
	}
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(a.Input.Gray, x)
	t0 := time.Now()
	res, err := eng.Score(ctx, x)
	if err != nil {
		if ctx.Err() == nil {
			d.shadow.failed.WithLabelValues("score").Inc()
			log.Warn().Err(err).Str("model_set", eng.Set).Msg("shadow: the candidate model set could not score the film; its live result is stored")
		}
		return
	}
	c := *a
	c.Display = nil
	c.Result = res
	c.Priority, c.Why = eng.Classify(res.Ensemble, requested)
	c.Timings.InferenceMS = ms(time.Since(t0))
	c.Timings.BatchSize = res.BatchSize
	c.Timings.HeatmapMS = 0
	r := c.Message(eng, live.Source, d.version, d.host)
	r.Film = live.Film // with the film-ID stand-in for a missing instance UID
	r.Timings.QueueMS = live.Timings.QueueMS
	if _, err := d.pub.PublishShadow(ctx, r); err != nil {
		if ctx.Err() == nil {
			d.shadow.failed.WithLabelValues("publish").Inc()
			log.Warn().Err(err).Str("model_set", eng.Set).Msg("shadow: the candidate's result could not be stored; its live result is stored")
		}
		return
	}
	d.shadow.results.WithLabelValues("candidate", r.Priority).Inc()
	log.Debug().Str("model_set", r.ModelSet).Str("priority", r.Priority).Float64("score", r.Score).Msg("shadow result stored")
}

// closeShadow closes the candidate engine (at Close, when no film uses it).
func (d *Daemon) closeShadow() error {
	if d.shadow.engine == nil {
		return nil
	}
	return d.shadow.engine.Close()
}
