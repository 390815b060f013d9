package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/triaged/triaged/preprocess"
)

func TestMaskBorder(t *testing.T) {
	x := make([]float32, preprocess.TensorLen)
	for i := range x {
		x[i] = 1
	}
	band := BorderBand(0.12)
	if band != 27 {
		t.Fatalf("band %d, want 27", band)
	}
	MaskBorder(x, band)
	s := preprocess.Size
	inner := (s - 2*band) * (s - 2*band)
	n := 0
	for _, v := range x {
		if v == 1 {
			n++
		}
	}
	if n != 3*inner || x[0] != 0 || x[band*s+band] != 1 || x[band*s+band-1] != 0 || x[(s-band)*s+band] != 0 {
		t.Fatalf("%d unmasked values, want %d", n, 3*inner)
	}
}

// A scorer that reads only the border moves when it is masked; one that
// reads only the centre does not.
func TestBorder(t *testing.T) {
	xs := make([][]float32, 20)
	pos := make([]bool, 20)
	for i := range xs {
		xs[i] = make([]float32, preprocess.TensorLen)
		for j := range xs[i] {
			xs[i][j] = 1
		}
		pos[i] = i%2 == 0
	}
	corner := func(x []float32, n int) ([]float64, error) {
		ps := make([]float64, n)
		for k := range n {
			ps[k] = 0.2 + 0.6*float64(x[k*preprocess.TensorLen])
		}
		return ps, nil
	}
	centre := func(x []float32, n int) ([]float64, error) {
		ps := make([]float64, n)
		for k := range n {
			ps[k] = 0.8 * float64(x[k*preprocess.TensorLen+112*224+112])
		}
		return ps, nil
	}
	orig := make([]float64, 20)
	for i := range orig {
		orig[i] = 0.8
	}
	r, err := Border("corner", corner, xs, pos, orig, 0.12, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.MeanAbsChange-0.6) > 1e-9 || r.PositivesUrgent != 10 || r.PositivesFellBelow != 10 || r.NegativesUrgent != 10 || r.NegativesUrgentMask != 0 {
		t.Fatalf("corner model: %+v", r)
	}
	if r, _ = Border("centre", centre, xs, pos, orig, 0.12, 0.5); r.MaxAbsChange > 1e-6 || r.PositivesFellBelow != 0 {
		t.Fatalf("centre model: %+v", r)
	}
}

// Features that carry the source are found by the probe; noise is not.
func TestSourceProbe(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var items []ProbeItem
	for i := range 120 {
		src := "a"
		if i%3 == 0 {
			src = "b"
		}
		f := make([]float64, 8)
		for j := range f {
			f[j] = rng.NormFloat64()
		}
		items = append(items, ProbeItem{Features: f, Positive: i%2 == 0, Source: src, Patient: string(rune('A' + i%60))})
	}
	noise := SourceProbe("m", items, 5, 0.1)
	for _, it := range items {
		if it.Source == "b" {
			it.Features[0] += 4
		}
	}
	signal := SourceProbe("m", items, 5, 0.1)
	for c := range 2 {
		if noise[c].AUC > 0.75 || signal[c].AUC < 0.9 || signal[c].Accuracy.Value < 0.85 {
			t.Fatalf("class %s: noise AUC %.3f, signal AUC %.3f accuracy %.3f", signal[c].Class, noise[c].AUC, signal[c].AUC, signal[c].Accuracy.Value)
		}
	}
	one := SourceProbe("m", []ProbeItem{{Features: []float64{1}, Positive: true, Source: "a"}}, 5, 1)
	if one[0].Skipped == "" {
		t.Fatal("a single source must be skipped")
	}
}

func TestWithinSourceAUC(t *testing.T) {
	// Source a: perfectly ordered; source b: reversed; source c: negatives only.
	s := []Scored{{0.9, true}, {0.1, false}, {0.2, true}, {0.8, false}, {0.7, false}, {0.6, false}}
	srcs := []string{"a", "a", "b", "b", "b", "c"}
	r := WithinSourceAUC("m", s, srcs)
	// a: 1 pair AUC 1; b: 2 pairs AUC 0 -> 1/3.
	if math.Abs(r.AUC-1.0/3) > 1e-12 || r.Pairs != 3 || r.Sources != 2 || r.Low > r.AUC || r.High < r.AUC {
		t.Fatalf("%+v", r)
	}
}
