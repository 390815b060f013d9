package deliver

import "github.com/prometheus/client_golang/prometheus"

// Metric names the collector exports (prometheus/alerts.yml uses them).
const (
	MetricDeliveries = "triaged_deliveries_total"
	MetricPending    = "triaged_delivery_pending"
	MetricOldest     = "triaged_delivery_oldest_undelivered_seconds"
	MetricFailing    = "triaged_delivery_failing"
	MetricTickFailed = "triaged_delivery_resend_failures_total"
)

var (
	descDeliveries = prometheus.NewDesc(MetricDeliveries,
		"Delivery attempts by destination and outcome: delivered, retried (retryable failure), dead_letter, skipped (priority filter), redelivered (delivered after an earlier hand-out: possibly a duplicate the receiver's idempotency key absorbs).",
		[]string{"destination", "outcome"}, nil)
	descPending = prometheus.NewDesc(MetricPending, "Messages of the destination's consumer not yet acknowledged (fleet-wide).", []string{"destination"}, nil)
	descOldest  = prometheus.NewDesc(MetricOldest, "Age of the oldest message not yet delivered to the destination (0: none).", []string{"destination"}, nil)
	descFailing = prometheus.NewDesc(MetricFailing, "1 while the destination's last attempt failed (as /readyz reports).", []string{"destination"}, nil)
	descTick    = prometheus.NewDesc(MetricTickFailed, "Periodic re-sends of the active alerts (Alertmanager) that failed.", []string{"destination"}, nil)
)

// Collector exports an engine's Stats to Prometheus at scrape time; the
// daemon registers it: registry.MustRegister(deliver.Collector{Engine: e}).
type Collector struct{ Engine *Engine }

func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveries, descPending, descOldest, descFailing, descTick} {
		ch <- d
	}
}

func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.Engine.Stats() {
		for o, v := range map[Outcome]uint64{Delivered: s.Delivered, Retried: s.Retries, DeadLetter: s.DeadLetters, Skipped: s.Skipped, Redelivered: s.Redelivered} {
			ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(v), s.Destination, string(o))
		}
		failing := 0.0
		if !s.FailingSince.IsZero() {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending), s.Destination)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, s.Oldest.Seconds(), s.Destination)
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, s.Destination)
		ch <- prometheus.MustNewConstMetric(descTick, prometheus.CounterValue, float64(s.TickFailures), s.Destination)
	}
}
