package triage

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
)

// BenchmarkInference runs each model (committed, plus the untrained ones of
// make bench-models for the architectures not committed yet) at batch 1
// and 8, with ONNX Runtime's default threads; film-ms is per film.
func BenchmarkInference(b *testing.B) {
	testenv.ORT(b)
	x := make([]float32, preprocess.TensorLen)
	for i := range x {
		x[i] = float32(i%251)/125 - 1
	}
	for _, dir := range testenv.AllModels(b) {
		m, err := LoadModel(dir, Options{Log: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 8} {
			xb := make([]float32, n*preprocess.TensorLen)
			for i := range n {
				copy(xb[i*preprocess.TensorLen:], x)
			}
			b.Run(fmt.Sprintf("%s/batch-%d", filepath.Base(dir), n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, _, err := m.Run(xb, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "film-ms")
			})
		}
		m.Close()
	}
}
