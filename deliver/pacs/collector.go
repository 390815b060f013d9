package pacs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/triaged/triaged/deliver"
)

// Metric names the collector exports: the alert deliveries' figures under
// their own names (the alert deliveries' collector owns theirs).
const (
	MetricDeliveries = "triaged_pacs_deliveries_total"
	MetricFailing    = "triaged_pacs_delivery_failing"
)

var (
	descDeliveries = prometheus.NewDesc(MetricDeliveries,
		"Films whose result objects were sent to a PACS destination, by outcome: delivered, retried (a failure tried again), dead_letter (refused), redelivered (delivered after an earlier hand-out: possibly a re-send of the same SOP Instance UIDs).",
		[]string{"destination", "outcome"}, nil)
	descFailing = prometheus.NewDesc(MetricFailing, "1 while the PACS destination's last attempt failed (as /readyz reports).", []string{"destination"}, nil)
)

// Collector exports a Delivery's Stats at scrape time:
// registry.MustRegister(pacs.Collector{Delivery: d}).
type Collector struct{ Delivery *Delivery }

func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDeliveries
	ch <- descFailing
}

func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.Delivery.Stats() {
		for o, v := range map[deliver.Outcome]uint64{deliver.Delivered: s.Delivered, deliver.Retried: s.Retries, deliver.DeadLetter: s.DeadLetters, deliver.Redelivered: s.Redelivered} {
			ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(v), s.Destination, string(o))
		}
		failing := 0.0
		if !s.FailingSince.IsZero() {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, s.Destination)
	}
}
