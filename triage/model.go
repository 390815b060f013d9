package triage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/triaged/triaged/preprocess"
)

// Execution providers a model can run on.
const (
	ProviderCPU  = "CPUExecutionProvider"
	ProviderCUDA = "CUDAExecutionProvider"
)

// Options say how sessions are created.
type Options struct {
	Library        string // ONNX Runtime shared library; empty = search
	Device         string // cpu, cuda or auto
	CUDADeviceID   int
	IntraOpThreads int
	Log            zerolog.Logger
}

// Model is one loaded model: its manifest and an ONNX Runtime session that
// is safe for concurrent Run calls.
type Model struct {
	Manifest *Manifest
	Dir      string
	Provider string

	session  *ort.DynamicAdvancedSession
	outNames []string
	camIdx   int // -1 when the model has no CAM output
}

// LoadModel reads a model directory, checks the ONNX file against the
// manifest's sha256 (on the very bytes it then loads) and opens a session.
func LoadModel(dir string, o Options) (*Model, error) {
	if _, err := InitRuntime(o.Library); err != nil {
		return nil, err
	}
	man, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, man.File)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != man.SHA256 {
		return nil, fmt.Errorf("model %s: sha256 %s does not match the manifest's %s; refusing to load it", path, got, man.SHA256)
	}
	m := &Model{Manifest: man, Dir: dir, camIdx: -1}
	m.outNames = []string{man.Outputs.Probs}
	if man.Outputs.CAM != "" {
		m.outNames = append(m.outNames, man.Outputs.CAM)
		m.camIdx = 1
	}

	m.session, m.Provider, err = newSession(data, man, m.outNames, o)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

func newSession(data []byte, man *Manifest, outNames []string, o Options) (*ort.DynamicAdvancedSession, string, error) {
	create := func(cuda bool) (*ort.DynamicAdvancedSession, error) {
		opts, err := ort.NewSessionOptions()
		if err != nil {
			return nil, fmt.Errorf("session options: %w", err)
		}
		defer opts.Destroy()
		if o.IntraOpThreads > 0 {
			if err := opts.SetIntraOpNumThreads(o.IntraOpThreads); err != nil {
				return nil, fmt.Errorf("set intra-op threads: %w", err)
			}
		}
		if err := opts.SetInterOpNumThreads(1); err != nil {
			return nil, fmt.Errorf("set inter-op threads: %w", err)
		}
		// ONNX Runtime's intra-op threads spin after each parallel section by
		// default, waiting for more work. The daemon decodes films on the same
		// cores between inference calls, so spinning only takes CPU from the
		// decoders: measured on 2 cores with ResNet50, 20% less CPU per film.
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("intra-op spinning: %w", err)
		}
		if cuda {
			co, err := ort.NewCUDAProviderOptions()
			if err != nil {
				return nil, fmt.Errorf("CUDA provider options: %w", err)
			}
			defer co.Destroy()
			if err := co.Update(map[string]string{"device_id": fmt.Sprint(o.CUDADeviceID)}); err != nil {
				return nil, fmt.Errorf("CUDA provider options: %w", err)
			}
			if err := opts.AppendExecutionProviderCUDA(co); err != nil {
				return nil, fmt.Errorf("CUDA execution provider: %w", err)
			}
		}
		return ort.NewDynamicAdvancedSessionWithONNXData(data, []string{man.Input.Name}, outNames, opts)
	}
	if o.Device == "cuda" || o.Device == "auto" {
		s, err := create(true)
		if err == nil {
			return s, ProviderCUDA, nil
		}
		ev := o.Log.Info()
		if o.Device == "cuda" {
			ev = o.Log.Warn()
		}
		ev.Str("model", man.Name).Str("device", o.Device).AnErr("reason", err).
			Msg("CUDA execution provider unavailable in this ONNX Runtime library; falling back to CPU")
	}
	s, err := create(false)
	if err != nil {
		return nil, "", fmt.Errorf("create ONNX Runtime session: %w", err)
	}
	return s, ProviderCPU, nil
}

// Output is one model's output for one film.
type Output struct {
	Prob       float64   // P(COVID-19)
	CAM        []float32 // COVID-19 class activation map, CAMH x CAMW, or nil
	CAMW, CAMH int
}

// Run scores n films laid out one after another in x (NCHW float32).
func (m *Model) Run(x []float32, n int) ([]Output, time.Duration, error) {
	if len(x) != n*preprocess.TensorLen {
		return nil, 0, fmt.Errorf("model %s: input holds %d floats, want %d for %d films", m.Manifest.Name, len(x), n*preprocess.TensorLen, n)
	}
	in, err := ort.NewTensor(ort.NewShape(int64(n), 3, preprocess.Size, preprocess.Size), x)
	if err != nil {
		return nil, 0, fmt.Errorf("model %s: input tensor: %w", m.Manifest.Name, err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(m.outNames))
	start := time.Now()
	if err := m.session.Run([]ort.Value{in}, outs); err != nil {
		return nil, 0, fmt.Errorf("model %s: run batch of %d: %w", m.Manifest.Name, n, err)
	}
	took := time.Since(start)
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	probs, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, 0, fmt.Errorf("model %s: output %s is not a float32 tensor", m.Manifest.Name, m.outNames[0])
	}
	shape := probs.GetShape()
	classes := len(m.Manifest.Labels)
	if len(shape) != 2 || shape[0] != int64(n) || shape[1] != int64(classes) {
		return nil, 0, fmt.Errorf("model %s: output %s has shape %v, want [%d %d]", m.Manifest.Name, m.outNames[0], shape, n, classes)
	}
	pd := probs.GetData()
	res := make([]Output, n)
	for i := range res {
		res[i].Prob = float64(pd[i*classes+m.Manifest.COVIDIndex])
	}
	if m.camIdx >= 0 {
		cam, ok := outs[m.camIdx].(*ort.Tensor[float32])
		if !ok {
			return nil, 0, fmt.Errorf("model %s: output %s is not a float32 tensor", m.Manifest.Name, m.outNames[m.camIdx])
		}
		cs := cam.GetShape()
		if len(cs) != 4 || cs[0] != int64(n) || cs[1] != int64(classes) {
			return nil, 0, fmt.Errorf("model %s: CAM output has shape %v, want [%d %d h w]", m.Manifest.Name, cs, n, classes)
		}
		h, w := int(cs[2]), int(cs[3])
		cd := cam.GetData()
		for i := range res {
			off := (i*classes + m.Manifest.COVIDIndex) * h * w
			res[i].CAM = append([]float32(nil), cd[off:off+h*w]...)
			res[i].CAMW, res[i].CAMH = w, h
		}
	}
	return res, took, nil
}

// Close releases the session.
func (m *Model) Close() error {
	if m.session == nil {
		return nil
	}
	err := m.session.Destroy()
	m.session = nil
	return err
}
