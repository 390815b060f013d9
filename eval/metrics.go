// Package eval measures the models the way the Deep-COVID paper reports
// them (sensitivity and specificity at operating points, ROC and
// precision-recall curves, score histograms, confusion matrices) through the
// daemon's own decode, preprocessing and ONNX Runtime path, and derives
// operating thresholds from labeled data.
package eval

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Scored is one labeled score.
type Scored struct {
	Score    float64
	Positive bool
}

// AUC is the area under the ROC curve, by the rank statistic (ties count
// half), NaN when a class is missing.
func AUC(s []Scored) float64 {
	xs := append([]Scored(nil), s...)
	sort.Slice(xs, func(i, j int) bool { return xs[i].Score < xs[j].Score })
	var npos, nneg float64
	for _, x := range xs {
		if x.Positive {
			npos++
		} else {
			nneg++
		}
	}
	if npos == 0 || nneg == 0 {
		return math.NaN()
	}
	rankSum := 0.0
	for i := 0; i < len(xs); {
		j := i
		for j < len(xs) && xs[j].Score == xs[i].Score {
			j++
		}
		avg := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if xs[k].Positive {
				rankSum += avg
			}
		}
		i = j
	}
	return (rankSum - npos*(npos+1)/2) / (npos * nneg)
}

// Point is one operating point of a curve.
type Point struct {
	Threshold float64 `json:"threshold"`
	X         float64 `json:"x"`
	Y         float64 `json:"y"`
}

// ROC returns the ROC curve (x = 1-specificity, y = sensitivity) from the
// highest threshold down, one point per distinct score.
func ROC(s []Scored) []Point {
	steps, P, N := cumulative(s)
	pts := []Point{{Threshold: math.Inf(1), X: 0, Y: 0}}
	for _, c := range steps {
		pts = append(pts, Point{Threshold: c.threshold, X: safeDiv(c.fp, N), Y: safeDiv(c.tp, P)})
	}
	return pts
}

// PR returns the precision-recall curve (x = recall, y = precision).
func PR(s []Scored) []Point {
	steps, P, _ := cumulative(s)
	var pts []Point
	for _, c := range steps {
		pts = append(pts, Point{Threshold: c.threshold, X: safeDiv(c.tp, P), Y: safeDiv(c.tp, c.tp+c.fp)})
	}
	return pts
}

// count is how many positives and negatives score at or above threshold.
type count struct{ threshold, tp, fp float64 }

// cumulative walks the scores from the highest down, one count per
// distinct score; the last count's totals are the numbers of positives P
// and negatives N.
func cumulative(s []Scored) (counts []count, P, N float64) {
	xs := sortedDesc(s)
	var tp, fp float64
	for i := 0; i < len(xs); {
		j := i
		for ; j < len(xs) && xs[j].Score == xs[i].Score; j++ {
			if xs[j].Positive {
				tp++
			} else {
				fp++
			}
		}
		counts = append(counts, count{xs[i].Score, tp, fp})
		i = j
	}
	return counts, tp, fp
}

// AveragePrecision is sum over thresholds of (R_n - R_{n-1}) * P_n, the
// step-wise definition scikit-learn uses.
func AveragePrecision(s []Scored) float64 {
	ap, prev := 0.0, 0.0
	for _, p := range PR(s) {
		ap += (p.X - prev) * p.Y
		prev = p.X
	}
	return ap
}

func sortedDesc(s []Scored) []Scored {
	xs := append([]Scored(nil), s...)
	sort.SliceStable(xs, func(i, j int) bool { return xs[i].Score > xs[j].Score })
	return xs
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Confusion counts at a threshold (positive when score >= threshold).
type Confusion struct {
	TP int `json:"tp"`
	FN int `json:"fn"`
	FP int `json:"fp"`
	TN int `json:"tn"`
}

// At computes the confusion matrix at threshold t.
func At(s []Scored, t float64) Confusion {
	var c Confusion
	for _, x := range s {
		switch {
		case x.Positive && x.Score >= t:
			c.TP++
		case x.Positive:
			c.FN++
		case x.Score >= t:
			c.FP++
		default:
			c.TN++
		}
	}
	return c
}

// Proportion is an estimate with its 95% Wilson score interval.
type Proportion struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	K     int     `json:"k"`
	N     int     `json:"n"`
}

// Wilson returns k/n with its 95% Wilson score interval, which stays inside
// [0, 1] and behaves at 0% and 100%, where the normal approximation fails.
func Wilson(k, n int) Proportion {
	if n == 0 {
		return Proportion{Value: math.NaN(), Low: math.NaN(), High: math.NaN()}
	}
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	fn := float64(n)
	den := 1 + z*z/fn
	c := (p + z*z/(2*fn)) / den
	h := z * math.Sqrt(p*(1-p)/fn+z*z/(4*fn*fn)) / den
	return Proportion{Value: p, Low: math.Max(0, c-h), High: math.Min(1, c+h), K: k, N: n}
}

// Sensitivity and Specificity of a confusion matrix, with intervals.
func (c Confusion) Sensitivity() Proportion { return Wilson(c.TP, c.TP+c.FN) }
func (c Confusion) Specificity() Proportion { return Wilson(c.TN, c.TN+c.FP) }

// AUCInterval is a 95% percentile bootstrap interval of the AUC, resampling
// positives and negatives separately (seeded, so reports are reproducible).
func AUCInterval(s []Scored, rounds int, seed uint64) (lo, hi float64) {
	var pos, neg []Scored
	for _, x := range s {
		if x.Positive {
			pos = append(pos, x)
		} else {
			neg = append(neg, x)
		}
	}
	if len(pos) == 0 || len(neg) == 0 || rounds < 10 {
		return math.NaN(), math.NaN()
	}
	r := rand.New(rand.NewPCG(seed, 0x7269616765))
	aucs := make([]float64, rounds)
	buf := make([]Scored, 0, len(s))
	for i := range aucs {
		buf = buf[:0]
		for range pos {
			buf = append(buf, pos[r.IntN(len(pos))])
		}
		for range neg {
			buf = append(buf, neg[r.IntN(len(neg))])
		}
		aucs[i] = AUC(buf)
	}
	sort.Float64s(aucs)
	return aucs[int(0.025*float64(rounds))], aucs[int(math.Ceil(0.975*float64(rounds)))-1]
}

// Thresholds are calibrated operating points.
type Thresholds struct {
	Urgent              float64 `json:"urgent"`
	Critical            float64 `json:"critical"`
	UrgentSensitivity   float64 `json:"urgent_sensitivity"`
	CriticalSpecificity float64 `json:"critical_specificity"`
}

// Calibrate chooses the urgent threshold as the largest t with sensitivity
// (score >= t) >= sens, and the critical threshold as the smallest t with
// specificity >= spec: just above the score of the last negative allowed to
// be a false positive. Critical is never below urgent. It is the same rule as
// training/export.py, so the manifests' thresholds can be re-derived here.
func Calibrate(s []Scored, sens, spec float64) (Thresholds, bool) {
	var pos, neg []float64
	for _, x := range s {
		if x.Positive {
			pos = append(pos, x.Score)
		} else {
			neg = append(neg, x.Score)
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return Thresholds{}, false
	}
	sort.Float64s(pos)
	sort.Sort(sort.Reverse(sort.Float64Slice(neg)))
	k := int(math.Floor((1-sens)*float64(len(pos)) + 1e-9))
	urgent := pos[min(k, len(pos)-1)]
	m := int(math.Floor((1-spec)*float64(len(neg)) + 1e-9))
	critical := 0.0
	if m < len(neg) {
		critical = math.Nextafter(neg[m], 1)
	}
	critical = math.Max(critical, urgent)
	c := At(s, urgent)
	d := At(s, critical)
	return Thresholds{Urgent: urgent, Critical: critical,
		UrgentSensitivity: c.Sensitivity().Value, CriticalSpecificity: d.Specificity().Value}, true
}
