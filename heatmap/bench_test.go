package heatmap

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// camInput is a real 1024x1024 chest film (the NIH DICOM), and SqueezeNet's
// result for it.
func camInput(b *testing.B) (*triage.Result, preprocess.Input, *decodedFilm) {
	b.Helper()
	f, err := os.Open(testenv.DICOM(b, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	film, err := decode.Decode(f, st.Size(), decode.DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	in := preprocess.Prepare(film.Image)
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(in.Gray, x)
	m := loadModel(b, testenv.Model(b, "squeezenet1_1"))
	outs, _, err := m.Run(x, 1)
	if err != nil {
		b.Fatal(err)
	}
	o := outs[0]
	res := &triage.Result{Models: []triage.ModelScore{{Name: m.Manifest.Name, Probability: o.Prob, CAM: o.CAM, CAMW: o.CAMW, CAMH: o.CAMH}}}
	return res, in, film
}

type decodedFilm = decode.Film

// BenchmarkCAM is what the class activation map itself adds to a positive
// film: the map comes out of the scoring pass, so this is the upsampling
// and scaling of SqueezeNet's 13x13 map to 224x224.
func BenchmarkCAM(b *testing.B) {
	res, _, _ := camInput(b)
	for b.Loop() {
		if _, err := ResultCAM(res); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCAMAttachments is everything the alert path does for the CAM of
// a 1024x1024 film: the map, the overlay at 1024, its PNG and the raw map.
func BenchmarkCAMAttachments(b *testing.B) {
	res, in, film := camInput(b)
	for b.Loop() {
		m, err := ResultCAM(res)
		if err != nil {
			b.Fatal(err)
		}
		img, err := Render(film.Image, in.Crop, m, DefaultRender)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EncodePNG(img); err != nil {
			b.Fatal(err)
		}
		if _, err := Raw(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender and BenchmarkEncodePNG split the overlay's cost.
func BenchmarkRender(b *testing.B) {
	res, in, film := camInput(b)
	m, _ := ResultCAM(res)
	for b.Loop() {
		if _, err := Render(film.Image, in.Crop, m, DefaultRender); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePNG(b *testing.B) {
	res, in, film := camInput(b)
	m, _ := ResultCAM(res)
	img, _ := Render(film.Image, in.Crop, m, DefaultRender)
	for b.Loop() {
		if _, err := EncodePNG(img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOcclusion measures occlusion with the default setting (N=32,
// S=8, 625 passes) for one film and every committed model, through the
// model's ONNX Runtime session on this machine.
func BenchmarkOcclusion(b *testing.B) {
	pos := testPositives(b)
	_, x, _, _ := film(b, pos[0].Path)
	for _, dir := range committedModels(b) {
		m := loadModel(b, dir)
		b.Run(filepath.Base(dir), func(b *testing.B) {
			o := DefaultOcclusion
			outs, _, err := m.Run(x, 1)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := o.Map(context.Background(), m, x, outs[0].Prob); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/film")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*o.Passes()), "ms/pass")
			b.ReportMetric(float64(o.Passes()), "passes/film")
		})
	}
}
