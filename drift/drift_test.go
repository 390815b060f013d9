package drift

import (
	"encoding/json"
	"image"
	"math"
	"math/rand"
	"testing"
)

func TestMeasure(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 4, 2))
	if s := Measure(g); s.Levels != 1 || s.Mean != 0 || s.Spread != 0 || s.Pixels != 8 {
		t.Errorf("blank: %+v", s)
	}
	copy(g.Pix, []byte{0, 0, 0, 0, 255, 255, 255, 255})
	if s := Measure(g); s.Levels != 2 || s.Mean != 127.5 || s.Spread != 127.5 {
		t.Errorf("half and half: %+v", s)
	}
	// A sub-image is measured over its own rectangle only.
	sub := g.SubImage(image.Rect(0, 1, 4, 2)).(*image.Gray)
	if s := Measure(sub); s.Levels != 1 || s.Mean != 255 || s.Pixels != 4 {
		t.Errorf("sub-image: %+v", s)
	}
	if s := Measure(nil); s != (Stats{}) {
		t.Errorf("nil: %+v", s)
	}
}

func TestHistAndPSI(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var v []float64
	for range 1000 {
		v = append(v, rng.NormFloat64()*20+120)
	}
	h := NewHist(v, Bins)
	if len(h.Expected) != Bins || h.check() != nil || h.N != 1000 {
		t.Fatalf("hist: %+v %v", h, h.check())
	}
	share := func(vals []float64) []float64 {
		a := make([]float64, len(h.Expected))
		for _, x := range vals {
			a[h.Bin(x)] += 1 / float64(len(vals))
		}
		return a
	}
	var same, shifted []float64
	for range 500 {
		same = append(same, rng.NormFloat64()*20+120)
		shifted = append(shifted, rng.NormFloat64()*20+150)
	}
	if p := PSI(h.Expected, share(same)); p > 0.1 {
		t.Errorf("PSI of the same distribution = %.3f", p)
	}
	if p := PSI(h.Expected, share(shifted)); p < 0.25 {
		t.Errorf("PSI of a 1.5 sd shift = %.3f", p)
	}
	// Ties collapse bins instead of making empty ones.
	c := NewHist([]float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, Bins)
	if len(c.Cuts) != 1 || c.Expected[0] != 0.8 || c.check() != nil {
		t.Errorf("ties: %+v", c)
	}
	if NewHist([]float64{math.NaN()}, Bins) != nil {
		t.Error("a histogram of nothing")
	}
}

func TestWatchWindowUnseenAndLabels(t *testing.T) {
	var cal []Sample
	for i := range 200 {
		cal = append(cal, Sample{Score: float64(i%100) / 100, Stats: Stats{Mean: 100 + float64(i%50), Spread: 40 + float64(i%20)},
			Manufacturer: []string{"ACME", "Globex"}[i%2], TransferSyntax: "1.2.840.10008.1.2.1", Photometric: "MONOCHROME2"})
	}
	p := NewProfile("test", cal)
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Categorical[SignalModel]; ok {
		t.Error("a signal no calibration film had is profiled")
	}
	w := NewWatch(p, map[string]*Hist{"score:m": p.Numeric[SignalScore]}, Options{Window: 100, MinFilms: 50, Level: 0.25})
	if len(w.PSI()) != 0 {
		t.Error("an index before min_films")
	}
	for _, s := range cal[:100] {
		ob := w.Observe(s, map[string]float64{"score:m": s.Score})
		if ob.Labels[SignalManufacturer] != s.Manufacturer || len(ob.Unseen) != 1 || ob.Unseen[0] != SignalModel {
			t.Fatalf("in distribution: %+v", ob)
		}
	}
	for sig, v := range w.PSI() {
		if v > 0.1 {
			t.Errorf("in distribution: PSI %s = %.3f", sig, v)
		}
	}
	if d := w.Drifting(); len(d) != 0 {
		t.Errorf("drifting in distribution: %v", d)
	}
	// A new vendor, new syntax, inverted: the window turns over.
	firsts := 0
	for i := range 100 {
		s := Sample{Score: 0.99, Stats: Stats{Mean: 230, Spread: 10}, Manufacturer: "Initech\x00" + string(rune('a'+i%30)),
			TransferSyntax: "1.2.840.10008.1.2.4.90", Photometric: "MONOCHROME1"}
		ob := w.Observe(s, map[string]float64{"score:m": s.Score})
		if ob.Labels[SignalManufacturer] != Other {
			t.Fatalf("unseen manufacturer labelled %q", ob.Labels[SignalManufacturer])
		}
		firsts += len(ob.FirstUnseen)
	}
	psi := w.PSI()
	for _, sig := range []string{"score:m", SignalMean, SignalSpread, SignalManufacturer, SignalTransferSyntax, SignalPhotometric} {
		if psi[sig] < 0.25 {
			t.Errorf("after the shift: PSI %s = %.3f", sig, psi[sig])
		}
	}
	if len(w.Drifting()) < 6 {
		t.Errorf("drifting: %v", w.Drifting())
	}
	// Unseen values are reported once each, and at most TopN per signal.
	if firsts > 4*TopN {
		t.Errorf("%d first-unseen reports", firsts)
	}
}

func TestWatchWithoutProfileBoundsLabels(t *testing.T) {
	w := NewWatch(nil, nil, Options{})
	seen := map[string]bool{}
	for i := range 100 {
		ob := w.Observe(Sample{Manufacturer: string(rune('A' + i))}, nil)
		if len(ob.Unseen) != 0 {
			t.Fatal("unseen without a profile")
		}
		seen[ob.Labels[SignalManufacturer]] = true
	}
	if len(seen) != TopN+1 || !seen[Other] {
		t.Errorf("%d label values, want %d and other", len(seen), TopN)
	}
	if len(w.PSI()) != 0 || len(w.Signals()) != 0 {
		t.Error("indices without a profile")
	}
}

// FuzzProfile: whatever a manifest's drift section holds, Check either
// refuses it or a watch built from it observes and computes without
// panicking, and every index is finite and non-negative.
func FuzzProfile(f *testing.F) {
	var cal []Sample
	for i := range 30 {
		cal = append(cal, Sample{Score: float64(i) / 30, Stats: Stats{Mean: float64(i * 7), Spread: float64(i)}, PixelSpacing: 0.1 + float64(i%3)/10, Manufacturer: "X"})
	}
	good, _ := json.Marshal(NewProfile("seed", cal))
	f.Add(good)
	f.Add([]byte(`{"numeric":{"mean":{"cuts":[1,0],"expected":[0.5,0.5,0]}}}`))
	f.Add([]byte(`{"numeric":{"mean":{"cuts":[],"expected":[]}},"categorical":{"photometric":{"other":1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Profile
		if json.Unmarshal(b, &p) != nil || p.Check() != nil {
			return
		}
		w := NewWatch(&p, p.Numeric, Options{Window: 20, MinFilms: 1, Level: 0.25})
		for i := range 25 {
			s := Sample{Score: float64(i) / 25, Stats: Stats{Mean: float64(i * 10), Spread: float64(i)}, PixelSpacing: float64(i % 2), Manufacturer: string(rune('a' + i%3))}
			w.Observe(s, map[string]float64{SignalScore: s.Score, "nope": 1})
		}
		for sig, v := range w.PSI() {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < -1e-9 {
				t.Fatalf("PSI %s = %v", sig, v)
			}
		}
	})
}
