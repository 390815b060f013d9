package triage

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The CPU-only library has no CUDA execution provider: a model asked to
// run on CUDA runs on the CPU, says so (Provider, which the metrics,
// /readyz and `triaged version -verbose` report), and the log says why:
// a warning for device cuda, information for auto.
func TestCUDAFallsBackToCPUWithALogLine(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	for dev, level := range map[string]string{"cuda": "warn", "auto": "info"} {
		var buf bytes.Buffer
		m, err := LoadModel(testenv.Model(t, "squeezenet1_1"), Options{Device: dev, Log: zerolog.New(&buf)})
		if err != nil {
			t.Fatalf("device %s: %v", dev, err)
		}
		m.Close()
		if m.Provider != ProviderCPU {
			t.Errorf("device %s: provider %s on the CPU-only library", dev, m.Provider)
		}
		line := buf.String()
		if !strings.Contains(line, "falling back to CPU") || !strings.Contains(line, `"level":"`+level+`"`) ||
			!strings.Contains(line, `"reason":`) || !strings.Contains(line, `"model":"squeezenet1_1"`) {
			t.Errorf("device %s: log %q", dev, line)
		}
	}
	var buf bytes.Buffer
	m, err := LoadModel(testenv.Model(t, "squeezenet1_1"), Options{Device: "cpu", Log: zerolog.New(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if m.Provider != ProviderCPU || buf.Len() != 0 {
		t.Errorf("device cpu: provider %s, log %q", m.Provider, buf.String())
	}
}

// GPU-sized batching (triage.cuda) applies only when every model runs on
// CUDA: on the CPU-only library a model asked for CUDA falls back to the
// CPU, and the engine keeps the CPU batching.
func TestCUDABatchingOnlyOnCUDA(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	e, err := NewEngine([]string{testenv.Model(t, "squeezenet1_1")}, Options{Device: "auto", Log: zerolog.Nop()},
		EngineOptions{BatchSize: 8, BatchWait: time.Millisecond, CUDABatchSize: 64, CUDABatchWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Models[0].Provider != ProviderCPU || e.BatchSize() != 8 || e.Retuned(EngineOptions{BatchSize: 2}).BatchSize() != 8 {
		t.Fatalf("provider %s: batch size %d, want the CPU batching (8)", e.Models[0].Provider, e.BatchSize())
	}
	if !allOn([]*Model{{Provider: ProviderCUDA}, {Provider: ProviderCUDA}}, ProviderCUDA) || allOn([]*Model{{Provider: ProviderCUDA}, {Provider: ProviderCPU}}, ProviderCUDA) {
		t.Fatal("allOn")
	}
}
