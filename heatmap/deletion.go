package heatmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/triaged/triaged/preprocess"
)

// Random is the name of the random-region baseline in deletion results.
const Random = "random"

// DeletionOptions configure the faithfulness check.
type DeletionOptions struct {
	// Fractions of the 224x224 input deleted, ascending, each in (0, 1).
	// The curve also has the unmasked point (0).
	Fractions []float64
	// RandomDraws is the number of random masks per film and fraction.
	RandomDraws int
	// RandomGrid is the side of the grid the random maps are drawn on
	// before upsampling: random blobs about as coarse as a CAM, not salt
	// and pepper, so the baseline deletes regions of the same kind of shape
	// as a heatmap's top pixels.
	RandomGrid int
	Seed       uint64
	Fill       Fill
	BatchSize  int
}

// DefaultDeletion is the setting `triaged heatmap-check` uses.
var DefaultDeletion = DeletionOptions{
	Fractions:   []float64{0.05, 0.1, 0.2, 0.3, 0.5},
	RandomDraws: 4,
	RandomGrid:  7,
	Seed:        1,
	Fill:        Fill{Mean: true},
	BatchSize:   16,
}

// DeletionFilm is one positive film: its normalised input
// (preprocess.TensorLen floats), its unmasked P(COVID-19) under the model
// checked, and its heatmaps under that model by method (Side x Side each).
type DeletionFilm struct {
	X    []float32
	Base float64
	Maps map[string][]float32
}

// Curve is a deletion curve: mean P(COVID-19) over the films after deleting
// each fraction of the input (Fractions[0] is 0, the unmasked films).
type Curve struct {
	Fractions []float64
	MeanP     []float64
}

// At returns the mean probability at a fraction on the curve.
func (c Curve) At(f float64) (float64, bool) {
	for i, x := range c.Fractions {
		if x == f {
			return c.MeanP[i], true
		}
	}
	return 0, false
}

// AUC is the area under the curve (trapezoids) divided by its width: the
// mean probability while deleting; lower is more faithful.
func (c Curve) AUC() float64 {
	a := 0.0
	for i := 1; i < len(c.Fractions); i++ {
		a += (c.Fractions[i] - c.Fractions[i-1]) * (c.MeanP[i] + c.MeanP[i-1]) / 2
	}
	return a / (c.Fractions[len(c.Fractions)-1] - c.Fractions[0])
}

// DeletionResult is the check for one model (or the ensemble).
type DeletionResult struct {
	Model string
	Films int
	// Curves by method, and the random baseline under Random.
	Curves map[string]Curve
	// Drop10 is the mean drop in P(COVID-19) from deleting the top 10% of
	// each method's map, and (under Random) 10% in random regions.
	Drop10 map[string]float64
	// Wins counts the films where a method's 10% deletion lowered the
	// probability more than the film's mean random 10% deletion.
	Wins map[string]int
}

// Methods are the checked methods, sorted.
func (r *DeletionResult) Methods() []string {
	var ms []string
	for m := range r.Curves {
		if m != Random {
			ms = append(ms, m)
		}
	}
	sort.Strings(ms)
	return ms
}

// BeatsRandom reports whether deleting the top 10% of a method's maps
// lowered P(COVID-19) more, on average, than deleting random 10% regions.
func (r *DeletionResult) BeatsRandom(method string) bool {
	d, ok := r.Drop10[method]
	return ok && d > r.Drop10[Random]
}

// Deletion checks that heatmaps point at what drives the score: for every
// film it deletes (sets to the fill) the top-k pixels of each method's map,
// for each fraction k, and the same area in random regions, and scores the
// results with m. Faithful maps lower P(COVID-19) faster than random ones.
// Every film must carry a map for every method of the first film. 10% must
// be among the fractions.
//
// Deletion costs len(Fractions) x (methods + RandomDraws) forward passes
// per film, in batches of BatchSize. It is deterministic for a given Seed.
func Deletion(ctx context.Context, m Runner, model string, films []DeletionFilm, o DeletionOptions) (*DeletionResult, error) {
	if len(films) == 0 {
		return nil, errors.New("deletion check: no films")
	}
	if !slices.Contains(o.Fractions, 0.1) {
		return nil, errors.New("deletion check: the fractions must include 0.1")
	}
	for i, f := range o.Fractions {
		if f <= 0 || f >= 1 || (i > 0 && f <= o.Fractions[i-1]) {
			return nil, fmt.Errorf("deletion check: fractions %v must ascend within (0, 1)", o.Fractions)
		}
	}
	if o.RandomDraws < 1 || o.RandomGrid < 1 || o.BatchSize < 1 {
		return nil, errors.New("deletion check: RandomDraws, RandomGrid and BatchSize must be at least 1")
	}
	var methods []string
	for k := range films[0].Maps {
		methods = append(methods, k)
	}
	sort.Strings(methods)
	all := append(slices.Clone(methods), Random)

	nf := len(o.Fractions)
	sums := map[string][]float64{}
	for _, k := range all {
		sums[k] = make([]float64, nf)
	}
	res := &DeletionResult{Model: model, Films: len(films), Curves: map[string]Curve{}, Drop10: map[string]float64{}, Wins: map[string]int{}}
	i10 := slices.Index(o.Fractions, 0.1)
	fill := o.Fill.Values()
	baseSum := 0.0

	for fi, f := range films {
		if len(f.X) != preprocess.TensorLen {
			return nil, fmt.Errorf("deletion check: film %d has %d floats, want %d", fi, len(f.X), preprocess.TensorLen)
		}
		// One ranking per mask: each method's map, then the random draws.
		type mask struct {
			key   string
			order []int32
		}
		var masks []mask
		for _, k := range methods {
			v, ok := f.Maps[k]
			if !ok || len(v) != Side*Side {
				return nil, fmt.Errorf("deletion check: film %d has no %dx%d %s map", fi, Side, Side, k)
			}
			masks = append(masks, mask{k, ranking(v)})
		}
		rng := rand.New(rand.NewPCG(o.Seed, uint64(fi)))
		for range o.RandomDraws {
			g := make([]float32, o.RandomGrid*o.RandomGrid)
			for i := range g {
				g[i] = rng.Float32()
			}
			masks = append(masks, mask{Random, ranking(Upsample(g, o.RandomGrid, o.RandomGrid, Side, Side))})
		}
		// Every (mask, fraction) is one masked copy; score them in batches.
		type job struct{ mask, frac int }
		var jobs []job
		for mi := range masks {
			for k := range nf {
				jobs = append(jobs, job{mi, k})
			}
		}
		probs := make([]float64, len(jobs))
		batch := make([]float32, o.BatchSize*preprocess.TensorLen)
		for s := 0; s < len(jobs); s += o.BatchSize {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n := min(o.BatchSize, len(jobs)-s)
			for i := range n {
				j := jobs[s+i]
				b := batch[i*preprocess.TensorLen : (i+1)*preprocess.TensorLen]
				copy(b, f.X)
				deletePixels(b, masks[j.mask].order[:int(o.Fractions[j.frac]*Side*Side+0.5)], fill)
			}
			outs, _, err := m.Run(batch[:n*preprocess.TensorLen], n)
			if err != nil {
				return nil, fmt.Errorf("deletion check, film %d: %w", fi, err)
			}
			for i, out := range outs {
				probs[s+i] = out.Prob
			}
		}
		baseSum += f.Base
		film := map[string][]float64{}
		for _, k := range all {
			film[k] = make([]float64, nf)
		}
		for ji, j := range jobs {
			key := masks[j.mask].key
			w := 1.0
			if key == Random {
				w = 1 / float64(o.RandomDraws)
			}
			film[key][j.frac] += w * probs[ji]
		}
		for _, k := range all {
			for i := range nf {
				sums[k][i] += film[k][i]
			}
		}
		for _, k := range methods {
			if film[k][i10] < film[Random][i10] {
				res.Wins[k]++
			}
		}
	}
	n := float64(len(films))
	base := baseSum / n
	for _, k := range all {
		c := Curve{Fractions: append([]float64{0}, o.Fractions...), MeanP: []float64{base}}
		for i := range nf {
			c.MeanP = append(c.MeanP, sums[k][i]/n)
		}
		res.Curves[k] = c
		res.Drop10[k] = base - sums[k][i10]/n
	}
	return res, nil
}

// ranking orders pixel indices from the highest value down; ties keep
// index order, so the result is deterministic.
func ranking(v []float32) []int32 {
	idx := make([]int32, len(v))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		switch {
		case v[a] > v[b]:
			return -1
		case v[a] < v[b]:
			return 1
		}
		return int(a - b)
	})
	return idx
}

func deletePixels(t []float32, pix []int32, fill [3]float32) {
	const plane = Side * Side
	for _, p := range pix {
		t[p] = fill[0]
		t[plane+int(p)] = fill[1]
		t[2*plane+int(p)] = fill[2]
	}
}

// WriteDeletionReport prints results as a table: per model and method the
// deletion curve, its AUC, the mean drop at 10% and the verdict against the
// random baseline.
func WriteDeletionReport(w io.Writer, rs []*DeletionResult) error {
	var b strings.Builder
	for _, r := range rs {
		c := r.Curves[Random]
		fmt.Fprintf(&b, "model %s: %d positive films, mean P(COVID-19) unmasked %.3f\n", r.Model, r.Films, c.MeanP[0])
		fmt.Fprintf(&b, "  %-10s", "deleted")
		for _, f := range c.Fractions {
			fmt.Fprintf(&b, " %6.0f%%", f*100)
		}
		fmt.Fprintf(&b, "   AUC   drop@10%%  wins  verdict\n")
		for _, k := range append(r.Methods(), Random) {
			c := r.Curves[k]
			fmt.Fprintf(&b, "  %-10s", k)
			for _, p := range c.MeanP {
				fmt.Fprintf(&b, " %7.3f", p)
			}
			fmt.Fprintf(&b, "  %.3f  %7.3f", c.AUC(), r.Drop10[k])
			if k == Random {
				b.WriteString("\n")
				continue
			}
			verdict := "FAIL: not better than random"
			if r.BeatsRandom(k) {
				verdict = "ok: beats random"
			}
			fmt.Fprintf(&b, "  %2d/%-2d %s\n", r.Wins[k], r.Films, verdict)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
