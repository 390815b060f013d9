package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The gate counts a priority change at either threshold, takes |dP| per
// model and for the ensemble, and passes only with no change and an AUC
// difference under 0.002.
func TestSummarize(t *testing.T) {
	a := &arm{urgent: 0.5, critical: 0.9, modelUrg: []float64{0.5}, modelCr: []float64{0.9}}
	film := func(pa, pb float64, pos bool) Film {
		return Film{Syntax: "j2k", Labeled: true, Positive: pos, P: [2][]float64{{pa, pa}, {pb, pb}}, CPUms: [2]float64{300, 40}, Reduced: [2]int{0, 2}}
	}
	same := []Film{film(0.1, 0.11, false), film(0.6, 0.62, true), film(0.95, 0.94, true), film(0.2, 0.2, false)}
	r := summarize(same, []string{"m"}, a, a)
	if !r.Pass || r.Rows[0].PriorityChanges != 0 || math.Abs(r.Rows[0].MaxAbsDP-0.02) > 1e-9 || r.Rows[0].AUCA != 1 || r.Rows[0].AUCB != 1 {
		t.Fatalf("%+v", r)
	}
	if c := r.CPUms["j2k"]; c != [2]float64{300, 40} || r.Levels[2] != 4 {
		t.Fatalf("cpu %v levels %v", r.CPUms, r.Levels)
	}
	changed := append(same, film(0.89, 0.91, true)) // urgent -> critical
	if r := summarize(changed, []string{"m"}, a, a); r.Pass || r.Rows[0].PriorityChanges != 1 {
		t.Fatalf("%+v", r)
	}
	swapped := []Film{film(0.3, 0.45, false), film(0.4, 0.35, true), film(0.6, 0.6, true), film(0.1, 0.1, false)}
	r = summarize(swapped, []string{"m"}, a, a)
	if r.Pass || r.Rows[0].AUCA != 1 || r.Rows[0].AUCB != 0.75 || !(r.Rows[0].DAUCLo <= -0.25 && r.Rows[0].DAUCHi <= 0) {
		t.Fatalf("%+v", r.Rows[0])
	}
}

// The committed int8 models (models/int8, training/quantize.py) load with
// their manifests' sha256 checked, run on ONNX Runtime's QLinearConv path,
// and score the test split's first images within 0.15 of their fp32
// models (the gate's max |dP| over the whole split is 0.114).
func TestInt8ModelsScoreLikeTheirFP32Models(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	data := testenv.SharedData(t)
	items, err := loadItems("", "", 8, filepath.Join(data, "cxr", "labels.csv"), filepath.Join(testenv.Root(), "models", "split.json"), "test", "")
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(testenv.Root(), "models", "int8", "*-int8"))
	if len(dirs) == 0 {
		t.Fatal("no int8 models under models/int8")
	}
	for _, d := range dirs {
		q, err := loadArm("B", d, 0, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := loadArm("A", filepath.Join(testenv.Root(), "models", strings.TrimSuffix(filepath.Base(d), "-int8")), 0, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			x, _, _, err := prepare(it.Path, 0)
			if err != nil {
				t.Fatal(err)
			}
			pq, err := score(q, x)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := score(f, x)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(pq[0] - pf[0]); d > 0.15 {
				t.Errorf("%s: P(COVID-19) %.4f, fp32 %.4f", q.models[0].Manifest.Name, pq[0], pf[0])
			}
		}
		for _, ar := range []*arm{q, f} {
			for _, m := range ar.models {
				m.Close()
			}
		}
	}
}
