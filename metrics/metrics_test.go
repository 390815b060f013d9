package metrics

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func exercised(t *testing.T) *Metrics {
	t.Helper()
	m := New("test", Gauges{
		QueueDepth: func() float64 { return 2 }, QueueCapacity: func() float64 { return 64 },
		InFlight: func() float64 { return 3 }, Workers: func() float64 { return 4 },
		NATSConnected: func() bool { return true }, Ready: func() bool { return true }, Wedged: func() bool { return false },
		QuarantineFiles: func() map[string]int { return map[string]int{"/var/lib/triaged/incoming": 1} },
	})
	m.FilmDone("folder", "/var/lib/triaged/incoming", "acked")
	m.Quarantined("folder", "/var/lib/triaged/incoming", "not_dicom")
	m.ResultStored(Scored{Priority: "urgent", Score: 0.7, Duplicate: true, BatchSize: 3,
		Stages:    map[string]time.Duration{"decode": 20 * time.Millisecond, "total": 80 * time.Millisecond},
		Inference: map[string]time.Duration{"squeezenet1_1": 15 * time.Millisecond}})
	m.PublishRetry("result")
	m.Reload(true)
	m.Reload(false)
	m.ModelsInForce("ms-741f6a8e2d17", []Model{{"squeezenet1_1", "2026-11-26", "CPUExecutionProvider"}}, 0.538, 0.8997)
	m.EngineSwapped()
	m.EngineClosed()
	return m
}

// /metrics parses with the Prometheus text parser, and every triaged_
// metric is documented in the runbook.
func TestMetricsParseAndAreListedInTheRunbook(t *testing.T) {
	m := exercised(t)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("does not parse: %v\n%s", err, rec.Body)
	}
	_, file, _, _ := runtime.Caller(0)
	runbook, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name := range fams {
		if !strings.HasPrefix(name, Namespace+"_") {
			continue
		}
		n++
		if !strings.Contains(string(runbook), "`"+name+"`") {
			t.Errorf("%s is not listed in docs/runbook.md", name)
		}
	}
	if n < 24 {
		t.Errorf("only %d triaged_ metrics exposed", n)
	}
	if g := fams["triaged_quarantine_files"]; g == nil || g.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("quarantine files gauge: %v", g)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("Go and process collectors missing")
	}
}
