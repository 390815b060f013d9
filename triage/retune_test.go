package triage

import (
	"context"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
)

// A retuned copy classifies with its own thresholds through the original's
// sessions, and closing it leaves the original working.
func TestRetunedSharesSessionsWithNewThresholds(t *testing.T) {
	testenv.ORT(t)
	e, err := NewEngine([]string{testenv.Model(t, "squeezenet1_1")}, Options{}, EngineOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r := e.Retuned(EngineOptions{Urgent: 0.2, Critical: 0.3, EscalateStat: true})
	if r.Owner() != e || e.Owner() != e || r.Set != e.Set {
		t.Fatal("owner or model set not shared")
	}
	if r.Thresholds.Urgent != 0.2 || r.Thresholds.Critical != 0.3 || r.Thresholds.CalibratedOn != "configuration" {
		t.Fatalf("thresholds %+v", r.Thresholds)
	}
	if e.Thresholds.CalibratedOn == "configuration" {
		t.Fatal("the original's thresholds changed")
	}
	if p, _ := r.Classify(0.25, ""); p != Urgent {
		t.Fatalf("0.25 is %s with urgent 0.2", p)
	}
	if p, _ := r.Classify(0.25, "STAT"); p != Critical {
		t.Fatalf("STAT 0.25 is %s", p)
	}
	// Back to the manifest's thresholds.
	m := r.Retuned(EngineOptions{})
	if m.Owner() != e || m.Thresholds != e.Thresholds {
		t.Fatalf("retuned copy of a copy: %+v", m.Thresholds)
	}
	x := make([]float32, preprocess.TensorLen)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, eng := range []*Engine{r, e} {
		res, err := eng.Score(context.Background(), x)
		if err != nil || len(res.Models) != 1 {
			t.Fatalf("score after closing the copy: %v", err)
		}
	}
}
