package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Report is everything a bench run measured.
type Report struct {
	Machine   Machine         `json:"machine"`
	Options   OptionsSummary  `json:"options"`
	FilmSet   FilmSetInfo     `json:"film_set"`
	Setups    []SetupResult   `json:"setups"`
	Reference []RefResult     `json:"reference,omitempty"`
	Agreement []Agreement     `json:"agreement,omitempty"`
	Backlog   *BacklogResult  `json:"backlog,omitempty"`
	Stages    *StageCosts     `json:"stages,omitempty"`
	Targets   []TargetOutcome `json:"targets"`
	DurationS float64         `json:"duration_s"`
}

// OptionsSummary is what a run was asked to do.
type OptionsSummary struct {
	Seconds      float64  `json:"throughput_seconds"`
	Outstanding  int      `json:"outstanding"`
	Rate         float64  `json:"offered_load_films_per_s"`
	LatencyFilms int      `json:"latency_films"`
	NATSSeconds  float64  `json:"nats_seconds"`
	Backlog      int      `json:"backlog"`
	DefaultModel string   `json:"default_model"`
	Ensemble     []string `json:"ensemble"`
}

func summarize(o Options) OptionsSummary {
	return OptionsSummary{Seconds: o.Phase.Seconds(), Outstanding: o.Outstanding, Rate: o.Rate, LatencyFilms: o.LatencyFilms,
		NATSSeconds: o.NATSPhase.Seconds(), Backlog: o.Backlog, DefaultModel: o.DefaultModel, Ensemble: o.Ensemble}
}

// FilmSetInfo describes the films.
type FilmSetInfo struct {
	Dir       string  `json:"dir"`
	Films     int     `json:"films"`
	Mix       string  `json:"mix"`
	Size      string  `json:"size"`
	MeanBytes float64 `json:"mean_bytes"`
}

func describeFilms(dir string, fs []*Film) FilmSetInfo {
	var b int64
	minR, maxR, minC, maxC := 1<<30, 0, 1<<30, 0
	for _, f := range fs {
		b += f.Bytes
		minR, maxR, minC, maxC = min(minR, f.Rows), max(maxR, f.Rows), min(minC, f.Cols), max(maxC, f.Cols)
	}
	size := fmt.Sprintf("%d-%d rows x %d-%d columns", minR, maxR, minC, maxC)
	return FilmSetInfo{Dir: dir, Films: len(fs), Mix: shortSyntaxes(fs), Size: size, MeanBytes: float64(b) / float64(len(fs))}
}

// SetupResult is one daemon setup's phases.
type SetupResult struct {
	Setup          Setup             `json:"setup"`
	Throughput     PhaseResult       `json:"throughput"`
	Latency        PhaseResult       `json:"latency"`
	NATS           PhaseResult       `json:"nats_intake,omitempty"`
	PeakRSS        int64             `json:"peak_rss_bytes"` // VmHWM over the daemon's life
	PeakSampledRSS int64             `json:"peak_sampled_rss_bytes"`
	Providers      map[string]string `json:"providers"`
	films          []track
}

// PhaseResult is one phase of a setup.
type PhaseResult struct {
	Source           string             `json:"source,omitempty"` // folder, nats
	Offered          string             `json:"offered_load,omitempty"`
	Films            int                `json:"films"`
	Seconds          float64            `json:"seconds"`
	FilmsPerS        float64            `json:"films_per_s"`
	Errors           int                `json:"errors"`
	ErrorCodes       []string           `json:"error_codes,omitempty"`
	DropToResult     Dist               `json:"drop_to_result"`
	DropToAlert      Dist               `json:"drop_to_alert"`
	StageMS          map[string]float64 `json:"stage_ms,omitempty"`
	DecodeMSBySyntax map[string]float64 `json:"decode_ms_by_syntax,omitempty"`
	// Decode + preprocess wall ms per film by syntax, from the results'
	// stage timings (films known by their SOP Instance UID).
	PrepMSBySyntax     map[string]float64 `json:"decode_preprocess_ms_by_syntax,omitempty"`
	InferenceMSByModel map[string]float64 `json:"inference_batch_ms_by_model,omitempty"`
	MeanBatch          float64            `json:"mean_batch"`
	DaemonCores        float64            `json:"daemon_cpu_cores"`
	MachineCores       float64            `json:"machine_busy_cores,omitempty"`
	PeakRSS            int64              `json:"peak_sampled_rss_bytes"`
}

// BacklogResult is the backlog run.
type BacklogResult struct {
	Description string      `json:"description"`
	Films       int         `json:"films"`
	FullSize    int         `json:"full_size_films"`
	FilmBytes   int64       `json:"mean_film_bytes"`
	ReadyS      float64     `json:"ready_s"`
	DrainS      float64     `json:"drain_s"`
	FilmsPerS   float64     `json:"films_per_s"`
	Errors      int         `json:"errors"`
	PeakRSS     int64       `json:"peak_rss_bytes"`
	ByProgress  []int64     `json:"max_rss_by_tenth_bytes"`
	DaemonCores float64     `json:"daemon_cpu_cores"`
	Samples     []memSample `json:"rss_samples"`
}

// TargetOutcome is one of the issue's "done when" figures.
type TargetOutcome struct {
	What     string `json:"what"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (r *Report) setup(name string) *SetupResult {
	for i := range r.Setups {
		if r.Setups[i].Setup.Name == name {
			return &r.Setups[i]
		}
	}
	return nil
}

func (r *Report) ratio(i int) float64 {
	if i >= len(r.Reference) || i >= len(r.Setups) || r.Reference[i].FilmsPerS == 0 {
		return 0
	}
	return r.Setups[i].Throughput.FilmsPerS / r.Reference[i].FilmsPerS
}

// reference is the PyTorch reference run setup s is compared with (the
// same model set's), or nil.
func (r *Report) reference(s *SetupResult) *RefResult {
	if i := s.Setup.Ref - 1; i >= 0 && i < len(r.Reference) && r.Reference[i].FilmsPerS > 0 {
		return &r.Reference[i]
	}
	return nil
}

// issue18Targets are issue 18's throughput targets vs the reference, by
// Setup.Ref: the default model at least 5x, the ensemble at least 4x.
var issue18Targets = map[int]float64{1: 5, 2: 4}

// finish evaluates the targets.
func (r *Report) finish() {
	r.Targets = nil
	for i, want := range []float64{3, 2} {
		if i < len(r.Reference) {
			x := r.ratio(i)
			r.Targets = append(r.Targets, TargetOutcome{
				What:     fmt.Sprintf("throughput, %s, vs the PyTorch reference", r.Setups[i].Setup.Name),
				Target:   fmt.Sprintf(">= %gx", want),
				Measured: fmt.Sprintf("%.2fx (%.2f vs %.2f films/s)", x, r.Setups[i].Throughput.FilmsPerS, r.Reference[i].FilmsPerS),
				Met:      x >= want,
			})
		}
	}
	// Issue 18's targets for every setup with a reference: the shipped
	// exact fp32 ones and the reduced-decode and int8 options alike.
	for i := range r.Setups {
		s := &r.Setups[i]
		ref, want := r.reference(s), issue18Targets[s.Setup.Ref]
		if ref == nil || want == 0 {
			continue
		}
		x := s.Throughput.FilmsPerS / ref.FilmsPerS
		r.Targets = append(r.Targets, TargetOutcome{
			What:     fmt.Sprintf("throughput, %s, vs the PyTorch reference (issue 18)", s.Setup.Name),
			Target:   fmt.Sprintf(">= %gx", want),
			Measured: fmt.Sprintf("%.2fx (%.2f vs %.2f films/s)", x, s.Throughput.FilmsPerS, ref.FilmsPerS),
			Met:      x >= want,
		})
	}
	if s := r.setup("ensemble + CAM heatmaps"); s != nil && s.Latency.DropToAlert.N > 0 {
		p := s.Latency.DropToAlert.P99
		r.Targets = append(r.Targets, TargetOutcome{
			What:     fmt.Sprintf("p99 drop->alert, ensemble + CAM, %s", s.Latency.Offered),
			Target:   "<= 1000 ms",
			Measured: fmt.Sprintf("%.0f ms (%d alerts)", p, s.Latency.DropToAlert.N),
			Met:      p <= 1000,
		})
	}
	if b := r.Backlog; b != nil {
		r.Targets = append(r.Targets, TargetOutcome{
			What:     fmt.Sprintf("peak RSS draining a %d-film backlog", b.Films),
			Target:   "<= 1024 MiB",
			Measured: fmt.Sprintf("%.0f MiB", mib(b.PeakRSS)),
			Met:      b.PeakRSS <= 1<<30,
		})
	}
	for _, a := range r.Agreement {
		r.Targets = append(r.Targets, TargetOutcome{
			What:     fmt.Sprintf("scores agree with the reference, %s (%d films)", a.Setup, a.Films),
			Target:   fmt.Sprintf("max |difference| <= %g", a.Tolerance),
			Measured: fmt.Sprintf("%.1e", maxOf(a.MaxAbsDiff)),
			Met:      a.OK,
		})
	}
}

// modelLabel names a model directory with its manifest's version, which
// says when it is an untrained benchmark network (make bench-models).
func modelLabel(dir string) string {
	v := "?"
	if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err == nil {
		var m struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &m) == nil {
			v = m.Version
		}
	}
	return fmt.Sprintf("`%s` (%s)", filepath.Base(dir), v)
}

func maxOf(m map[string]float64) float64 {
	x := 0.0
	for _, v := range m {
		x = max(x, v)
	}
	return x
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the report as a block ready for README.md or
// docs/performance.md.
func (r *Report) Markdown() string {
	var w strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&w, f, a...) }
	m := r.Machine
	p("#### `make bench`, %s\n\n", m.Date.Format("2006-01-02 15:04 MST"))
	p("- Machine: %s, %d cores, %.1f GiB; Linux %s; %s; commit %s.\n", m.CPUModel, m.Cores, m.MemoryGiB, m.Kernel, m.Go, m.Commit)
	busy := "none"
	if len(m.Busy) > 0 {
		var bs []string
		for _, b := range m.Busy {
			bs = append(bs, fmt.Sprintf("%s (%.2f cores)", b.Command, b.Cores))
		}
		busy = strings.Join(bs, ", ") + ": **timings are contaminated**"
	}
	p("- Load average at start: %s; other processes busy at start: %s.\n", m.LoadAvg, busy)
	fs := r.FilmSet
	p("- Films: %d generated films (%s), %s, 12 bits stored, mean %.1f MB; the daemon gets unique copies (new SOP Instance UID) in turn.\n",
		fs.Films, fs.Mix, fs.Size, fs.MeanBytes/1e6)
	o := r.Options
	var ens []string
	for _, m := range o.Ensemble {
		ens = append(ens, modelLabel(m))
	}
	p("- Models: default %s; ensemble %s.\n", modelLabel(o.DefaultModel), strings.Join(ens, ", "))
	if len(o.Ensemble) > 0 && len(o.Ensemble) < 4 {
		p("- **The ensemble has %d models, not the four of the paper.**\n", len(o.Ensemble))
	}
	p("- Throughput: saturated (%d films kept waiting) for %.0f s, counted after a warm-up; latency: %g films/s offered, %d films, evenly spaced; total bench time %s.\n\n",
		o.Outstanding, o.Seconds, o.Rate, o.LatencyFilms, (time.Duration(r.DurationS) * time.Second).String())

	if len(r.Targets) > 0 {
		p("| target | wanted | measured | |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			ok := "met"
			if !t.Met {
				ok = "**not met**"
			}
			p("| %s | %s | %s | %s |\n", t.What, t.Target, t.Measured, ok)
		}
		p("\n")
	}

	p("| setup | films/s | PyTorch reference films/s | ratio | drop->result p50 / p95 / p99 ms | drop->alert p50 / p95 / p99 ms (n) | peak RSS | daemon CPU (cores) |\n")
	p("|---|---|---|---|---|---|---|---|\n")
	for i := range r.Setups {
		s := &r.Setups[i]
		ref, ratio := "", ""
		if rr := r.reference(s); rr != nil {
			ref = fmt.Sprintf("%.2f", rr.FilmsPerS)
			ratio = fmt.Sprintf("%.2fx", s.Throughput.FilmsPerS/rr.FilmsPerS)
		}
		l := s.Latency
		alert := "no alerts"
		if l.DropToAlert.N > 0 {
			alert = fmt.Sprintf("%.0f / %.0f / %.0f (%d)", l.DropToAlert.P50, l.DropToAlert.P95, l.DropToAlert.P99, l.DropToAlert.N)
		}
		p("| %s | %.2f | %s | %s | %.0f / %.0f / %.0f | %s | %.0f MiB | %.2f |\n", s.Setup.Name, s.Throughput.FilmsPerS, ref, ratio,
			l.DropToResult.P50, l.DropToResult.P95, l.DropToResult.P99, alert, mib(s.PeakRSS), s.Throughput.DaemonCores)
	}
	p("\n")
	for _, s := range r.Setups {
		if s.NATS.Films > 0 {
			n := s.NATS
			p("NATS intake (%s, films in the intake's object store, %s): %.2f films/s, drop (reference PubAck) -> result p50 %.0f ms, p99 %.0f ms.\n\n",
				s.Setup.Name, n.Offered, n.FilmsPerS, n.DropToResult.P50, n.DropToResult.P99)
		}
	}

	p("Where a film's time goes in the daemon (saturated throughput phase, mean wall ms per film; decode includes the header parse; inference is the batch's wall time and the mean batch size):\n\n")
	p("| setup | queue | decode | preprocess | inference (batch) | heatmap | publish | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Setups {
		t := s.Throughput
		var dec []string
		for _, k := range sortedKeys(t.DecodeMSBySyntax) {
			dec = append(dec, fmt.Sprintf("%s %.0f", k, t.DecodeMSBySyntax[k]))
		}
		var inf []string
		for _, k := range sortedKeys(t.InferenceMSByModel) {
			inf = append(inf, fmt.Sprintf("%s %.0f", k, t.InferenceMSByModel[k]))
		}
		p("| %s | %.0f | %.0f (%s) | %.1f | %s (mean batch %.1f) | %.0f | %.1f | %d |\n", s.Setup.Name, t.StageMS["queue"], t.StageMS["decode"],
			strings.Join(dec, ", "), t.StageMS["preprocess"], strings.Join(inf, ", "), t.MeanBatch, t.StageMS["heatmap"], t.StageMS["publish"], t.Errors)
	}
	p("\n")
	r.syntaxMarkdown(p)
	if len(r.Reference) > 0 {
		p("PyTorch reference (%s, %d torch threads; mean ms per film):\n\n", r.Reference[0].Versions, r.Reference[0].Threads)
		p("| models | films | load (decode + display, by syntax) | preprocess | inference per model |\n|---|---|---|---|---|\n")
		for _, ref := range r.Reference {
			var ld, inf []string
			for _, k := range sortedKeys(ref.LoadMSBySyntax) {
				ld = append(ld, fmt.Sprintf("%s %.0f", k, ref.LoadMSBySyntax[k]))
			}
			for _, k := range sortedKeys(ref.InferenceMSByModel) {
				inf = append(inf, fmt.Sprintf("%s %.1f", k, ref.InferenceMSByModel[k]))
			}
			p("| %s | %d | %s | %.1f | %s |\n", strings.Join(ref.Models, ", "), ref.Films, strings.Join(ld, ", "), ref.PreprocessMS, strings.Join(inf, ", "))
		}
		p("\n")
	}
	for _, a := range r.Agreement {
		var ds []string
		for _, k := range sortedKeys(a.MaxAbsDiff) {
			ds = append(ds, fmt.Sprintf("%s %.1e", k, a.MaxAbsDiff[k]))
		}
		p("Scores vs the reference, %s, %d films: max |difference| %s (tolerance %g).\n\n", a.Setup, a.Films, strings.Join(ds, ", "), a.Tolerance)
	}
	if st := r.Stages; st != nil {
		p("Isolated cost per film, one at a time in one process (ms):\n\n")
		p("| stage | cost |\n|---|---|\n")
		for _, k := range sortedKeys(st.FrameMS) {
			one := ""
			if v, ok := st.FrameOneThreadMS[k]; ok {
				one = fmt.Sprintf(" (samples on 1 thread: %.1f)", v)
			}
			p("| %s: header %.1f, samples %.1f, display %.1f%s | %.1f |\n", k, st.HeaderMS[k], st.FrameMS[k], st.RenderMS[k], one, st.HeaderMS[k]+st.FrameMS[k]+st.RenderMS[k])
		}
		p("| resize + crop (Pillow-exact) | %.1f |\n| tensor | %.2f |\n", st.PrepareMS, st.TensorMS)
		for _, k := range sortedKeys(st.InferenceMS) {
			p("| inference %s: batch 1 / batch 8, per film | %.1f / %.1f |\n", k, st.InferenceMS[k][1], st.InferenceMS[k][8])
		}
		for _, k := range sortedKeys(st.HeatmapMS) {
			p("| CAM heatmap (%s): map, overlay, PNG, raw | %.1f |\n", k, st.HeatmapMS[k])
		}
		p("| publish result / result + alert (fsync) | %.1f / %.1f |\n\n", st.PublishResultMS, st.PublishAlertMS)
		if st.CPU != nil {
			st.CPU.markdown(p, r.Machine.Cores)
		}
	}
	if b := r.Backlog; b != nil {
		var pr []string
		for _, x := range b.ByProgress {
			pr = append(pr, fmt.Sprintf("%.0f", mib(x)))
		}
		p("Backlog: %d %s; mean %.0f kB. Ready after %.1f s, drained in %.0f s (%.1f films/s, %d errors, %.2f cores); peak RSS %.0f MiB; largest RSS in each tenth of the drain (MiB): %s.\n\n",
			b.Films, b.Description, float64(b.FilmBytes)/1e3, b.ReadyS, b.DrainS, b.FilmsPerS, b.Errors, b.DaemonCores, mib(b.PeakRSS), strings.Join(pr, ", "))
	}
	var prov []string
	for _, s := range r.Setups {
		for _, k := range sortedKeys(s.Providers) {
			prov = appendUnique(prov, k+": "+s.Providers[k])
		}
	}
	if len(prov) > 0 {
		p("Execution providers: %s.\n", strings.Join(prov, ", "))
	}
	return w.String()
}

// syntaxMarkdown writes the daemon's decode + preprocess wall time per film
// by transfer syntax for every setup (saturated phase).
func (r *Report) syntaxMarkdown(p func(string, ...any)) {
	var syn []string
	for _, s := range r.Setups {
		for k := range s.Throughput.PrepMSBySyntax {
			syn = appendUnique(syn, k)
		}
	}
	if len(syn) == 0 {
		return
	}
	syn = orderSyntaxes(syn)
	p("Decode + preprocess by transfer syntax in the daemon (saturated throughput phase, mean wall ms per film from the results' stage timings; under load, so wall time includes waiting for a core):\n\n")
	p("| setup | %s |\n|---|%s\n", strings.Join(syn, " | "), strings.Repeat("---|", len(syn)))
	for _, s := range r.Setups {
		var cs []string
		for _, k := range syn {
			if v, ok := s.Throughput.PrepMSBySyntax[k]; ok {
				cs = append(cs, fmt.Sprintf("%.0f", v))
			} else {
				cs = append(cs, "")
			}
		}
		p("| %s | %s |\n", s.Setup.Name, strings.Join(cs, " | "))
	}
	p("\n")
}

// orderSyntaxes puts the film set's syntaxes in make films' order, others
// after them by name.
func orderSyntaxes(syn []string) []string {
	order := map[string]int{"explicit": 1, "jpegll": 2, "j2kll": 3, "j2k": 4, "htj2kll": 5, "htj2k": 6}
	out := append([]string(nil), syn...)
	sort.Slice(out, func(i, j int) bool {
		a, b := order[out[i]], order[out[j]]
		if a == 0 {
			a = 100
		}
		if b == 0 {
			b = 100
		}
		if a != b {
			return a < b
		}
		return out[i] < out[j]
	})
	return out
}
