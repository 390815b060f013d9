package triage

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
)

func committedModels(t *testing.T) []string {
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

func tensorOf(t testing.TB, path string) []float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := decode.ImageFile(data, decode.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(preprocess.Prepare(g).Gray, x)
	return x
}

// The deployed path (libjpeg decode, Pillow-exact resize, ONNX Runtime) must
// reproduce PyTorch's scores for every validation and test image of the
// split, within 1e-4 (training/export.py wrote them with PyTorch).
func TestScoresMatchPyTorch(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	data := testenv.SharedData(t)
	for _, dir := range committedModels(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, "reference_scores.csv"))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(f).ReadAll()
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEngine([]string{dir}, Options{}, EngineOptions{BatchSize: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			var wg sync.WaitGroup
			var mu sync.Mutex
			worst, n := 0.0, 0
			sem := make(chan struct{}, 16)
			for _, r := range rows[1:] {
				want, _ := strconv.ParseFloat(r[2], 64)
				x := tensorOf(t, filepath.Join(data, "cxr", r[0]))
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					res, err := e.Score(context.Background(), x)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					worst = math.Max(worst, math.Abs(res.Ensemble-want))
					n++
					mu.Unlock()
				}()
			}
			wg.Wait()
			t.Logf("%d images, max |ONNX Runtime - PyTorch| = %.2g", n, worst)
			if worst > 1e-4 {
				t.Fatalf("scores differ from PyTorch by up to %g", worst)
			}
		})
	}
}

func TestModelWithWrongSHA256IsRefused(t *testing.T) {
	testenv.ORT(t)
	src := testenv.Model(t, "squeezenet1_1")
	dir := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(src, "model.onnx"))
	os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o644)
	var m map[string]any
	mb, _ := os.ReadFile(filepath.Join(src, "manifest.json"))
	json.Unmarshal(mb, &m)
	m["sha256"] = strings.Repeat("0", 64)
	mb, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, "manifest.json"), mb, 0o644)
	_, err := LoadModel(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "refusing to load") {
		t.Fatalf("got %v", err)
	}
}

func TestBatchedEqualsSingle(t *testing.T) {
	testenv.ORT(t)
	dir := testenv.Model(t, "squeezenet1_1")
	files, _ := filepath.Glob(filepath.Join(testenv.Root(), "preprocess", "testdata", "synth_*[0-9].png"))
	single, err := NewEngine([]string{dir}, Options{}, EngineOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	batched, err := NewEngine([]string{dir}, Options{}, EngineOptions{BatchSize: 8, BatchWait: 50e6})
	if err != nil {
		t.Fatal(err)
	}
	defer batched.Close()
	want := make([]float64, len(files))
	xs := make([][]float32, len(files))
	for i, f := range files {
		xs[i] = tensorOf(t, f)
		r, err := single.Score(context.Background(), xs[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r.Ensemble
	}
	var wg sync.WaitGroup
	maxBatch := 0
	var mu sync.Mutex
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := batched.Score(context.Background(), xs[i])
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			maxBatch = max(maxBatch, r.BatchSize)
			mu.Unlock()
			if d := math.Abs(r.Ensemble - want[i]); d > 1e-6 {
				t.Errorf("%s: batched %g vs single %g", files[i], r.Ensemble, want[i])
			}
			if len(r.Models[0].CAM) != r.Models[0].CAMW*r.Models[0].CAMH || r.Models[0].CAMW == 0 {
				t.Errorf("no class activation map in the result")
			}
		}()
	}
	wg.Wait()
	if maxBatch < 2 {
		t.Errorf("concurrent films were never batched (max batch %d)", maxBatch)
	}
}

func TestClassify(t *testing.T) {
	e := &Engine{Thresholds: Thresholds{Urgent: 0.3, Critical: 0.8}, opts: EngineOptions{EscalateStat: true}}
	for _, c := range []struct {
		score float64
		prio  string
		want  Priority
	}{
		{0.1, "", Routine}, {0.3, "", Urgent}, {0.5, "ROUTINE", Urgent}, {0.5, "STAT", Critical},
		{0.8, "", Critical}, {0.1, "STAT", Routine},
	} {
		if got, why := e.Classify(c.score, c.prio); got != c.want {
			t.Errorf("Classify(%g, %q) = %s (%s), want %s", c.score, c.prio, got, why, c.want)
		}
	}
}

func TestModelSetVersionIgnoresOrder(t *testing.T) {
	a := &Manifest{Name: "a", Version: "1", SHA256: strings.Repeat("a", 64)}
	b := &Manifest{Name: "b", Version: "1", SHA256: strings.Repeat("b", 64)}
	if ModelSetVersion([]*Manifest{a, b}) != ModelSetVersion([]*Manifest{b, a}) {
		t.Fatal("order changes the model set version")
	}
	if ModelSetVersion([]*Manifest{a}) == ModelSetVersion([]*Manifest{a, b}) {
		t.Fatal("different sets share a version")
	}
}
