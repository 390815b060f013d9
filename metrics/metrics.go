// Package metrics holds triaged's Prometheus collectors in one registry of
// its own (not the process-global default), so a test or a second daemon in
// the same process gets a clean set. Every label value is bounded and free
// of patient data: source kinds and names come from the configuration,
// outcomes, reason codes, priorities, stages and model names from fixed
// sets.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "triaged"

// Metrics are the daemon's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	films         *prometheus.CounterVec
	results       *prometheus.CounterVec
	quarantined   *prometheus.CounterVec
	duplicates    prometheus.Counter
	stage         *prometheus.HistogramVec
	inference     *prometheus.HistogramVec
	batch         prometheus.Histogram
	score         prometheus.Histogram
	retries       *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	lastReload    prometheus.Gauge
	modelInfo     *prometheus.GaugeVec
	thresholds    *prometheus.GaugeVec
	engineSwaps   prometheus.Counter
	enginesClosed prometheus.Counter
}

// Gauges are read at scrape time from the running daemon.
type Gauges struct {
	QueueDepth    func() float64
	QueueCapacity func() float64
	InFlight      func() float64
	Workers       func() float64
	NATSConnected func() bool
	Ready         func() bool
	Wedged        func() bool
	// QuarantineFiles counts the films in each source's quarantine, by
	// source name.
	QuarantineFiles func() map[string]int
	// Unsettled and OldestUnsettled: films whose result (or error event) is
	// stored but whose input could not be acknowledged or quarantined (disk
	// full, done/ removed), and the age of the oldest in seconds.
	// UnclaimedFiles counts, by drop folder, the files never claimed
	// because of their names (hidden, temporary suffix) for ten minutes.
	UnclaimedFiles  func() map[string]int
	Unsettled       func() float64
	OldestUnsettled func() float64
}

// Stage latency buckets: from a millisecond (a header read) to two minutes
// (a film waiting for NATS to come back).
var stageBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// New registers every collector. version labels triaged_build_info.
func New(version string, g Gauges) *Metrics {
	r := prometheus.NewRegistry()
	f := factory{r}
	m := &Metrics{
		Registry: r,
		films: f.counterVec("films_total",
			"Films that left the pipeline, by source and outcome: acked (output stored, input acknowledged), quarantined, released (left for a retry or the next start).",
			"source_kind", "source", "outcome"),
		results: f.counterVec("results_total", "Scored films whose result was stored, by priority.", "priority"),
		quarantined: f.counterVec("quarantined_total", "Films moved to quarantine (failed/), by source and reason code.",
			"source_kind", "source", "code"),
		duplicates: f.counter("duplicate_results_total", "Results JetStream already held (a film processed again after a crash, or a resend of the same instance)."),
		stage: f.histogramVec("stage_duration_seconds",
			"Time a scored film spent in each stage: queue (claim to worker), decode, preprocess, inference, heatmap, publish (until every PubAck), total (claim to acknowledgement).",
			stageBuckets, "stage"),
		inference: f.histogramVec("inference_duration_seconds",
			"Wall time of the ONNX Runtime run (the whole batch) that scored a film, by model.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "model"),
		batch: f.histogram("batch_size", "Size of the inference batch each scored film was part of.",
			[]float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256}),
		score: f.histogram("score", "Distribution of ensemble scores (mean P(COVID-19)) of scored films.",
			prometheus.LinearBuckets(0.05, 0.05, 19)),
		retries: f.counterVec("publish_retries_total", "Failed attempts to store a message on JetStream that were retried (NATS unavailable or slow).", "what"),
		reloads: f.counterVec("config_reloads_total", "Configuration reloads (SIGHUP), by result: applied or rejected.", "result"),
		lastReload: f.gauge("config_last_reload_success_timestamp_seconds",
			"Unix time of the last configuration reload that was applied (0: none since start)."),
		modelInfo:     f.gaugeVec("model_info", "The models in force (1 per loaded model).", "model", "version", "provider", "model_set"),
		thresholds:    f.gaugeVec("threshold", "Ensemble score thresholds in force, by priority.", "priority"),
		engineSwaps:   f.counter("model_swaps_total", "Scoring engines swapped in by a reload (new models, or new thresholds over the same models)."),
		enginesClosed: f.counter("model_sets_closed_total", "Replaced scoring engines closed after their last film finished."),
	}
	f.info("build_info", "The running triaged version.", prometheus.Labels{"version": version})
	f.gaugeFunc("queue_depth", "Admitted films waiting for a worker.", g.QueueDepth)
	f.gaugeFunc("queue_capacity", "Capacity of the admission queue (pipeline.queue_capacity).", g.QueueCapacity)
	f.gaugeFunc("films_in_flight", "Films claimed from a source and not yet acknowledged, quarantined or released.", g.InFlight)
	f.gaugeFunc("workers", "Film workers (pipeline.workers).", g.Workers)
	f.gaugeFunc("nats_connected", "1 while the NATS connection is up.", boolFunc(g.NATSConnected))
	f.gaugeFunc("ready", "1 while the daemon is ready (see /readyz).", boolFunc(g.Ready))
	f.gaugeFunc("pipeline_wedged", "1 while the pipeline has work but has made no progress for pipeline.stall_timeout (the systemd watchdog is then not fed).", boolFunc(g.Wedged))
	if g.Unsettled != nil {
		f.gaugeFunc("unsettled_films", "Films whose output is stored but whose input could not be acknowledged or quarantined; retried with backoff.", g.Unsettled)
		f.gaugeFunc("oldest_unsettled_film_age_seconds", "Age of the oldest film that could not be settled (0: none).", g.OldestUnsettled)
	}
	if g.UnclaimedFiles != nil {
		r.MustRegister(&quarantineFiles{
			desc: prometheus.NewDesc(Namespace+"_unclaimed_files", "Files in a drop folder that are never claimed because of their names (hidden, or a temporary suffix such as .tmp) and have sat there for ten minutes: a sender that did not rename them.", []string{"source"}, nil),
			f:    g.UnclaimedFiles,
		})
	}
	if g.QuarantineFiles != nil {
		r.MustRegister(&quarantineFiles{
			desc: prometheus.NewDesc(Namespace+"_quarantine_files", "Films currently in quarantine (failed/), by source; `triaged requeue` moves them back.", []string{"source"}, nil),
			f:    g.QuarantineFiles,
		})
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, ErrorHandling: promhttp.ContinueOnError})
}

// FilmDone counts a film leaving the pipeline.
func (m *Metrics) FilmDone(sourceKind, source, outcome string) {
	m.films.WithLabelValues(sourceKind, source, outcome).Inc()
}

// Quarantined counts a film moved to quarantine.
func (m *Metrics) Quarantined(sourceKind, source, code string) {
	m.quarantined.WithLabelValues(sourceKind, source, code).Inc()
}

// Scored records a stored result.
type Scored struct {
	Priority  string
	Score     float64
	Duplicate bool
	BatchSize int
	// Stages by name (queue, decode, preprocess, inference, heatmap,
	// publish, total); zero durations are skipped.
	Stages map[string]time.Duration
	// Inference is the batch wall time per model.
	Inference map[string]time.Duration
}

// ResultStored records everything about a scored film once its result is
// stored.
func (m *Metrics) ResultStored(s Scored) {
	m.results.WithLabelValues(s.Priority).Inc()
	if s.Duplicate {
		m.duplicates.Inc()
	}
	m.score.Observe(s.Score)
	if s.BatchSize > 0 {
		m.batch.Observe(float64(s.BatchSize))
	}
	for st, d := range s.Stages {
		if d > 0 {
			m.stage.WithLabelValues(st).Observe(d.Seconds())
		}
	}
	for model, d := range s.Inference {
		m.inference.WithLabelValues(model).Observe(d.Seconds())
	}
}

// PublishRetry counts a failed, retried attempt to store a message.
func (m *Metrics) PublishRetry(what string) { m.retries.WithLabelValues(what).Inc() }

// Reload counts a configuration reload.
func (m *Metrics) Reload(applied bool) {
	if applied {
		m.reloads.WithLabelValues("applied").Inc()
		m.lastReload.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("rejected").Inc()
}

// Model describes one loaded model for triaged_model_info.
type Model struct{ Name, Version, Provider string }

// ModelsInForce replaces the model and threshold gauges.
func (m *Metrics) ModelsInForce(set string, models []Model, urgent, critical float64) {
	m.modelInfo.Reset()
	for _, md := range models {
		m.modelInfo.WithLabelValues(md.Name, md.Version, md.Provider, set).Set(1)
	}
	m.thresholds.WithLabelValues("urgent").Set(urgent)
	m.thresholds.WithLabelValues("critical").Set(critical)
}

// EngineSwapped counts an engine swap; EngineClosed a retired engine closed.
func (m *Metrics) EngineSwapped() { m.engineSwaps.Inc() }
func (m *Metrics) EngineClosed()  { m.enginesClosed.Inc() }

type factory struct{ r *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.r.MustRegister(h)
	return h
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	if fn == nil {
		return
	}
	f.r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

func (f factory) info(name, help string, labels prometheus.Labels) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: labels})
	g.Set(1)
	f.r.MustRegister(g)
}

func boolFunc(f func() bool) func() float64 {
	if f == nil {
		return nil
	}
	return func() float64 {
		if f() {
			return 1
		}
		return 0
	}
}

// quarantineFiles counts quarantined films at scrape time: the count falls
// when an operator requeues, which a counter cannot show.
type quarantineFiles struct {
	desc *prometheus.Desc
	f    func() map[string]int
}

func (q *quarantineFiles) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

func (q *quarantineFiles) Collect(ch chan<- prometheus.Metric) {
	for src, n := range q.f() {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(n), src)
	}
}
