package drift

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the drift watch's and the input-quality gate's Prometheus
// series. Every label value is bounded: signals are the fixed names above,
// categorical values those of Observation.Labels, reasons the gate's codes.
type Metrics struct {
	psi          *prometheus.GaugeVec
	unseen       *prometheus.CounterVec
	inputs       *prometheus.CounterVec
	mean, spread prometheus.Histogram
	spacing      prometheus.Histogram
	notAssess    *prometheus.CounterVec
}

// NewMetrics registers the series on r.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		psi: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "triaged_drift_psi",
			Help: "Population stability index of each signal over the rolling window of recent films against the models' calibration distribution (0: same; >= 0.25: major shift)."}, []string{"signal"}),
		unseen: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "triaged_films_unseen_total",
			Help: "Films whose manufacturer, model name, transfer syntax or photometric interpretation the calibration never saw, by signal."}, []string{"signal"}),
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "triaged_film_inputs_total",
			Help: "Films by categorical input signal and value (values the calibration saw, else other; unknown: attribute absent)."}, []string{"signal", "value"}),
		mean: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "triaged_film_display_mean",
			Help: "Mean gray level (0-255) of each film's display image.", Buckets: prometheus.LinearBuckets(16, 16, 15)}),
		spread: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "triaged_film_display_spread",
			Help: "Standard deviation of the gray levels of each film's display image.", Buckets: prometheus.LinearBuckets(4, 8, 15)}),
		spacing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "triaged_film_pixel_spacing_mm",
			Help: "Pixel spacing (mm) of films that state one.", Buckets: []float64{.05, .075, .1, .125, .15, .175, .2, .25, .3, .4, .5, 1}}),
		notAssess: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "triaged_films_not_assessable_total",
			Help: "Films the input-quality gate found not assessable (result priority not_assessable, no alert), by reason."}, []string{"reason"}),
	}
	r.MustRegister(m.psi, m.unseen, m.inputs, m.mean, m.spread, m.spacing, m.notAssess)
	return m
}

// Film records one film's input statistics and what the watch made of it.
func (m *Metrics) Film(s Sample, ob Observation) {
	if m == nil {
		return
	}
	m.mean.Observe(s.Stats.Mean)
	m.spread.Observe(s.Stats.Spread)
	if s.PixelSpacing > 0 {
		m.spacing.Observe(s.PixelSpacing)
	}
	for sig, v := range ob.Labels {
		m.inputs.WithLabelValues(sig, v).Inc()
	}
	for _, sig := range ob.Unseen {
		m.unseen.WithLabelValues(sig).Inc()
	}
}

// PSI replaces the index gauges with the watch's current values.
func (m *Metrics) PSI(values map[string]float64) {
	if m == nil {
		return
	}
	m.psi.Reset()
	for sig, v := range values {
		m.psi.WithLabelValues(sig).Set(v)
	}
}

// NotAssessable counts a film the gate stopped.
func (m *Metrics) NotAssessable(reason string) {
	if m != nil {
		m.notAssess.WithLabelValues(reason).Inc()
	}
}
