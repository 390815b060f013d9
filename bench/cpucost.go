package bench

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// CPUCosts are the CPU costs per film behind issue 18's per-syntax
// comparison: decode + preprocess on one thread (the codec too), exact and
// at reduced resolution, and inference CPU per model. Wall time under load
// (PhaseResult.PrepMSBySyntax) mixes waiting with working; CPU time is
// what a film takes from the machine's cores.
type CPUCosts struct {
	// Per syntax, mean CPU ms of header parse, decode, display pipeline,
	// resize + crop and tensor, one thread.
	ExactMS map[string]float64 `json:"exact_ms"`
	// The same with decode.resolution.mode: reduced (JPEG 2000 and HTJ2K
	// syntaxes only), and the resolution level it stopped at (most films).
	ReducedMS    map[string]float64 `json:"reduced_ms,omitempty"`
	ReducedLevel map[string]int     `json:"reduced_level,omitempty"`
	// Inference CPU ms per film at batch 8 (process CPU time over the
	// runs, ONNX Runtime's default threads), by model name.
	InferenceMS map[string]float64 `json:"inference_ms"`
	// Estimated films/s by setup name and syntax ("mix": the film set's
	// mix), from the figures above (CPUCosts.estimate).
	Estimate map[string]map[string]float64 `json:"estimated_films_per_s,omitempty"`
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD, not in package syscall
	syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time of the whole process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reducible says whether a syntax of the film set is one reduced decode
// applies to (JPEG 2000, HTJ2K).
func reducible(syn string) bool {
	return strings.HasPrefix(syn, "j2k") || strings.HasPrefix(syn, "htj2k")
}

// prepCPU decodes and preprocesses data n times on this thread only and
// returns the mean CPU ms and the level the decode stopped at.
func prepCPU(data []byte, minSide, n int) (float64, int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lim := decode.DefaultLimits
	lim.CodecThreads = 1
	lim.ReducedMinSide = minSide
	x := make([]float32, preprocess.TensorLen)
	var total time.Duration
	level := 0
	for i := range n + 1 {
		t0 := threadCPU()
		film, err := decode.Decode(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return 0, 0, err
		}
		in := preprocess.Prepare(film.Image)
		preprocess.Tensor(in.Gray, x)
		if i > 0 { // the first is a warm-up
			total += threadCPU() - t0
		}
		level = film.Reduced
	}
	return ms(total) / float64(n), level, nil
}

// measureCPU fills the CPU costs of up to three films per syntax, and of
// the models already loaded for the stage costs.
func measureCPU(per map[string][]*Film, models []*triage.Model, x []float32) (*CPUCosts, error) {
	c := &CPUCosts{ExactMS: map[string]float64{}, ReducedMS: map[string]float64{}, ReducedLevel: map[string]int{}, InferenceMS: map[string]float64{}}
	for syn, fs := range per {
		var ex, red []float64
		levels := map[int]int{}
		for _, f := range fs {
			v, _, err := prepCPU(f.data, 0, 2)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			ex = append(ex, v)
			if reducible(syn) {
				v, l, err := prepCPU(f.data, config.DefaultResolutionFloor, 2)
				if err != nil {
					return nil, fmt.Errorf("%s, reduced: %w", f.Path, err)
				}
				red = append(red, v)
				levels[l]++
			}
		}
		c.ExactMS[syn] = round2(mean(ex))
		if len(red) > 0 {
			c.ReducedMS[syn] = round2(mean(red))
			best := -1
			for l, k := range levels {
				if best < 0 || k > levels[best] || (k == levels[best] && l < best) {
					best = l
				}
			}
			c.ReducedLevel[syn] = best
		}
	}
	const b, runs = 8, 3
	xb := make([]float32, b*preprocess.TensorLen)
	for i := range b {
		copy(xb[i*preprocess.TensorLen:], x)
	}
	for _, m := range models {
		if _, _, err := m.Run(xb, b); err != nil { // warm-up
			return nil, err
		}
		t0 := processCPU()
		for range runs {
			if _, _, err := m.Run(xb, b); err != nil {
				return nil, err
			}
		}
		c.InferenceMS[m.Manifest.Name] = round2(ms(processCPU()-t0) / (b * runs))
	}
	return c, nil
}

// estimate is films/s = cores / CPU seconds per film, for decode +
// preprocess of one syntax and the inference of models (names): an
// estimate that leaves out queueing, publishing and the daemon's other work.
func (c *CPUCosts) estimate(cores int, prepMS float64, models []string) float64 {
	t := prepMS
	for _, m := range models {
		v, ok := c.InferenceMS[m]
		if !ok {
			return 0
		}
		t += v
	}
	if t <= 0 {
		return 0
	}
	return float64(cores) * 1000 / t
}

// estimateSetups fills c.Estimate for every setup compared with a
// reference: each film of the set costs its syntax's decode + preprocess
// (reduced where the setup decodes reduced and the syntax allows) plus the
// setup's models' inference.
// names maps model directories to their manifests' names.
func (c *CPUCosts) estimateSetups(cores int, films []*Film, setups []Setup, names map[string]string) {
	c.Estimate = map[string]map[string]float64{}
	for _, s := range setups {
		if s.Ref == 0 {
			continue
		}
		var ms []string
		for _, dir := range s.Models {
			ms = append(ms, names[dir])
		}
		prep := func(syn string) float64 {
			if v, ok := c.ReducedMS[syn]; ok && s.Extra != nil {
				return v
			}
			return c.ExactMS[syn]
		}
		e := map[string]float64{}
		for syn := range c.ExactMS {
			e[syn] = round2(c.estimate(cores, prep(syn), ms))
		}
		var sum float64
		for _, f := range films {
			sum += prep(f.Syntax)
		}
		if len(films) > 0 {
			e["mix"] = round2(c.estimate(cores, sum/float64(len(films)), ms))
		}
		c.Estimate[s.Name] = e
	}
}

// markdown writes the CPU table and the estimates.
func (c *CPUCosts) markdown(p func(string, ...any), cores int) {
	syn := orderSyntaxes(sortedKeys(c.ExactMS))
	p("CPU per film by syntax: header, decode, display, resize + crop and tensor on one thread (codec too), exact and with `decode.resolution.mode: reduced` (floor %d; level most films stopped at):\n\n", config.DefaultResolutionFloor)
	p("| syntax | exact CPU ms | reduced CPU ms (level) | exact / reduced |\n|---|---|---|---|\n")
	for _, k := range syn {
		red, ratio := "exact only", ""
		if v, ok := c.ReducedMS[k]; ok && v > 0 {
			red = fmt.Sprintf("%.1f (%d)", v, c.ReducedLevel[k])
			ratio = fmt.Sprintf("%.1fx", c.ExactMS[k]/v)
		}
		p("| %s | %.1f | %s | %s |\n", k, c.ExactMS[k], red, ratio)
	}
	var inf []string
	for _, k := range sortedKeys(c.InferenceMS) {
		inf = append(inf, fmt.Sprintf("%s %.1f", k, c.InferenceMS[k]))
	}
	p("\nInference CPU ms per film at batch 8: %s.\n\n", strings.Join(inf, ", "))
	if len(c.Estimate) == 0 {
		return
	}
	p("**Estimate**, not a measurement: films/s = %d cores / (CPU s per film: the decode + preprocess above + the setup's inference at batch 8); it leaves out queueing, publishing and the daemon's other work, so the measured films/s above are lower:\n\n", cores)
	p("| setup | %s | mix |\n|---|%s---|\n", strings.Join(syn, " | "), strings.Repeat("---|", len(syn)))
	for _, name := range sortedKeys(c.Estimate) {
		e := c.Estimate[name]
		var cs []string
		for _, k := range append(syn, "mix") {
			if e[k] > 0 {
				cs = append(cs, fmt.Sprintf("%.1f", e[k]))
			} else {
				cs = append(cs, "n/a") // a model without its inference cost
			}
		}
		p("| %s | %s |\n", name, strings.Join(cs, " | "))
	}
	p("\n")
}
