package eval

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"sync"
	"sync/atomic"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// Outcome is the scoring of one item.
type Outcome struct {
	Item     Item
	Models   []float64 // P(COVID-19) per model, in the engine's model order
	Ensemble float64
	Err      error
	// Input is the preprocessed 224x224 film, kept only when asked (heatmap checks).
	Input *preprocess.Input `json:"-"`
}

// Options tune a run.
type Options struct {
	Workers    int
	KeepInputs bool
	// Progress is called after every item (from several goroutines).
	Progress func(done, total int)
}

// Tensor loads a DICOM film or a JPEG/PNG image the way the daemon does and
// preprocesses it.
func Tensor(path string, lim decode.Limits) (preprocess.Input, []float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return preprocess.Input{}, nil, err
	}
	img, err := decodeAny(data, lim)
	if err != nil {
		return preprocess.Input{}, nil, err
	}
	in := preprocess.Prepare(img)
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(in.Gray, x)
	return in, x, nil
}

// decodeAny decodes a DICOM Part 10 file or a plain JPEG/PNG image.
func decodeAny(data []byte, lim decode.Limits) (*image.Gray, error) {
	if decode.Sniff(data) == decode.KindDICOM {
		f, err := decode.Decode(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return nil, err
		}
		return f.Image, nil
	}
	return decode.ImageFile(data, lim)
}

// Run scores every item with every model of the engine.
func Run(ctx context.Context, eng *triage.Engine, items []Item, o Options) []Outcome {
	if o.Workers < 1 {
		o.Workers = 4
	}
	lim := decode.DefaultLimits
	out := make([]Outcome, len(items))
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				out[i] = score(ctx, eng, items[i], lim, o.KeepInputs)
				if o.Progress != nil {
					o.Progress(int(done.Add(1)), len(items))
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func score(ctx context.Context, eng *triage.Engine, it Item, lim decode.Limits, keep bool) Outcome {
	oc := Outcome{Item: it}
	in, x, err := Tensor(it.Path, lim)
	if err != nil {
		oc.Err = fmt.Errorf("%s: %w", it.Path, err)
		return oc
	}
	res, err := eng.Score(ctx, x)
	if err != nil {
		oc.Err = fmt.Errorf("%s: %w", it.Path, err)
		return oc
	}
	for _, m := range res.Models {
		oc.Models = append(oc.Models, m.Probability)
	}
	oc.Ensemble = res.Ensemble
	if keep {
		oc.Input = &in
	}
	return oc
}
