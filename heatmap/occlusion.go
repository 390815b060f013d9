package heatmap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// Runner scores n preprocessed films laid out one after another in x, as
// triage.Model.Run does: occlusion sends its occluded copies through the
// very ONNX Runtime session that scores films.
type Runner interface {
	Run(x []float32, n int) ([]triage.Output, time.Duration, error)
}

// Fill is what an occluded or deleted region is replaced with.
type Fill struct {
	// Mean: zero in the normalised input, i.e. the ImageNet mean color.
	// That is what "zeroing out" a region of the model input means in the
	// PyTorch reference, and it is the least out-of-distribution patch: it
	// removes the region's content without adding a black or white edge the
	// model could react to on its own.
	Mean bool
	Gray uint8 // otherwise: this display gray level (0 black, 255 white)
}

// ParseFill reads "mean" or a gray level 0-255.
func ParseFill(s string) (Fill, error) {
	s = strings.TrimSpace(s)
	if s == "mean" {
		return Fill{Mean: true}, nil
	}
	g, err := strconv.Atoi(s)
	if err != nil || g < 0 || g > 255 {
		return Fill{}, fmt.Errorf("fill %q: want mean or a gray level 0-255", s)
	}
	return Fill{Gray: uint8(g)}, nil
}

func (f Fill) String() string {
	if f.Mean {
		return "mean"
	}
	return strconv.Itoa(int(f.Gray))
}

// Values is the fill in each normalised input channel.
func (f Fill) Values() [3]float32 {
	var v [3]float32
	if f.Mean {
		return v
	}
	for c := range v {
		v[c] = (float32(f.Gray)/255 - preprocess.Mean[c]) / preprocess.Std[c]
	}
	return v
}

// Occlusion is occlusion sensitivity as the Deep-COVID paper describes it:
// a Size x Size patch slid over the 224x224 input with Stride, each
// occluded copy scored.
type Occlusion struct {
	Size, Stride int
	Fill         Fill
	// BatchSize is how many occluded copies go through the session per
	// call; small enough that films being scored meanwhile are not held up
	// for long behind one call.
	BatchSize int
}

// DefaultOcclusion is the paper's setting the daemon uses unless configured:
// N=32 (a seventh of the crop, about one lung zone, and the cell of a
// 7x7 CAM) with stride 8, so every pixel is covered by up to 16 windows
// and the map is smooth; 625 passes per film.
var DefaultOcclusion = Occlusion{Size: 32, Stride: 8, Fill: Fill{Mean: true}, BatchSize: 16}

// Check reports an unusable setting.
func (o Occlusion) Check() error {
	if o.Size < 1 || o.Size > Side {
		return fmt.Errorf("occlusion size %d must be between 1 and %d", o.Size, Side)
	}
	if o.Stride < 1 || o.Stride > o.Size {
		return fmt.Errorf("occlusion stride %d must be between 1 and the size %d (a larger stride leaves pixels never occluded)", o.Stride, o.Size)
	}
	if o.BatchSize < 1 {
		return fmt.Errorf("occlusion batch size %d must be at least 1", o.BatchSize)
	}
	return nil
}

// Offsets are the patch positions along one axis: 0, S, 2S, ... up to
// 224-N, plus 224-N itself when S does not divide 224-N, so the last
// rows and columns are occluded too.
func (o Occlusion) Offsets() []int {
	var p []int
	for x := 0; x <= Side-o.Size; x += o.Stride {
		p = append(p, x)
	}
	if p[len(p)-1] != Side-o.Size {
		p = append(p, Side-o.Size)
	}
	return p
}

// Passes is the number of forward passes per film and model.
func (o Occlusion) Passes() int {
	n := len(o.Offsets())
	return n * n
}

func (o Occlusion) describe() string {
	return fmt.Sprintf("occlusion %dx%d, stride %d, fill %s, %d passes", o.Size, o.Size, o.Stride, o.Fill, o.Passes())
}

// Map computes one model's occlusion map of a film: each pixel holds the
// mean, over the windows covering it, of base - P(COVID-19 | window
// occluded), where base is the film's unoccluded probability. Positive
// values mark regions whose removal lowers the probability.
func (o Occlusion) Map(ctx context.Context, m Runner, x []float32, base float64) ([]float32, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if len(x) != preprocess.TensorLen {
		return nil, fmt.Errorf("occlusion: input has %d floats, want %d", len(x), preprocess.TensorLen)
	}
	offs := o.Offsets()
	type win struct{ x, y int }
	wins := make([]win, 0, len(offs)*len(offs))
	for _, y := range offs {
		for _, x := range offs {
			wins = append(wins, win{x, y})
		}
	}
	fill := o.Fill.Values()
	sum := make([]float32, Side*Side)
	cnt := make([]float32, Side*Side)
	batch := make([]float32, o.BatchSize*preprocess.TensorLen)
	for start := 0; start < len(wins); start += o.BatchSize {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(o.BatchSize, len(wins)-start)
		for i := range n {
			b := batch[i*preprocess.TensorLen : (i+1)*preprocess.TensorLen]
			copy(b, x)
			w := wins[start+i]
			fillRect(b, w.x, w.y, o.Size, fill)
		}
		outs, _, err := m.Run(batch[:n*preprocess.TensorLen], n)
		if err != nil {
			return nil, fmt.Errorf("occlusion passes %d-%d of %d: %w", start+1, start+n, len(wins), err)
		}
		for i, out := range outs {
			w := wins[start+i]
			d := float32(base - out.Prob)
			for y := w.y; y < w.y+o.Size; y++ {
				row := y * Side
				for x := w.x; x < w.x+o.Size; x++ {
					sum[row+x] += d
					cnt[row+x]++
				}
			}
		}
	}
	for i := range sum {
		if cnt[i] > 0 {
			sum[i] /= cnt[i]
		}
	}
	return sum, nil
}

// fillRect sets a size x size square at (x0, y0) of every channel of one
// normalised input to the fill.
func fillRect(t []float32, x0, y0, size int, fill [3]float32) {
	const plane = Side * Side
	for c := range 3 {
		for y := y0; y < y0+size; y++ {
			row := t[c*plane+y*Side+x0 : c*plane+y*Side+x0+size]
			for i := range row {
				row[i] = fill[c]
			}
		}
	}
}

// ModelRunner is a model to occlude with, and the film's unoccluded
// probability under it.
type ModelRunner struct {
	Name string
	Run  Runner
	Base float64
}

// Occlude computes the occlusion map of a film over every model. An
// ensemble's map is the drop in the ensemble score, which is the mean of
// the members' drops: the same units (probability) for every model, so no
// rescaling is needed, unlike CAM.
func (o Occlusion) Occlude(ctx context.Context, ms []ModelRunner, x []float32) (*Map, error) {
	if len(ms) == 0 {
		return nil, errors.New("occlusion: no models")
	}
	out := &Map{Method: MethodOcclusion, Model: ms[0].Name, Unit: "drop in P(COVID-19)", Note: o.describe(), V: make([]float32, Side*Side)}
	if len(ms) > 1 {
		out.Model = EnsembleName
		out.Note += fmt.Sprintf(", mean over %d models", len(ms))
	}
	for _, m := range ms {
		v, err := o.Map(ctx, m.Run, x, m.Base)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.Name, err)
		}
		for i := range v {
			out.V[i] += v[i] / float32(len(ms))
		}
	}
	return out, nil
}
