package heatmap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// CheckOptions configure Faithfulness.
type CheckOptions struct {
	// Occlusion is the setting the occlusion maps are made with; a zero
	// Size checks CAM only.
	Occlusion Occlusion
	Deletion  DeletionOptions
	// Progress, if set, is called after each film's maps are made.
	Progress func(model string, done, total int)
}

// Faithfulness is the deletion check of the daemon's heatmaps on a set of
// positive films (normalised inputs, preprocess.TensorLen floats each, e.g.
// the COVID-19 images of the test split): for every model, and for the
// ensemble when there are several, it makes each film's CAM and (unless
// disabled) occlusion map exactly as the daemon does, then runs Deletion.
// A method passes for a model when DeletionResult.BeatsRandom is true.
//
// Cost per film and model: one pass for CAM, o.Occlusion.Passes() for
// occlusion, and the deletion passes (see Deletion); the ensemble reuses its
// members' maps but scores its deletions with every member.
func Faithfulness(ctx context.Context, models []*triage.Model, xs [][]float32, o CheckOptions) ([]*DeletionResult, error) {
	if len(models) == 0 || len(xs) == 0 {
		return nil, errors.New("faithfulness check: needs models and films")
	}
	occ := o.Occlusion.Size > 0
	type perModel struct {
		films []DeletionFilm
		cams  [][]ModelCAM // [film] this model's CAM (one entry)
	}
	pm := make([]perModel, len(models))
	for mi, m := range models {
		name := m.Manifest.Name
		films := make([]DeletionFilm, len(xs))
		for fi, x := range xs {
			if len(x) != preprocess.TensorLen {
				return nil, fmt.Errorf("faithfulness check: film %d has %d floats, want %d", fi, len(x), preprocess.TensorLen)
			}
			outs, _, err := m.Run(x, 1)
			if err != nil {
				return nil, err
			}
			mc := ModelCAM{Model: name, CAM: outs[0].CAM, W: outs[0].CAMW, H: outs[0].CAMH}
			cam, err := CAM([]ModelCAM{mc})
			if err != nil {
				return nil, err
			}
			films[fi] = DeletionFilm{X: x, Base: outs[0].Prob, Maps: map[string][]float32{MethodCAM: cam.V}}
			if occ {
				v, err := o.Occlusion.Map(ctx, m, x, outs[0].Prob)
				if err != nil {
					return nil, fmt.Errorf("model %s, film %d: %w", name, fi, err)
				}
				films[fi].Maps[MethodOcclusion] = v
			}
			pm[mi].cams = append(pm[mi].cams, []ModelCAM{mc})
			if o.Progress != nil {
				o.Progress(name, fi+1, len(xs))
			}
		}
		pm[mi].films = films
	}
	var out []*DeletionResult
	for mi, m := range models {
		r, err := Deletion(ctx, m, m.Manifest.Name, pm[mi].films, o.Deletion)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Manifest.Name, err)
		}
		out = append(out, r)
	}
	if len(models) == 1 {
		return out, nil
	}
	// The ensemble: the daemon's ensemble maps, scored by the ensemble.
	films := make([]DeletionFilm, len(xs))
	ens := make(ensemble, len(models))
	for mi, m := range models {
		ens[mi] = m
	}
	for fi, x := range xs {
		var mcs []ModelCAM
		f := DeletionFilm{X: x, Maps: map[string][]float32{}}
		var occV []float32
		for mi := range models {
			mcs = append(mcs, pm[mi].cams[fi]...)
			mf := pm[mi].films[fi]
			f.Base += mf.Base / float64(len(models))
			if occ {
				if occV == nil {
					occV = make([]float32, Side*Side)
				}
				for i, v := range mf.Maps[MethodOcclusion] {
					occV[i] += v / float32(len(models))
				}
			}
		}
		cam, err := CAM(mcs)
		if err != nil {
			return nil, err
		}
		f.Maps[MethodCAM] = cam.V
		if occ {
			f.Maps[MethodOcclusion] = occV
		}
		films[fi] = f
	}
	r, err := Deletion(ctx, ens, EnsembleName, films, o.Deletion)
	if err != nil {
		return nil, fmt.Errorf("ensemble: %w", err)
	}
	return append(out, r), nil
}

// ensemble scores with every member and averages P(COVID-19), as the
// engine's ensemble score does.
type ensemble []Runner

func (e ensemble) Run(x []float32, n int) ([]triage.Output, time.Duration, error) {
	res := make([]triage.Output, n)
	var took time.Duration
	for _, m := range e {
		outs, t, err := m.Run(x, n)
		if err != nil {
			return nil, 0, err
		}
		took += t
		for i, o := range outs {
			res[i].Prob += o.Prob / float64(len(e))
		}
	}
	return res, took, nil
}

// ResultCAM is CAM over the class activation maps of a scored film.
func ResultCAM(res *triage.Result) (*Map, error) {
	cams := make([]ModelCAM, len(res.Models))
	for i, m := range res.Models {
		cams[i] = ModelCAM{Model: m.Name, CAM: m.CAM, W: m.CAMW, H: m.CAMH}
	}
	return CAM(cams)
}

// Runners pairs an engine's models with a scored film's probabilities
// under each, for Occlusion.Occlude.
func Runners(eng *triage.Engine, res *triage.Result) []ModelRunner {
	out := make([]ModelRunner, len(eng.Models))
	for i, m := range eng.Models {
		out[i] = ModelRunner{Name: m.Manifest.Name, Run: m, Base: res.Models[i].Probability}
	}
	return out
}
