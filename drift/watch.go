package drift

import (
	"maps"
	"slices"
	"sort"
	"sync"
)

// Options tune a Watch.
type Options struct {
	Window   int     // the most recent films compared (e.g. 500)
	MinFilms int     // no index before this many films (e.g. 100)
	Level    float64 // an index at or above this is drift (e.g. 0.25)
}

// Watch compares a rolling window of recent films with a calibration
// profile. It is safe for concurrent use; memory is bounded by the window
// and the number of signals.
type Watch struct {
	opt Options
	// profiled: there is a calibration profile at all; without one no
	// value counts as unseen (nothing to compare with).
	profiled bool
	mu       sync.Mutex
	num      map[string]*numSeries
	cat      map[string]*catSeries
}

type numSeries struct {
	h      *Hist
	ring   []int // bin of each film in the window, oldest overwritten
	counts []int
	n, pos int
}

func (s *numSeries) add(bin int) {
	if s.n == len(s.ring) {
		s.counts[s.ring[s.pos]]--
	} else {
		s.n++
	}
	s.ring[s.pos] = bin
	s.counts[bin]++
	s.pos = (s.pos + 1) % len(s.ring)
}

func (s *numSeries) psi() float64 {
	a := make([]float64, len(s.counts))
	for i, c := range s.counts {
		a[i] = float64(c) / float64(s.n)
	}
	return PSI(s.h.Expected, a)
}

type catSeries struct {
	calibrated bool            // the calibration saw this signal at all
	keys       []string        // calibration values (sorted) then Other
	expected   []float64       // per key
	labels     map[string]bool // values with their own metric label (bounded by TopN)
	logged     map[string]bool // unseen values already reported (bounded)
	num        numSeries       // bins are key indices
	index      map[string]int
}

// NewWatch builds a watch over the input signals of profile (mean, spread,
// pixel spacing, categorical) and the score histograms of scores (by
// signal name, e.g. "score:squeezenet1_1"). A nil profile watches nothing
// and reports nothing unseen, but still bounds the categories' labels.
func NewWatch(profile *Profile, scores map[string]*Hist, o Options) *Watch {
	if o.Window < 1 {
		o.Window = 500
	}
	if o.MinFilms < 1 || o.MinFilms > o.Window {
		o.MinFilms = min(100, o.Window)
	}
	w := &Watch{opt: o, num: map[string]*numSeries{}, cat: map[string]*catSeries{}}
	addNum := func(name string, h *Hist) {
		if h != nil && h.check() == nil {
			w.num[name] = &numSeries{h: h, ring: make([]int, o.Window), counts: make([]int, len(h.Expected))}
		}
	}
	for name, h := range scores {
		addNum(name, h)
	}
	var cal map[string]map[string]float64
	if profile != nil {
		for _, name := range []string{SignalMean, SignalSpread, SignalPixelSpacing} {
			addNum(name, profile.Numeric[name])
		}
		cal = profile.Categorical
		w.profiled = true
	}
	for _, sig := range []string{SignalManufacturer, SignalModel, SignalTransferSyntax, SignalPhotometric} {
		c := &catSeries{labels: map[string]bool{}, logged: map[string]bool{}, index: map[string]int{}}
		if exp, ok := cal[sig]; ok && len(exp) > 0 {
			c.calibrated = true
			keys := slices.Sorted(maps.Keys(exp))
			keys = slices.DeleteFunc(keys, func(k string) bool { return k == Other })
			for _, k := range keys {
				c.labels[k] = true
			}
			c.keys = append(keys, Other)
			for i, k := range c.keys {
				c.index[k] = i
				c.expected = append(c.expected, exp[k])
			}
			c.num = numSeries{h: &Hist{Expected: c.expected}, ring: make([]int, o.Window), counts: make([]int, len(c.keys))}
		}
		w.cat[sig] = c
	}
	return w
}

// Observation is what a watch made of one film.
type Observation struct {
	// Labels are the film's categorical values as metric labels: a value
	// the calibration saw, else Other (bounded whatever senders write).
	Labels map[string]string
	// Unseen names the signals whose value the calibration never saw.
	Unseen []string
	// FirstUnseen are the unseen values reported for the first time (at
	// most TopN per signal), by signal: worth one log line each.
	FirstUnseen map[string]string
}

// Observe adds one film: scores by score signal name (as given to
// NewWatch), the rest from s.
func (w *Watch) Observe(s Sample, scores map[string]float64) Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, v := range scores {
		if ns := w.num[name]; ns != nil {
			ns.add(ns.h.Bin(v))
		}
	}
	for name, v := range map[string]float64{SignalMean: s.Stats.Mean, SignalSpread: s.Stats.Spread, SignalPixelSpacing: s.PixelSpacing} {
		if ns := w.num[name]; ns != nil && (name != SignalPixelSpacing || v > 0) {
			ns.add(ns.h.Bin(v))
		}
	}
	ob := Observation{Labels: map[string]string{}}
	for sig, v := range s.categories() {
		c := w.cat[sig]
		_, seen := c.index[v]
		seen = seen && v != Other
		if c.calibrated {
			k := Other
			if seen {
				k = v
			}
			c.num.add(c.index[k])
		}
		if !seen && w.profiled {
			ob.Unseen = append(ob.Unseen, sig)
			if !c.logged[v] && len(c.logged) < TopN {
				c.logged[v] = true
				if ob.FirstUnseen == nil {
					ob.FirstUnseen = map[string]string{}
				}
				ob.FirstUnseen[sig] = v
			}
		}
		// Without calibration data for the signal, the first TopN values
		// seen get their own label: bounded, and still informative.
		if !c.calibrated && !c.labels[v] && len(c.labels) < TopN {
			c.labels[v] = true
		}
		if c.labels[v] {
			ob.Labels[sig] = v
		} else {
			ob.Labels[sig] = Other
		}
	}
	sort.Strings(ob.Unseen)
	return ob
}

// PSI is the population stability index of every signal with at least
// MinFilms films in the window.
func (w *Watch) PSI() map[string]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]float64{}
	for name, ns := range w.num {
		if ns.n >= w.opt.MinFilms {
			out[name] = ns.psi()
		}
	}
	for name, c := range w.cat {
		if c.calibrated && c.num.n >= w.opt.MinFilms {
			out[name] = c.num.psi()
		}
	}
	return out
}

// Drifting names the signals whose index is at or above the level, sorted.
func (w *Watch) Drifting() []string {
	var out []string
	for name, v := range w.PSI() {
		if v >= w.opt.Level {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Signals names every signal the watch can compute an index for.
func (w *Watch) Signals() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Collect(maps.Keys(w.num))
	for name, c := range w.cat {
		if c.calibrated {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
