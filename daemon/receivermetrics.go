package daemon

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triaged/triaged/ingest/dicomweb"
	"github.com/triaged/triaged/ingest/dimse"
	"github.com/triaged/triaged/metrics"
)

// receiverCollector exports the network intakes' own counters (the SCP's
// associations, both intakes' instances, bytes and time to durable) as
// Prometheus metrics. It reads their Stats at scrape time.
type receiverCollector struct {
	scp  *dimse.Server
	stow *dicomweb.Server
}

var (
	descAssoc = prometheus.NewDesc(metrics.Namespace+"_dimse_associations_total",
		"DICOM associations by outcome (released, aborted_*, rejected_*, failed).", []string{"outcome"}, nil)
	descActive = prometheus.NewDesc(metrics.Namespace+"_dimse_associations_active",
		"DICOM associations open now.", nil, nil)
	descInstances = prometheus.NewDesc(metrics.Namespace+"_received_instances_total",
		"Instances received by a network intake, by intake and status (success: fsynced into the drop folder).", []string{"intake", "status"}, nil)
	descBytes = prometheus.NewDesc(metrics.Namespace+"_received_bytes_total",
		"Bytes of instances received by a network intake.", []string{"intake"}, nil)
	descDurable = prometheus.NewDesc(metrics.Namespace+"_received_durable_seconds",
		"Time from an instance's first byte to its durable commit (the sender is told stored only after it).", []string{"intake"}, nil)
	descRequests = prometheus.NewDesc(metrics.Namespace+"_stow_requests_total",
		"STOW-RS requests by HTTP status.", []string{"code"}, nil)
)

func (c receiverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAssoc, descActive, descInstances, descBytes, descDurable, descRequests} {
		ch <- d
	}
}

func (c receiverCollector) Collect(ch chan<- prometheus.Metric) {
	if c.scp != nil {
		st := c.scp.Stats()
		for k, v := range st.Associations {
			ch <- prometheus.MustNewConstMetric(descAssoc, prometheus.CounterValue, float64(v), k)
		}
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(st.Active))
		for k, v := range st.Instances {
			ch <- prometheus.MustNewConstMetric(descInstances, prometheus.CounterValue, float64(v), "dimse", k)
		}
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.Bytes), "dimse")
		// The SCP's counts are cumulative already.
		b := map[float64]uint64{}
		for i, le := range st.Durable.Bounds {
			if i < len(st.Durable.Counts) {
				b[le] = st.Durable.Counts[i]
			}
		}
		ch <- prometheus.MustNewConstHistogram(descDurable, st.Durable.Count, st.Durable.Sum, b, "dimse")
	}
	if c.stow != nil {
		st := c.stow.Stats()
		for code, v := range st.Requests {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v), strconv.Itoa(code))
		}
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.CounterValue, float64(st.Stored), "dicomweb", "success")
		for reason, v := range st.Failed {
			ch <- prometheus.MustNewConstMetric(descInstances, prometheus.CounterValue, float64(v), "dicomweb", fmt.Sprintf("%04X", reason))
		}
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.Bytes), "dicomweb")
		// STOW-RS counts per bucket: make them cumulative.
		b, cum := map[float64]uint64{}, uint64(0)
		for i, le := range st.Durable.Bounds {
			if i < len(st.Durable.Counts) {
				cum += st.Durable.Counts[i]
			}
			b[le] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descDurable, st.Durable.Count, st.Durable.Sum, b, "dicomweb")
	}
}
