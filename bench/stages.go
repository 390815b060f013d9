package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// StageCosts are the costs of each stage of one film measured alone, in
// the bench's process, one film at a time: what a film costs in CPU where
// the daemon's own timings (PhaseResult.StageMS) show wall time under load.
type StageCosts struct {
	// Per syntax, mean milliseconds: pre-scan and header parse (what
	// admission reads), then the decode's own split.
	HeaderMS map[string]float64 `json:"header_ms"`
	FrameMS  map[string]float64 `json:"frame_ms"`  // codec or native samples
	RenderMS map[string]float64 `json:"render_ms"` // display pipeline
	// FrameMS again with JPEG 2000 on one thread (FrameMS: on every core,
	// as a lone decode gets in the daemon).
	FrameOneThreadMS map[string]float64 `json:"frame_one_thread_ms,omitempty"`
	// Preprocessing of the full-size film: resize + crop, and the tensor.
	PrepareMS float64 `json:"prepare_ms"`
	TensorMS  float64 `json:"tensor_ms"`
	// Inference per model and batch size, milliseconds per film (ONNX
	// Runtime's default threads: one per core).
	InferenceMS map[string]map[int]float64 `json:"inference_ms_per_film"`
	// CAM heatmap of an alert: map, overlay, PNG and raw map (no storage).
	HeatmapMS map[string]float64 `json:"heatmap_ms"` // by model set
	// Publishing one result (and one alert with it) to an embedded
	// JetStream with sync_always, until its PubAck.
	PublishResultMS float64 `json:"publish_result_ms"`
	PublishAlertMS  float64 `json:"publish_result_and_alert_ms"`
	// CPU per film, exact and reduced-resolution decode (cpucost.go).
	CPU *CPUCosts `json:"cpu,omitempty"`
}

func timeIt(n int, f func() error) (float64, error) {
	if err := f(); err != nil { // warm-up
		return 0, err
	}
	t0 := time.Now()
	for range n {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return ms(time.Since(t0)) / float64(n), nil
}

func measureStages(ctx context.Context, o Options, films []*Film, setups []Setup) (*StageCosts, error) {
	st := &StageCosts{HeaderMS: map[string]float64{}, FrameMS: map[string]float64{}, RenderMS: map[string]float64{}, FrameOneThreadMS: map[string]float64{},
		InferenceMS: map[string]map[int]float64{}, HeatmapMS: map[string]float64{}}
	// Up to three films of each syntax.
	per := map[string][]*Film{}
	for _, f := range films {
		if len(per[f.Syntax]) < 3 {
			per[f.Syntax] = append(per[f.Syntax], f)
		}
	}
	var display *decode.Film
	for syn, fs := range per {
		var h, fr, rd, fr1 []float64
		for _, f := range fs {
			d, err := timeIt(3, func() error {
				_, err := decode.ReadHeader(bytes.NewReader(f.data), int64(len(f.data)), decode.DefaultLimits)
				return err
			})
			if err != nil {
				return nil, err
			}
			h = append(h, d)
			for range 3 {
				film, err := decode.Decode(bytes.NewReader(f.data), int64(len(f.data)), decode.DefaultLimits)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Path, err)
				}
				fr = append(fr, ms(film.Timings.Frame))
				rd = append(rd, ms(film.Timings.Render))
				display = film
			}
			if reducible(syn) {
				one := decode.DefaultLimits
				one.CodecThreads = 1
				for range 3 {
					film, err := decode.Decode(bytes.NewReader(f.data), int64(len(f.data)), one)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", f.Path, err)
					}
					fr1 = append(fr1, ms(film.Timings.Frame))
				}
			}
		}
		st.HeaderMS[syn] = round2(mean(h))
		st.FrameMS[syn] = round2(mean(fr))
		st.RenderMS[syn] = round2(mean(rd))
		if len(fr1) > 0 {
			st.FrameOneThreadMS[syn] = round2(mean(fr1))
		}
	}
	var in preprocess.Input
	d, err := timeIt(5, func() error { in = preprocess.Prepare(display.Image); return nil })
	if err != nil {
		return nil, err
	}
	st.PrepareMS = round2(d)
	x := make([]float32, preprocess.TensorLen)
	d, _ = timeIt(20, func() error { preprocess.Tensor(in.Gray, x); return nil })
	st.TensorMS = round2(d)

	// Inference, each model of every setup once.
	seen := map[string]bool{}
	var all []*triage.Model
	defer func() {
		for _, m := range all {
			m.Close()
		}
	}()
	for _, s := range setups {
		for _, dir := range s.Models {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			m, err := triage.LoadModel(dir, triage.Options{Log: zerolog.Nop()})
			if err != nil {
				return nil, err
			}
			all = append(all, m)
			st.InferenceMS[m.Manifest.Name] = map[int]float64{}
			for _, b := range []int{1, 8} {
				xb := make([]float32, b*preprocess.TensorLen)
				for i := range b {
					copy(xb[i*preprocess.TensorLen:], x)
				}
				d, err := timeIt(max(2, 8/b), func() error { _, _, err := m.Run(xb, b); return err })
				if err != nil {
					return nil, err
				}
				st.InferenceMS[m.Manifest.Name][b] = round2(d / float64(b))
			}
		}
	}
	// CPU per film, exact and reduced, and per model (issue 18's estimate).
	cpu, err := measureCPU(per, all, x)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, m := range all {
		names[m.Dir] = m.Manifest.Name
	}
	cpu.estimateSetups(runtime.NumCPU(), films, setups, names)
	st.CPU = cpu
	// CAM heatmaps: the default model alone, and the ensemble.
	for _, s := range setups[:min(2, len(setups))] {
		var ms []*triage.Model
		for _, dir := range s.Models {
			for _, m := range all {
				if m.Dir == dir {
					ms = append(ms, m)
				}
			}
		}
		res := &triage.Result{}
		for _, m := range ms {
			outs, _, err := m.Run(x, 1)
			if err != nil {
				return nil, err
			}
			res.Models = append(res.Models, triage.ModelScore{Name: m.Manifest.Name, CAM: outs[0].CAM, CAMW: outs[0].CAMW, CAMH: outs[0].CAMH})
		}
		d, err := timeIt(3, func() error {
			cam, err := heatmap.ResultCAM(res)
			if err != nil {
				return err
			}
			img, err := heatmap.Render(display.Image, in.Crop, cam, heatmap.DefaultRender)
			if err != nil {
				return err
			}
			if _, err := heatmap.EncodePNG(img); err != nil {
				return err
			}
			_, err = heatmap.Raw(cam)
			return err
		})
		if err != nil {
			return nil, err
		}
		st.HeatmapMS[s.Name] = round2(d)
	}
	pr, pa, err := publishCost(ctx, o)
	if err != nil {
		return nil, err
	}
	st.PublishResultMS, st.PublishAlertMS = round2(pr), round2(pa)
	return st, nil
}

// publishCost publishes results to an embedded JetStream that fsyncs every
// write, as the daemon's default does.
func publishCost(ctx context.Context, o Options) (result, alert float64, err error) {
	dir, err := os.MkdirTemp(o.Out, "publish-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{Listen: "127.0.0.1:-1", StoreDir: filepath.Join(dir, "nats"), SyncAlways: true}, zerolog.Nop())
	if err != nil {
		return 0, 0, err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	so := bus.StreamSpec{Replicas: 1, MaxAge: time.Hour, DuplicateWindow: time.Hour}
	rs, as := so, so
	rs.Name, as.Name = "R", "A"
	p, err := publish.New(nc, publish.Options{Prefix: "triaged", Results: rs, Alerts: as, ManageStreams: true, Timeout: 10 * time.Second})
	if err != nil {
		return 0, 0, err
	}
	if err := p.EnsureStreams(ctx); err != nil {
		return 0, 0, err
	}
	i := 0
	r := func(positive bool) func() error {
		return func() error {
			i++
			res := &publish.Result{Schema: publish.ResultSchema, Kind: "result", Priority: "urgent", ModelSet: "ms-bench",
				Film:   publish.Film{SOPInstanceUID: fmt.Sprintf("2.25.%d", i), Rows: 2000, Columns: 2500, TransferSyntax: "1.2.840.10008.1.2.4.90"},
				Models: []publish.ModelScore{{Name: "squeezenet1_1", Provider: triage.ProviderCPU, Probability: 0.7}}, Score: 0.7, ScoredAt: time.Now()}
			_, err := p.PublishResult(ctx, res, positive)
			return err
		}
	}
	if result, err = timeIt(40, r(false)); err != nil {
		return 0, 0, err
	}
	if alert, err = timeIt(40, r(true)); err != nil {
		return 0, 0, err
	}
	return result, alert, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
