package heatmap

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/splitdata"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// committedModels are the model directories under models/.
func committedModels(t testing.TB) []string {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(testenv.Root(), "models", "*", "manifest.json"))
	if len(ms) == 0 {
		t.Fatal("no models committed under models/")
	}
	for i := range ms {
		ms[i] = filepath.Dir(ms[i])
	}
	return ms
}

func loadModel(t testing.TB, dir string) *triage.Model {
	t.Helper()
	testenv.ORT(t)
	m, err := triage.LoadModel(dir, triage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testPositives are the COVID-19 images of the test split's patients.
func testPositives(t testing.TB) []splitdata.Image {
	t.Helper()
	data := testenv.SharedData(t)
	ims, err := splitdata.Images(filepath.Join(testenv.Root(), "models", "split.json"), filepath.Join(data, "cxr"), "test", "covid")
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) == 0 {
		t.Fatal("no COVID-19 images in the test split")
	}
	return ims
}

// film decodes and preprocesses one image of the shared set.
func film(t testing.TB, path string) (*decode.Header, []float32, preprocess.Input, *image.Gray) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := decode.ImageFile(b, decode.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	in := preprocess.Prepare(g)
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(in.Gray, x)
	return &decode.Header{Rows: g.Rect.Dy(), Columns: g.Rect.Dx()}, x, in, g
}
