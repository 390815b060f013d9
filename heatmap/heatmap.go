// Package heatmap explains a triage score: where in the film the model
// looked. It makes two kinds of map over the model's 224x224 input, renders
// them onto the film for a person, and checks that they are faithful.
//
//   - CAM (class activation map, Zhou et al. 2016): the COVID-19 map the
//     exported models compute in the same forward pass that scores the film
//     (triage.ModelScore.CAM), upsampled to 224x224. It costs no inference.
//   - Occlusion sensitivity (Zeiler & Fergus 2014, as in the Deep-COVID
//     paper): an NxN patch slides over the input with stride S, each occluded
//     copy is scored, and every pixel gets the mean drop in P(COVID-19) of
//     the windows covering it. ((224-N)/S+1)^2 forward passes per film.
//
// Render draws a map onto the display-ready film in the film's own
// geometry; Raw encodes it for consumers that draw their own; Deletion
// measures whether masking a map's hottest pixels lowers P(COVID-19) more
// than masking random regions of the same area.
package heatmap

//go:generate ../scripts/gen-colormaps.sh

import (
	"errors"
	"fmt"

	"github.com/triaged/triaged/preprocess"
)

// Side is the side of every map: the model input crop.
const Side = preprocess.Size

// Methods.
const (
	MethodCAM       = "cam"
	MethodOcclusion = "occlusion"
)

// EnsembleName is the Model of a map combined over several models.
const EnsembleName = "ensemble"

// Map is a heatmap over the 224x224 model input (crop coordinates, row
// major, Side x Side). Larger values mean more evidence for COVID-19.
type Map struct {
	Method string
	Model  string // the model's name, or EnsembleName
	V      []float32
	// Unit says what the values are, for the legend and for consumers of
	// the raw map.
	Unit string
	// Note is shown under the legend (occlusion parameters, ...).
	Note string
}

// Max is the largest value (0 for an empty or all-negative map).
func (m *Map) Max() float32 {
	var mx float32
	for _, v := range m.V {
		mx = max(mx, v)
	}
	return mx
}

func (m *Map) check() error {
	if len(m.V) != Side*Side {
		return fmt.Errorf("heatmap %s/%s has %d values, want %d", m.Method, m.Model, len(m.V), Side*Side)
	}
	return nil
}

// Upsample resizes an h x w map to oh x ow bilinearly with half-pixel
// centres (PyTorch's interpolate(mode="bilinear", align_corners=False)),
// which is how CAMs are conventionally brought to input size: each cell is
// centred on the input region it summarises.
func Upsample(src []float32, w, h, ow, oh int) []float32 {
	dst := make([]float32, ow*oh)
	xi0, xi1, xw := axisTaps(w, ow)
	yi0, yi1, yw := axisTaps(h, oh)
	for y := 0; y < oh; y++ {
		r0, r1, fy := src[yi0[y]*w:], src[yi1[y]*w:], yw[y]
		row := dst[y*ow : (y+1)*ow]
		for x := range row {
			a := r0[xi0[x]] + (r0[xi1[x]]-r0[xi0[x]])*xw[x]
			b := r1[xi0[x]] + (r1[xi1[x]]-r1[xi0[x]])*xw[x]
			row[x] = a + (b-a)*fy
		}
	}
	return dst
}

// axisTaps precomputes, for each output index, the two source indices and
// the weight of the second.
func axisTaps(in, out int) ([]int, []int, []float32) {
	i0, i1, wt := make([]int, out), make([]int, out), make([]float32, out)
	scale := float64(in) / float64(out)
	for o := range out {
		s := (float64(o)+0.5)*scale - 0.5
		if s < 0 {
			s = 0
		}
		a := int(s)
		if a > in-1 {
			a = in - 1
		}
		b := min(a+1, in-1)
		i0[o], i1[o], wt[o] = a, b, float32(s-float64(a))
	}
	return i0, i1, wt
}

// ModelCAM is one model's COVID-19 class activation map, as the model
// computed it (triage.ModelScore.CAM).
type ModelCAM struct {
	Model string
	CAM   []float32
	W, H  int
}

// CAM builds the map shown for a film from its models' COVID-19 class
// activation maps: each is upsampled to 224x224, its negative part dropped
// (evidence against COVID-19 is not what the reader looks for) and scaled
// to a maximum of 1, because the architectures' raw CAM units are not
// comparable; an ensemble's map is the mean of its members' maps, with the
// equal weights of the ensemble score.
func CAM(ms []ModelCAM) (*Map, error) {
	if len(ms) == 0 {
		return nil, errors.New("class activation map: no models")
	}
	out := &Map{Method: MethodCAM, Model: ms[0].Model, Unit: "relative class activation (0-1)", V: make([]float32, Side*Side)}
	if len(ms) > 1 {
		out.Model = EnsembleName
		out.Note = fmt.Sprintf("mean of %d models' maps, each scaled to 1", len(ms))
	}
	for _, m := range ms {
		if m.W <= 0 || m.H <= 0 || len(m.CAM) != m.W*m.H {
			return nil, fmt.Errorf("class activation map of model %s: %d values for %dx%d (does the model export a cam output?)", m.Model, len(m.CAM), m.W, m.H)
		}
		up := Upsample(m.CAM, m.W, m.H, Side, Side)
		var mx float32
		for _, v := range up {
			mx = max(mx, v)
		}
		if mx <= 0 {
			continue // no positive evidence anywhere: contributes zeros
		}
		s := 1 / mx / float32(len(ms))
		for i, v := range up {
			if v > 0 {
				out.V[i] += v * s
			}
		}
	}
	return out, nil
}
