package eval

import (
	"fmt"
	"os"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// PooledFeatures returns each input's model features (the manifest's
// features output, the last convolutional map), averaged over space: what
// the last layer sees. It opens a session of its own on the model file so
// the daemon's sessions stay as they are (they fetch probabilities and CAM
// only). ONNX Runtime must be initialised (triage.InitRuntime; loading an
// engine does it).
func PooledFeatures(m *triage.Model, xs [][]float32) ([][]float64, error) {
	man := m.Manifest
	if man.Outputs.Features == "" {
		return nil, fmt.Errorf("model %s: the manifest names no features output", man.Name)
	}
	data, err := os.ReadFile(filepath.Join(m.Dir, man.File))
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", man.Name, err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{man.Input.Name}, []string{man.Outputs.Features}, nil)
	if err != nil {
		return nil, fmt.Errorf("model %s: features session: %w", man.Name, err)
	}
	defer s.Destroy()
	const batch = 16
	out := make([][]float64, 0, len(xs))
	buf := make([]float32, 0, batch*preprocess.TensorLen)
	for i := 0; i < len(xs); i += batch {
		j := min(i+batch, len(xs))
		buf = buf[:0]
		for _, x := range xs[i:j] {
			buf = append(buf, x...)
		}
		fs, err := runFeatures(s, buf, j-i)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", man.Name, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

func runFeatures(s *ort.DynamicAdvancedSession, x []float32, n int) ([][]float64, error) {
	in, err := ort.NewTensor(ort.NewShape(int64(n), 3, preprocess.Size, preprocess.Size), x)
	if err != nil {
		return nil, fmt.Errorf("input tensor: %w", err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil}
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		return nil, fmt.Errorf("run features: %w", err)
	}
	defer outs[0].Destroy()
	t, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("features output is not a float32 tensor")
	}
	sh := t.GetShape()
	if len(sh) != 4 || sh[0] != int64(n) {
		return nil, fmt.Errorf("features output has shape %v, want [%d c h w]", sh, n)
	}
	c, hw := int(sh[1]), int(sh[2]*sh[3])
	d := t.GetData()
	res := make([][]float64, n)
	for i := range res {
		v := make([]float64, c)
		for ch := range c {
			off := (i*c + ch) * hw
			s := 0.0
			for _, f := range d[off : off+hw] {
				s += float64(f)
			}
			v[ch] = s / float64(hw)
		}
		res[i] = v
	}
	return res, nil
}
