package eval

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/triage"
)

func sc(pos, neg []float64) []Scored {
	var s []Scored
	for _, p := range pos {
		s = append(s, Scored{p, true})
	}
	for _, n := range neg {
		s = append(s, Scored{n, false})
	}
	return s
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestAUC(t *testing.T) {
	if got := AUC(sc([]float64{0.9, 0.8, 0.4}, []float64{0.7, 0.3})); !near(got, 5.0/6, 1e-12) {
		t.Errorf("AUC = %g, want 5/6", got)
	}
	if got := AUC(sc([]float64{0.5}, []float64{0.5})); got != 0.5 {
		t.Errorf("tied AUC = %g", got)
	}
	if !math.IsNaN(AUC(sc([]float64{0.5}, nil))) {
		t.Error("AUC without negatives must be NaN")
	}
}

// The value scikit-learn's average_precision_score gives for this example.
func TestAveragePrecision(t *testing.T) {
	s := []Scored{{0.9, true}, {0.8, false}, {0.7, true}, {0.6, true}, {0.5, false}}
	if got := AveragePrecision(s); !near(got, 1.0/3+2.0/9+0.25, 1e-12) {
		t.Errorf("AP = %g", got)
	}
}

func TestWilson(t *testing.T) {
	p := Wilson(8, 10)
	if !near(p.Low, 0.4902, 1e-4) || !near(p.High, 0.9433, 1e-4) {
		t.Errorf("Wilson(8,10) = %+v", p)
	}
	if p := Wilson(10, 10); p.High != 1 || !near(p.Low, 0.7225, 1e-4) {
		t.Errorf("Wilson(10,10) = %+v", p)
	}
}

func TestCalibrateRule(t *testing.T) {
	var pos, neg []float64
	for i := 0; i < 100; i++ {
		pos = append(pos, 0.5+float64(i)/200) // 0.5 .. 0.995
		neg = append(neg, float64(i)/160)     // 0 .. 0.619, overlapping the positives
	}
	th, ok := Calibrate(sc(pos, neg), 0.98, 0.99)
	if !ok {
		t.Fatal("not calibrated")
	}
	// 2 of 100 positives may fall below urgent: urgent is the third lowest.
	if th.Urgent != 0.51 || th.UrgentSensitivity != 0.98 {
		t.Errorf("urgent %+v", th)
	}
	// 1 of 100 negatives may reach critical: just above the second highest.
	if !(th.Critical > 0.6125 && th.Critical < 0.61251) {
		t.Errorf("critical %g", th.Critical)
	}
	// ... but critical never falls below urgent.
	if th2, _ := Calibrate(sc(pos, []float64{0.1, 0.2}), 0.98, 0.99); th2.Critical != th2.Urgent {
		t.Errorf("critical %g below urgent %g", th2.Critical, th2.Urgent)
	}
}

// `triaged calibrate` on the validation split must re-derive the thresholds
// that training/export.py wrote into each committed manifest from PyTorch's
// scores: same rule, same split, scores equal to ~1e-6.
func TestCalibrationReproducesManifests(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	data := testenv.SharedData(t)
	split, err := LoadSplit(filepath.Join(testenv.Root(), "models", "split.json"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := LoadCSV(filepath.Join(data, "cxr", "labels.csv"), split, "val")
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(testenv.Root(), "models", "*", "manifest.json"))
	for _, mf := range dirs {
		dir := filepath.Dir(mf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			eng, err := triage.NewEngine([]string{dir}, triage.Options{}, triage.EngineOptions{BatchSize: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			var s []Scored
			for _, o := range Run(context.Background(), eng, items, Options{Workers: 4}) {
				if o.Err != nil {
					t.Fatal(o.Err)
				}
				s = append(s, Scored{o.Models[0], o.Item.Positive})
			}
			th, _ := Calibrate(s, 0.98, 0.99)
			want := eng.Models[0].Manifest.Thresholds
			if !near(th.Urgent, want.Urgent, 1e-5) || !near(th.Critical, want.Critical, 1e-5) {
				t.Fatalf("calibrated %+v, manifest %+v", th, want)
			}
		})
	}
}

func TestSplitIsPatientDisjoint(t *testing.T) {
	split, err := LoadSplit(filepath.Join(testenv.Root(), "models", "split.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for set, ps := range split.Patients {
		for _, p := range ps {
			if other, ok := seen[p]; ok {
				t.Fatalf("patient %s in both %s and %s", p, other, set)
			}
			seen[p] = set
		}
	}
}
