package drift

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Signals, the label values of triaged_drift_psi and the keys of a Profile.
const (
	SignalScore          = "score" // per model: "score:<model name>" in a Watch
	SignalMean           = "mean"
	SignalSpread         = "spread"
	SignalPixelSpacing   = "pixel_spacing"
	SignalManufacturer   = "manufacturer"
	SignalModel          = "model_name"
	SignalTransferSyntax = "transfer_syntax"
	SignalPhotometric    = "photometric"
)

// Other is the category of every value a calibration did not see (or saw
// too rarely to keep), and Unknown that of a film without the attribute.
const (
	Other   = "other"
	Unknown = "unknown"
)

// Bins is the number of quantile bins a numeric signal is profiled in, and
// TopN the most categories kept per categorical signal (the bound on the
// metrics' label values).
const (
	Bins = 10
	TopN = 12
)

// Profile is the calibration distribution of a model, stored in its
// manifest under "drift".
type Profile struct {
	CalibratedOn string `json:"calibrated_on"`
	Films        int    `json:"films"`
	// Numeric signals: score (this model's P(COVID-19)), mean, spread,
	// pixel_spacing (absent when no calibration film had one).
	Numeric map[string]*Hist `json:"numeric"`
	// Categorical signals: the share of each value seen (the TopN most
	// frequent; the rest are "other").
	Categorical map[string]map[string]float64 `json:"categorical,omitempty"`
}

// Hist is a numeric signal's calibration distribution over quantile bins:
// bin i holds values v with Cuts[i-1] <= v < Cuts[i].
type Hist struct {
	Cuts     []float64 `json:"cuts"`
	Expected []float64 `json:"expected"` // share of calibration films per bin, len(Cuts)+1
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	N        int       `json:"n"`
}

// Bin is the bin of v.
func (h *Hist) Bin(v float64) int {
	return sort.Search(len(h.Cuts), func(i int) bool { return h.Cuts[i] > v })
}

// NewHist profiles values in at most bins quantile bins. Ties collapse
// bins, so a signal with few distinct values gets fewer.
func NewHist(values []float64, bins int) *Hist {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return nil
	}
	sort.Float64s(v)
	h := &Hist{Min: v[0], Max: v[len(v)-1], N: len(v)}
	for k := 1; k < bins; k++ {
		c := v[k*len(v)/bins]
		if c > v[0] && (len(h.Cuts) == 0 || c > h.Cuts[len(h.Cuts)-1]) {
			h.Cuts = append(h.Cuts, c)
		}
	}
	h.Expected = make([]float64, len(h.Cuts)+1)
	for _, x := range v {
		h.Expected[h.Bin(x)]++
	}
	for i := range h.Expected {
		h.Expected[i] /= float64(len(v))
	}
	return h
}

func (h *Hist) check() error {
	if len(h.Expected) != len(h.Cuts)+1 {
		return fmt.Errorf("%d expected shares for %d cuts", len(h.Expected), len(h.Cuts))
	}
	for i, c := range h.Cuts {
		if math.IsNaN(c) || math.IsInf(c, 0) || (i > 0 && !(c > h.Cuts[i-1])) {
			return fmt.Errorf("cuts not finite and ascending at %d", i)
		}
	}
	sum := 0.0
	for _, e := range h.Expected {
		if !(e >= 0 && e <= 1) {
			return fmt.Errorf("share %g outside 0..1", e)
		}
		sum += e
	}
	if math.Abs(sum-1) > 1e-6 {
		return fmt.Errorf("shares sum to %g, not 1", sum)
	}
	return nil
}

// Check reports a malformed profile (a hand-edited manifest).
func (p *Profile) Check() error {
	var probs []string
	for name, h := range p.Numeric {
		if h == nil {
			probs = append(probs, "numeric."+name+": empty")
			continue
		}
		if err := h.check(); err != nil {
			probs = append(probs, "numeric."+name+": "+err.Error())
		}
	}
	for name, c := range p.Categorical {
		if len(c) > TopN+1 {
			probs = append(probs, fmt.Sprintf("categorical.%s: %d values, at most %d", name, len(c), TopN+1))
		}
		for _, v := range c {
			if !(v >= 0 && v <= 1) {
				probs = append(probs, fmt.Sprintf("categorical.%s: share %g outside 0..1", name, v))
				break
			}
		}
	}
	if len(probs) > 0 {
		sort.Strings(probs)
		return fmt.Errorf("drift profile: %s", strings.Join(probs, "; "))
	}
	return nil
}

// Sample is what one film contributes to a profile or a watch. Zero
// PixelSpacing means none; empty categorical values are Unknown.
type Sample struct {
	Score          float64 // this model's (or the ensemble's) P(COVID-19)
	Stats          Stats
	PixelSpacing   float64
	Manufacturer   string
	Model          string
	TransferSyntax string
	Photometric    string
}

func (s Sample) categories() map[string]string {
	return map[string]string{
		SignalManufacturer:   category(s.Manufacturer),
		SignalModel:          category(s.Model),
		SignalTransferSyntax: category(s.TransferSyntax),
		SignalPhotometric:    category(s.Photometric),
	}
}

// category normalises a header value to a bounded label: trimmed, at most
// 64 bytes of printable ASCII.
func category(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return Unknown
	}
	b := make([]byte, 0, min(len(v), 64))
	for i := 0; i < len(v) && len(b) < 64; i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// NewProfile builds a calibration profile from the scored films of a
// calibration set. Categorical signals every film lacks (plain JPEG
// calibration images have no header) are left out, and so are numeric ones.
func NewProfile(on string, samples []Sample) *Profile {
	p := &Profile{CalibratedOn: on, Films: len(samples), Numeric: map[string]*Hist{}, Categorical: map[string]map[string]float64{}}
	var score, mean, spread, spacing []float64
	counts := map[string]map[string]int{}
	for _, s := range samples {
		score = append(score, s.Score)
		mean = append(mean, s.Stats.Mean)
		spread = append(spread, s.Stats.Spread)
		if s.PixelSpacing > 0 {
			spacing = append(spacing, s.PixelSpacing)
		}
		for sig, v := range s.categories() {
			if counts[sig] == nil {
				counts[sig] = map[string]int{}
			}
			counts[sig][v]++
		}
	}
	for name, v := range map[string][]float64{SignalScore: score, SignalMean: mean, SignalSpread: spread, SignalPixelSpacing: spacing} {
		if h := NewHist(v, Bins); h != nil {
			p.Numeric[name] = h
		}
	}
	for sig, c := range counts {
		if len(c) == 1 && c[Unknown] > 0 {
			continue // no calibration film had it
		}
		p.Categorical[sig] = topShares(c, len(samples))
	}
	return p
}

// topShares keeps the TopN most frequent values (ties by name), the rest
// summed as Other.
func topShares(c map[string]int, total int) map[string]float64 {
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range c {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].k < all[j].k
	})
	out := map[string]float64{}
	for i, e := range all {
		k := e.k
		if i >= TopN {
			k = Other
		}
		out[k] += float64(e.n) / float64(total)
	}
	return out
}

// floor keeps empty bins from making the index infinite: a bin no
// calibration film (or no recent film) fell in counts as this share.
const floor = 1e-3

// PSI is the population stability index of actual shares against expected
// ones, bin by bin: sum of (a-e) ln(a/e). Below 0.1 is usually read as
// stable, 0.1 to 0.25 as a moderate shift, above 0.25 as a major one.
func PSI(expected, actual []float64) float64 {
	psi := 0.0
	for i := range expected {
		e, a := math.Max(expected[i], floor), math.Max(actual[i], floor)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}
