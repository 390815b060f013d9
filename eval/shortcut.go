package eval

// Shortcut checks (issue 19): does a model look at the lungs or at where a
// film came from? The border test masks the outer band of the model's crop,
// where laterality markers, text and tube labels sit; a model of the lungs
// barely moves. The source probe asks how well a linear classifier on the
// model's pooled features tells the image's source within one class; a
// model that learned disease should tell sources apart poorly.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/triaged/triaged/preprocess"
)

// Scorer scores n normalised inputs laid out one after another (NCHW), one
// P(COVID-19) each. triage.Model.Run fits with a small adapter.
type Scorer func(x []float32, n int) ([]float64, error)

// BorderBand is the band width in pixels of the 224x224 crop for a fraction.
func BorderBand(frac float64) int {
	return int(math.Round(frac * preprocess.Size))
}

// MaskBorder sets the outer band of a normalised input to zero, the
// ImageNet mean (heatmap.Fill{Mean: true}, train.py --margin-mask).
func MaskBorder(x []float32, band int) {
	s := preprocess.Size
	for c := range 3 {
		p := x[c*s*s : (c+1)*s*s]
		for y := range s {
			row := p[y*s : (y+1)*s]
			if y < band || y >= s-band {
				clear(row)
				continue
			}
			clear(row[:band])
			clear(row[s-band:])
		}
	}
}

// BorderResult is the border test of one model.
type BorderResult struct {
	Model         string  `json:"model"`
	Fraction      float64 `json:"band_fraction"`
	BandPixels    int     `json:"band_pixels"`
	Films         int     `json:"films"`
	MeanAbsChange float64 `json:"mean_abs_change"`
	MeanAbsLow    float64 `json:"mean_abs_change_ci_low"`
	MeanAbsHigh   float64 `json:"mean_abs_change_ci_high"`
	MeanChange    float64 `json:"mean_change"` // masked minus original
	MaxAbsChange  float64 `json:"max_abs_change"`
	Urgent        float64 `json:"urgent_threshold"`
	// Positives at or above the urgent threshold before, and of those how
	// many fall below it once the border is masked.
	PositivesUrgent     int `json:"positives_urgent"`
	PositivesFellBelow  int `json:"positives_fell_below_urgent"`
	NegativesUrgent     int `json:"negatives_urgent"`
	NegativesUrgentMask int `json:"negatives_urgent_masked"`
}

// Border runs the border test: xs are the films' normalised inputs (each
// preprocess.TensorLen), pos their labels, orig each film's unmasked score.
func Border(model string, score Scorer, xs [][]float32, pos []bool, orig []float64, frac, urgent float64) (BorderResult, error) {
	r := BorderResult{Model: model, Fraction: frac, BandPixels: BorderBand(frac), Films: len(xs), Urgent: urgent}
	if len(xs) == 0 {
		return r, fmt.Errorf("border test of %s: no films", model)
	}
	const batch = 16
	diffs := make([]float64, 0, len(xs))
	buf := make([]float32, 0, batch*preprocess.TensorLen)
	for i := 0; i < len(xs); i += batch {
		j := min(i+batch, len(xs))
		buf = buf[:0]
		for _, x := range xs[i:j] {
			buf = append(buf, x...)
		}
		for k := range j - i {
			MaskBorder(buf[k*preprocess.TensorLen:(k+1)*preprocess.TensorLen], r.BandPixels)
		}
		ps, err := score(buf, j-i)
		if err != nil {
			return r, fmt.Errorf("border test of %s: %w", model, err)
		}
		for k, p := range ps {
			f := i + k
			d := p - orig[f]
			diffs = append(diffs, d)
			r.MeanChange += d
			r.MaxAbsChange = max(r.MaxAbsChange, math.Abs(d))
			if pos[f] {
				if orig[f] >= urgent {
					r.PositivesUrgent++
					if p < urgent {
						r.PositivesFellBelow++
					}
				}
			} else {
				if orig[f] >= urgent {
					r.NegativesUrgent++
				}
				if p >= urgent {
					r.NegativesUrgentMask++
				}
			}
		}
	}
	abs := make([]float64, len(diffs))
	for i, d := range diffs {
		abs[i] = math.Abs(d)
	}
	r.MeanChange /= float64(len(diffs))
	r.MeanAbsChange = mean(abs)
	r.MeanAbsLow, r.MeanAbsHigh = bootstrapMean(abs, 2000, 20201)
	return r, nil
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// bootstrapMean is the 95% percentile bootstrap interval of a mean.
func bootstrapMean(v []float64, rounds int, seed uint64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	ms := make([]float64, rounds)
	for r := range ms {
		s := 0.0
		for range v {
			s += v[rng.IntN(len(v))]
		}
		ms[r] = s / float64(len(v))
	}
	sort.Float64s(ms)
	return ms[int(0.025*float64(rounds))], ms[int(0.975*float64(rounds))-1]
}

// ProbeResult is the source probe within one class.
type ProbeResult struct {
	Model   string   `json:"model"`
	Class   string   `json:"class"`
	Images  int      `json:"images"`
	Sources []string `json:"sources"` // those with fewer than MinSourceImages are pooled as "(other)"
	Counts  []int    `json:"counts"`
	Folds   int      `json:"folds"`
	// Accuracy of the cross-validated probe (each image predicted by a probe
	// trained without its patient), with its Wilson 95% interval; Chance is
	// the share of the largest source, what predicting it always scores.
	Accuracy         Proportion `json:"accuracy"`
	Chance           float64    `json:"chance"`
	BalancedAccuracy float64    `json:"balanced_accuracy"`
	// AUC of the probe's out-of-fold probability of the largest source
	// against the rest, with its bootstrap 95% interval.
	AUC     float64 `json:"auc_largest_vs_rest"`
	AUCLow  float64 `json:"auc_ci_low"`
	AUCHigh float64 `json:"auc_ci_high"`
	Skipped string  `json:"skipped,omitempty"`
}

// MinSourceImages is the fewest images a source needs within a class to be
// a class of its own in the probe.
const MinSourceImages = 5

// ProbeItem is one image for the source probe.
type ProbeItem struct {
	Features []float64
	Positive bool
	Source   string
	Patient  string
}

// SourceProbe runs the probe within each class: a multinomial logistic
// regression (L2, standardised features) predicting the source,
// cross-validated over folds grouped by patient so no patient is on both
// sides.
func SourceProbe(model string, items []ProbeItem, folds int, l2 float64) []ProbeResult {
	var out []ProbeResult
	for _, cls := range []bool{true, false} {
		name := "non"
		if cls {
			name = "covid"
		}
		var xs [][]float64
		var srcs, pats []string
		for _, it := range items {
			if it.Positive == cls {
				xs = append(xs, it.Features)
				srcs = append(srcs, it.Source)
				pats = append(pats, it.Patient)
			}
		}
		out = append(out, probeClass(model, name, xs, srcs, pats, folds, l2))
	}
	return out
}

func probeClass(model, class string, xs [][]float64, srcs, pats []string, folds int, l2 float64) ProbeResult {
	r := ProbeResult{Model: model, Class: class, Images: len(xs), Folds: folds}
	count := map[string]int{}
	for _, s := range srcs {
		count[s]++
	}
	label := map[string]string{}
	for s, n := range count {
		label[s] = s
		if n < MinSourceImages {
			label[s] = "(other)"
		}
	}
	cnt := map[string]int{}
	for _, s := range srcs {
		cnt[label[s]]++
	}
	for s := range cnt {
		r.Sources = append(r.Sources, s)
	}
	sort.Slice(r.Sources, func(i, j int) bool {
		a, b := r.Sources[i], r.Sources[j]
		if cnt[a] != cnt[b] {
			return cnt[a] > cnt[b]
		}
		return a < b
	})
	idx := map[string]int{}
	for i, s := range r.Sources {
		idx[s] = i
		r.Counts = append(r.Counts, cnt[s])
	}
	if len(r.Sources) < 2 {
		r.Skipped = "fewer than two sources with enough images"
		return r
	}
	y := make([]int, len(xs))
	for i, s := range srcs {
		y[i] = idx[label[s]]
	}
	r.Chance = float64(r.Counts[0]) / float64(len(xs))
	// Folds by patient: a patient's images (Cohen has several per patient)
	// must not train the probe that predicts them.
	fold := map[string]int{}
	var plist []string
	for i, p := range pats {
		if p == "" {
			p = fmt.Sprintf("#%d", i)
			pats[i] = p
		}
		if _, ok := fold[p]; !ok {
			fold[p] = -1
			plist = append(plist, p)
		}
	}
	sort.Strings(plist)
	rng := rand.New(rand.NewPCG(20201, 2))
	rng.Shuffle(len(plist), func(i, j int) { plist[i], plist[j] = plist[j], plist[i] })
	for i, p := range plist {
		fold[p] = i % folds
	}
	k := len(r.Sources)
	pred := make([]int, len(xs))
	pTop := make([]float64, len(xs))
	for f := range folds {
		var tr, te []int
		for i := range xs {
			if fold[pats[i]] == f {
				te = append(te, i)
			} else {
				tr = append(tr, i)
			}
		}
		if len(te) == 0 || len(tr) == 0 {
			continue
		}
		w, mu, sd := fitSoftmax(xs, y, tr, k, l2)
		for _, i := range te {
			p := softmaxProbs(w, standardise(xs[i], mu, sd), k)
			best := 0
			for c := range p {
				if p[c] > p[best] {
					best = c
				}
			}
			pred[i], pTop[i] = best, p[0]
		}
	}
	correct := 0
	per := make([]int, k)
	for i := range xs {
		if pred[i] == y[i] {
			correct++
			per[y[i]]++
		}
	}
	r.Accuracy = Wilson(correct, len(xs))
	for c := range k {
		r.BalancedAccuracy += float64(per[c]) / float64(r.Counts[c]) / float64(k)
	}
	sc := make([]Scored, len(xs))
	for i := range xs {
		sc[i] = Scored{Score: pTop[i], Positive: y[i] == 0}
	}
	r.AUC = AUC(sc)
	r.AUCLow, r.AUCHigh = AUCInterval(sc, 2000, 20201)
	return r
}

func standardise(x, mu, sd []float64) []float64 {
	z := make([]float64, len(x))
	for j := range x {
		z[j] = (x[j] - mu[j]) / sd[j]
	}
	return z
}

// fitSoftmax fits W (k x (d+1), the last column the bias) by full-batch
// gradient descent on the mean cross-entropy plus l2/2 |W|^2 (bias not
// penalised), on features standardised with the training rows' statistics.
func fitSoftmax(xs [][]float64, y []int, rows []int, k int, l2 float64) (w [][]float64, mu, sd []float64) {
	d := len(xs[0])
	mu, sd = make([]float64, d), make([]float64, d)
	for _, i := range rows {
		for j, v := range xs[i] {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(len(rows))
	}
	for _, i := range rows {
		for j, v := range xs[i] {
			sd[j] += (v - mu[j]) * (v - mu[j])
		}
	}
	for j := range sd {
		sd[j] = math.Sqrt(sd[j]/float64(len(rows))) + 1e-6
	}
	z := make([][]float64, len(rows))
	for n, i := range rows {
		z[n] = standardise(xs[i], mu, sd)
	}
	w = make([][]float64, k)
	for c := range w {
		w[c] = make([]float64, d+1)
	}
	g := make([][]float64, k)
	for c := range g {
		g[c] = make([]float64, d+1)
	}
	const steps, lr = 400, 0.1
	inv := 1 / float64(len(rows))
	for range steps {
		for c := range g {
			clear(g[c])
		}
		for n, i := range rows {
			p := softmaxProbs(w, z[n], k)
			for c := range k {
				e := p[c]
				if c == y[i] {
					e--
				}
				e *= inv
				gc := g[c]
				for j, v := range z[n] {
					gc[j] += e * v
				}
				gc[d] += e
			}
		}
		for c := range k {
			for j := range d {
				w[c][j] -= lr * (g[c][j] + l2*w[c][j])
			}
			w[c][d] -= lr * g[c][d]
		}
	}
	return w, mu, sd
}

func softmaxProbs(w [][]float64, z []float64, k int) []float64 {
	d := len(z)
	p := make([]float64, k)
	m := math.Inf(-1)
	for c := range k {
		s := w[c][d]
		for j, v := range z {
			s += w[c][j] * v
		}
		p[c] = s
		m = max(m, s)
	}
	t := 0.0
	for c := range p {
		p[c] = math.Exp(p[c] - m)
		t += p[c]
	}
	for c := range p {
		p[c] /= t
	}
	return p
}

// ShortcutMarkdown renders the border test and the source probe.
func ShortcutMarkdown(within []WithinResult, border []BorderResult, probe []ProbeResult) string {
	var b strings.Builder
	if len(within) > 0 {
		b.WriteString("\nWithin-source AUC: positive/negative pairs of the same source only (pair-weighted over the sources with both classes; 95% bootstrap within each source).\n\n| model | within-source AUC [95% CI] | sources | pairs |\n|---|---|---|---|\n")
		for _, w := range within {
			fmt.Fprintf(&b, "| %s | %s [%s, %s] | %d | %d |\n", w.Model, num(w.AUC), num(w.Low), num(w.High), w.Sources, w.Pairs)
		}
	}
	if len(border) > 0 {
		fmt.Fprintf(&b, "\nBorder test: P(COVID-19) when the outer %.0f%% band of the 224x224 crop (%d px) is replaced by the mean (a model of the lungs barely moves; target mean |change| <= 0.03).\n\n",
			border[0].Fraction*100, border[0].BandPixels)
		b.WriteString("| model | films | mean abs change [95% CI] | mean change | largest abs change | positives >= urgent that fall below | negatives >= urgent before -> after |\n|---|---|---|---|---|---|---|\n")
		for _, r := range border {
			fmt.Fprintf(&b, "| %s | %d | %.3f [%.3f, %.3f] | %+.3f | %.3f | %d of %d | %d -> %d |\n", r.Model, r.Films, r.MeanAbsChange, r.MeanAbsLow, r.MeanAbsHigh,
				r.MeanChange, r.MaxAbsChange, r.PositivesFellBelow, r.PositivesUrgent, r.NegativesUrgent, r.NegativesUrgentMask)
		}
	}
	if len(probe) > 0 {
		b.WriteString("\nSource probe: a logistic regression on the model's pooled features predicting the image's source within one class, cross-validated with folds by patient (a model of disease predicts source poorly; chance = always the largest source).\n\n")
		b.WriteString("| model | class | sources (images) | accuracy [95% CI] | chance | balanced accuracy | AUC largest source vs rest [95% CI] |\n|---|---|---|---|---|---|---|\n")
		for _, r := range probe {
			var ss []string
			for i, s := range r.Sources {
				ss = append(ss, fmt.Sprintf("%s (%d)", s, r.Counts[i]))
			}
			if r.Skipped != "" {
				fmt.Fprintf(&b, "| %s | %s | %s | skipped: %s | | | |\n", r.Model, r.Class, strings.Join(ss, ", "), r.Skipped)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f%% | %.1f%% | %s [%s, %s] |\n", r.Model, r.Class, strings.Join(ss, ", "),
				pct(r.Accuracy), 100*r.Chance, 100*r.BalancedAccuracy, num(r.AUC), num(r.AUCLow), num(r.AUCHigh))
		}
	}
	return b.String()
}

// WithinResult is a model's AUC over positive/negative pairs of the same
// source only: what is left when telling sources apart earns nothing.
type WithinResult struct {
	Model   string  `json:"model"`
	AUC     float64 `json:"within_source_auc"`
	Low     float64 `json:"ci_low"`
	High    float64 `json:"ci_high"`
	Pairs   int     `json:"pairs"`
	Sources int     `json:"sources_with_both_classes"`
}

// WithinSourceAUC is the pair-weighted mean of the per-source AUCs over the
// sources that have both classes, with a 95% bootstrap interval resampling
// positives and negatives within each source (seeded).
func WithinSourceAUC(model string, s []Scored, srcs []string) WithinResult {
	r := WithinResult{Model: model, AUC: math.NaN(), Low: math.NaN(), High: math.NaN()}
	type group struct{ pos, neg []Scored }
	by := map[string]*group{}
	for i, x := range s {
		g := by[srcs[i]]
		if g == nil {
			g = &group{}
			by[srcs[i]] = g
		}
		if x.Positive {
			g.pos = append(g.pos, x)
		} else {
			g.neg = append(g.neg, x)
		}
	}
	var gs []*group
	var names []string
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if g := by[n]; len(g.pos) > 0 && len(g.neg) > 0 {
			gs = append(gs, g)
			r.Pairs += len(g.pos) * len(g.neg)
		}
	}
	r.Sources = len(gs)
	if len(gs) == 0 {
		return r
	}
	pooled := func(pick func([]Scored) []Scored) float64 {
		num, den := 0.0, 0.0
		for _, g := range gs {
			w := float64(len(g.pos) * len(g.neg))
			num += AUC(append(pick(g.pos), pick(g.neg)...)) * w
			den += w
		}
		return num / den
	}
	r.AUC = pooled(func(v []Scored) []Scored { return append([]Scored(nil), v...) })
	rng := rand.New(rand.NewPCG(20201, 3))
	const rounds = 2000
	aucs := make([]float64, rounds)
	for i := range aucs {
		aucs[i] = pooled(func(v []Scored) []Scored {
			out := make([]Scored, len(v))
			for k := range out {
				out[k] = v[rng.IntN(len(v))]
			}
			return out
		})
	}
	sort.Float64s(aucs)
	r.Low, r.High = aucs[int(0.025*rounds)], aucs[int(math.Ceil(0.975*rounds))-1]
	return r
}
