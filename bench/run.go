// Package bench is the end-to-end benchmark behind `make bench`: it runs
// the real daemon (embedded NATS, drop folder and NATS intake) over the
// generated full-size films, measures sustained throughput, drop-to-alert
// latency at a stated offered load, time per stage, memory and CPU, runs
// the PyTorch reference over the same films and weights for comparison,
// drains a large backlog watching memory, and writes the report
// (docs/performance.md explains every figure).
package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	jsingest "github.com/triaged/triaged/ingest/jetstream"
)

// Options configure a bench run. Zero durations and counts skip their part.
type Options struct {
	Root     string // repository root (models, training scripts)
	Films    string // film set directory (make films)
	FilmsMax int    // use at most this many films (0: all)
	CXR      string // shared data set's cxr/ (backlog films)
	Out      string // where the run's files and the report go

	DefaultModel string   // the default setup's model
	Ensemble     []string // the ensemble setups' models
	// Reduced adds the default model with decode.resolution.mode: reduced
	// (issue 18's option, not the default: docs/performance.md has its
	// gate); Int8Model, when set, adds that quantized model alone.
	Reduced   bool
	Int8Model string
	// Int8Ensemble, when set, adds these quantized models as an ensemble
	// (each with its manifest's thresholds, as the fp32 ensemble).
	Int8Ensemble []string

	Phase        time.Duration // saturated throughput phase, per setup
	Outstanding  int           // films kept in the drop folder while saturating
	Rate         float64       // offered load of the latency phase, films/s
	LatencyFilms int           // films of the latency phase
	NATSPhase    time.Duration // saturated NATS-intake phase (default setup)
	Backlog      int           // films of the backlog run
	// BacklogFullEvery makes every n-th backlog film a full-size film of
	// the film set (a hard link: the same instance again, deduplicated by
	// JetStream but decoded and scored like any other). 0: small films only.
	BacklogFullEvery int

	Reference  bool   // run the PyTorch reference
	RefFilms   int    // films for the reference (0: the whole film set)
	Python     string // /usr/bin/python3
	RefThreads int    // torch threads (0: cores)
	Stages     bool   // isolated per-stage costs, in process

	Launcher Launcher
	Log      io.Writer
}

// Run runs the bench and writes report.md and report.json into o.Out.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Outstanding <= 0 {
		o.Outstanding = 24
	}
	if o.Rate <= 0 {
		o.Rate = 1
	}
	// The daemon resolves relative paths against its config file's folder.
	for _, p := range []*string{&o.Out, &o.Films, &o.CXR, &o.Root, &o.DefaultModel} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	for _, ms := range [][]string{o.Ensemble, o.Int8Ensemble} {
		for i, m := range ms {
			abs, err := filepath.Abs(m)
			if err != nil {
				return nil, err
			}
			ms[i] = abs
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	logf := func(f string, a ...any) { fmt.Fprintf(o.Log, "bench: "+f+"\n", a...) }
	rep := &Report{Options: summarize(o)}
	logf("sampling the machine")
	rep.Machine = Describe(o.Root, 2*time.Second)
	films, err := LoadFilms(o.Films, o.FilmsMax)
	if err != nil {
		return nil, err
	}
	rep.FilmSet = describeFilms(o.Films, films)
	logf("%d films: %s", len(films), rep.FilmSet.Mix)

	setups := benchSetups(o)
	for i, s := range setups {
		logf("setup %q: %s", s.Name, strings.Join(baseNames(s.Models), ", "))
		res, err := runSetup(ctx, o, s, films, uint32(i+1), i == 0 && o.NATSPhase > 0, logf)
		if err != nil {
			return nil, err
		}
		rep.Setups = append(rep.Setups, *res)
	}
	if o.Reference {
		for i, s := range setups[:min(2, len(setups))] {
			logf("PyTorch reference: %s", strings.Join(baseNames(s.Models), ", "))
			ref, err := runReference(ctx, o, s, films)
			if err != nil {
				return nil, err
			}
			rep.Reference = append(rep.Reference, *ref)
			rep.Agreement = append(rep.Agreement, agree(s, ref, rep.Setups[i]))
		}
	}
	if o.Backlog > 0 {
		logf("backlog: %d films", o.Backlog)
		b, err := runBacklog(ctx, o, logf)
		if err != nil {
			return nil, err
		}
		rep.Backlog = b
	}
	if o.Stages {
		logf("isolated stage costs")
		st, err := measureStages(ctx, o, films, setups)
		if err != nil {
			return nil, err
		}
		rep.Stages = st
	}
	rep.DurationS = time.Since(start).Seconds()
	rep.finish()
	if err := rep.write(o.Out); err != nil {
		return nil, err
	}
	return rep, nil
}

// reducedDecode is the config that turns reduced-resolution decode on.
var reducedDecode = map[string]any{"decode": map[string]any{"resolution": map[string]any{"mode": "reduced"}}}

// benchSetups lists the setups of a run: the shipped defaults first (the
// reference pairs with the first two), then issue 18's options beside
// them, each compared with the reference of its model set (Setup.Ref).
func benchSetups(o Options) []Setup {
	setups := []Setup{
		{Name: "default model", Models: []string{o.DefaultModel}, Ref: 1},
		{Name: "ensemble", Models: o.Ensemble, Ref: 2},
		{Name: "ensemble + CAM heatmaps", Models: o.Ensemble, Heatmaps: true, AllAlert: true},
	}
	if len(o.Ensemble) == 0 {
		setups = setups[:1]
	}
	if o.Reduced {
		setups = append(setups, Setup{Name: "default model, reduced decode", Models: []string{o.DefaultModel}, Ref: 1, Extra: reducedDecode})
	}
	if o.Int8Model != "" {
		setups = append(setups, Setup{Name: "default model, int8", Models: []string{o.Int8Model}, Ref: 1})
	}
	if o.Reduced && len(o.Ensemble) > 0 {
		setups = append(setups, Setup{Name: "ensemble, reduced decode", Models: o.Ensemble, Ref: 2, Extra: reducedDecode})
	}
	if len(o.Int8Ensemble) > 0 && len(o.Ensemble) > 0 {
		setups = append(setups, Setup{Name: "ensemble, int8", Models: o.Int8Ensemble, Ref: 2})
	}
	return setups
}

func baseNames(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = filepath.Base(p)
	}
	return out
}

// runSetup starts a daemon for s and runs its phases: saturated throughput
// from the drop folder, the latency phase at the offered load, and, for
// the first setup, saturated throughput from the NATS intake.
func runSetup(ctx context.Context, o Options, s Setup, films []*Film, run uint32, natsPhase bool, logf func(string, ...any)) (*SetupResult, error) {
	dir := filepath.Join(o.Out, "run", strings.NewReplacer(" ", "-", "+", "").Replace(s.Name))
	os.RemoveAll(dir)
	in, err := startDaemon(ctx, o.Launcher, dir, s)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Join(dir, "nats"))
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		return in.proc.Stop()
	}
	defer stop()
	nc, err := nats.Connect(in.natsURL, nats.Name("triaged-bench"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	tr, err := newTracker(nc)
	if err != nil {
		return nil, err
	}
	defer tr.close()
	cleaner := cleanDone(filepath.Join(in.drop, "done"))
	defer cleaner()
	res := &SetupResult{Setup: s}
	res.Setup.Models = baseNames(s.Models)
	cp := &copies{films: films, run: run}
	mem := sampleMemory(in.proc.PID(), 250*time.Millisecond, nil)

	if o.Phase > 0 {
		logf("  saturated, drop folder, %s", o.Phase)
		t := time.Now()
		ph, err := saturate(ctx, in, tr, cp, o, "folder", o.Phase)
		if err != nil {
			return nil, err
		}
		ph.PeakRSS = mem.peak(t, time.Now())
		res.Throughput = ph
	}
	if o.LatencyFilms > 0 {
		logf("  %g films/s, drop folder, %d films", o.Rate, o.LatencyFilms)
		t := time.Now()
		ph, err := paced(ctx, in, tr, cp, o.Rate, o.LatencyFilms)
		if err != nil {
			return nil, err
		}
		ph.PeakRSS = mem.peak(t, time.Now())
		res.Latency = ph
	}
	if natsPhase {
		logf("  saturated, NATS intake, %s", o.NATSPhase)
		t := time.Now()
		ph, err := saturate(ctx, in, tr, cp, o, "nats", o.NATSPhase)
		if err != nil {
			return nil, err
		}
		ph.PeakRSS = mem.peak(t, time.Now())
		res.NATS = ph
	}
	_, hwm := memStatus(in.proc.PID())
	samples := mem.finish()
	res.PeakRSS = hwm
	for _, x := range samples {
		res.PeakSampledRSS = max(res.PeakSampledRSS, x.RSS)
	}
	res.Providers = providers(tr)
	res.films = tr.snapshot()
	if err := stop(); err != nil {
		logf("  daemon stop: %v", err)
	}
	return res, nil
}

// providers lists each model's execution provider as the results report it.
func providers(tr *tracker) map[string]string {
	out := map[string]string{}
	for _, t := range tr.snapshot() {
		if t.res != nil {
			for _, m := range t.res.Models {
				out[m.Name] = m.Provider
			}
			break
		}
	}
	return out
}

// cleanDone removes the films the daemon moved to done/ as they arrive, so a
// long run does not fill the disk with copies. It returns a stop function.
func cleanDone(dir string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			select {
			case <-tk.C:
			case <-stop:
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

// dropper hands film copies to the daemon.
type dropper interface {
	drop(ctx context.Context) error
}

type folderDropper struct {
	in *instance
	tr *tracker
	cp *copies
}

// drop writes a copy under a hidden name, then renames it into the drop
// folder, as a well-behaved sender does: the rename is the drop time.
func (d *folderDropper) drop(ctx context.Context) error {
	data, uid, f := d.cp.next()
	name := fmt.Sprintf("bench-%d-%s.dcm", d.cp.run, uid[len(uid)-6:])
	tmp := filepath.Join(d.in.drop, "."+name)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	d.tr.dropped(uid, f, time.Now()) // registered first: the result may come at once
	if err := os.Rename(tmp, filepath.Join(d.in.drop, name)); err != nil {
		return err
	}
	d.tr.mu.Lock()
	d.tr.films[uid].dropped = time.Now()
	d.tr.mu.Unlock()
	return nil
}

// natsDropper submits copies to the daemon's JetStream intake the way
// `triaged submit` does for films above the inline limit: the film into the
// intake's object store under its sha256, then a reference message. The
// drop time is the reference's PubAck.
type natsDropper struct {
	in  *instance
	tr  *tracker
	cp  *copies
	js  jetstream.JetStream
	obs jetstream.ObjectStore
}

func (d *natsDropper) drop(ctx context.Context) error {
	data, uid, f := d.cp.next()
	if d.obs == nil {
		obs, err := d.js.ObjectStore(ctx, "TRIAGED_FILMS")
		if err != nil {
			return fmt.Errorf("intake object store: %w", err)
		}
		d.obs = obs
	}
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:])
	if _, err := d.obs.PutBytes(ctx, name, data); err != nil {
		return fmt.Errorf("upload film: %w", err)
	}
	ref, _ := json.Marshal(jsingest.ObjectRef{Schema: jsingest.ObjectRefSchema, Bucket: "TRIAGED_FILMS", Name: name, Size: int64(len(data)), SHA256: name})
	m := nats.NewMsg("triaged.ingest")
	m.Data = ref
	m.Header.Set(nats.MsgIdHdr, name)
	m.Header.Set(jsingest.HeaderFilename, fmt.Sprintf("bench-%s.dcm", uid[len(uid)-6:]))
	d.tr.dropped(uid, f, time.Now())
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish film reference: %w", err)
	}
	d.tr.mu.Lock()
	d.tr.films[uid].dropped = time.Now()
	d.tr.mu.Unlock()
	return nil
}

func newDropper(in *instance, tr *tracker, cp *copies, source string) (dropper, error) {
	if source == "nats" {
		nc, err := nats.Connect(in.natsURL, nats.Name("triaged-bench-submit"))
		if err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		return &natsDropper{in: in, tr: tr, cp: cp, js: js}, nil
	}
	return &folderDropper{in: in, tr: tr, cp: cp}, nil
}

// saturate keeps o.Outstanding films waiting in front of the daemon for d,
// then lets it finish. Throughput counts the films finished in the window
// after a warm-up (a sixth of d, 1-20 s).
func saturate(ctx context.Context, in *instance, tr *tracker, cp *copies, o Options, source string, d time.Duration) (PhaseResult, error) {
	dr, err := newDropper(in, tr, cp, source)
	if err != nil {
		return PhaseResult{}, err
	}
	warm := min(max(d/6, time.Second), 20*time.Second)
	t0 := time.Now()
	d0, _ := tr.counts()
	var m0, m1 *metricsSnapshot
	var c0, c1, b0, b1, tot0, tot1 float64
	wStart, wEnd := t0.Add(warm), t0.Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(wEnd) {
		if m0 == nil && time.Now().After(wStart) {
			m0, _ = scrape(in.httpAddr)
			c0, _ = cpuSeconds(in.proc.PID())
			b0, tot0 = machineBusy()
		}
		dropped, done := tr.counts()
		if dropped-done < o.Outstanding {
			if err := dr.drop(ctx); err != nil {
				return PhaseResult{}, err
			}
			continue
		}
		select {
		case <-tr.notify:
		case <-tick.C:
		case <-ctx.Done():
			return PhaseResult{}, ctx.Err()
		}
	}
	m1, _ = scrape(in.httpAddr)
	c1, _ = cpuSeconds(in.proc.PID())
	b1, tot1 = machineBusy()
	if err := waitDone(ctx, tr, 3*time.Minute); err != nil {
		return PhaseResult{}, err
	}
	ph := summarizePhase(tr, d0, wStart, wEnd, m0, m1)
	ph.Source = source
	ph.Offered = fmt.Sprintf("saturated (%d films waiting)", o.Outstanding)
	win := wEnd.Sub(wStart).Seconds()
	ph.DaemonCores = round2((c1 - c0) / win)
	if tot1 > tot0 {
		ph.MachineCores = round2((b1 - b0) / (tot1 - tot0) * float64(runtime.NumCPU()))
	}
	return ph, nil
}

// paced drops n films at rate films/s, evenly spaced, and waits for them.
func paced(ctx context.Context, in *instance, tr *tracker, cp *copies, rate float64, n int) (PhaseResult, error) {
	dr, err := newDropper(in, tr, cp, "folder")
	if err != nil {
		return PhaseResult{}, err
	}
	d0, _ := tr.counts()
	m0, _ := scrape(in.httpAddr)
	c0, _ := cpuSeconds(in.proc.PID())
	t0 := time.Now()
	every := time.Duration(float64(time.Second) / rate)
	for i := range n {
		if wait := time.Until(t0.Add(time.Duration(i) * every)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return PhaseResult{}, ctx.Err()
			}
		}
		if err := dr.drop(ctx); err != nil {
			return PhaseResult{}, err
		}
	}
	if err := waitDone(ctx, tr, 3*time.Minute); err != nil {
		return PhaseResult{}, err
	}
	t1 := time.Now()
	m1, _ := scrape(in.httpAddr)
	c1, _ := cpuSeconds(in.proc.PID())
	ph := summarizePhase(tr, d0, t0, t1.Add(time.Second), m0, m1)
	ph.Source = "folder"
	ph.Offered = fmt.Sprintf("%g films/s, evenly spaced, %d films", rate, n)
	ph.DaemonCores = round2((c1 - c0) / t1.Sub(t0).Seconds())
	return ph, nil
}

// waitDone waits until every dropped film has a result or an error.
func waitDone(ctx context.Context, tr *tracker, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		dropped, done := tr.counts()
		if done >= dropped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d films still without a result after %s", dropped-done, dropped, timeout)
		}
		select {
		case <-tr.notify:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// summarizePhase computes a phase's figures from the films dropped after
// the first `skip` and finished within [from, to].
func summarizePhase(tr *tracker, skip int, from, to time.Time, m0, m1 *metricsSnapshot) PhaseResult {
	all := tr.snapshot()
	sort.Slice(all, func(i, j int) bool { return all[i].dropped.Before(all[j].dropped) })
	if skip < len(all) {
		all = all[skip:]
	} else {
		all = nil
	}
	var ph PhaseResult
	var lr, la []float64
	stage := map[string][]float64{}
	bySyntax := map[string][]float64{}
	prepBySyntax := map[string][]float64{}
	for _, t := range all {
		if t.errCode != "" {
			ph.Errors++
			ph.ErrorCodes = appendUnique(ph.ErrorCodes, t.errCode)
			continue
		}
		if t.result.IsZero() || t.result.Before(from) || t.result.After(to) {
			continue
		}
		ph.Films++
		lr = append(lr, ms(t.result.Sub(t.dropped)))
		if !t.alert.IsZero() {
			la = append(la, ms(t.alert.Sub(t.dropped)))
		}
		tm := t.res.Timings
		for k, v := range map[string]float64{"queue": tm.QueueMS, "decode": tm.DecodeMS, "preprocess": tm.PreprocessMS,
			"inference": tm.InferenceMS, "heatmap": tm.HeatmapMS, "total before publish": tm.TotalMS} {
			stage[k] = append(stage[k], v)
		}
		bySyntax[t.film.Syntax] = append(bySyntax[t.film.Syntax], tm.DecodeMS)
		prepBySyntax[t.film.Syntax] = append(prepBySyntax[t.film.Syntax], tm.DecodeMS+tm.PreprocessMS)
	}
	ph.Seconds = round2(to.Sub(from).Seconds())
	if ph.Seconds > 0 {
		ph.FilmsPerS = round2(float64(ph.Films) / ph.Seconds)
	}
	ph.DropToResult = dist(lr)
	ph.DropToAlert = dist(la)
	ph.StageMS = map[string]float64{}
	for k, v := range stage {
		ph.StageMS[k] = round2(mean(v))
	}
	ph.DecodeMSBySyntax = map[string]float64{}
	for k, v := range bySyntax {
		ph.DecodeMSBySyntax[k] = round2(mean(v))
	}
	ph.PrepMSBySyntax = map[string]float64{}
	for k, v := range prepBySyntax {
		ph.PrepMSBySyntax[k] = round2(mean(v))
	}
	if m0 != nil && m1 != nil {
		ph.StageMS["publish"] = round2(1000 * meanSince(m0.stage["publish"], m1.stage["publish"]))
		ph.MeanBatch = round2(meanSince(m0.batch, m1.batch))
		ph.InferenceMSByModel = map[string]float64{}
		for k, v := range m1.inference {
			ph.InferenceMSByModel[k] = round2(1000 * meanSince(m0.inference[k], v))
		}
	}
	return ph
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Dist summarises a latency distribution, in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

func dist(v []float64) Dist {
	s := sortedCopy(v)
	if len(s) == 0 {
		return Dist{}
	}
	return Dist{N: len(s), Mean: round2(mean(s)), P50: round2(percentile(s, 50)), P95: round2(percentile(s, 95)),
		P99: round2(percentile(s, 99)), Max: round2(s[len(s)-1])}
}

// runBacklog drops o.Backlog small films into a drop folder, starts a
// daemon on the shipped defaults (default model, heatmaps with occlusion
// for critical alerts) and samples its memory until every film is done.
func runBacklog(ctx context.Context, o Options, logf func(string, ...any)) (*BacklogResult, error) {
	dir := filepath.Join(o.Out, "run", "backlog")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	drop := filepath.Join(dir, "incoming")
	t0 := time.Now()
	paths, err := SmallFilms(drop, o.CXR, o.Backlog)
	if err != nil {
		return nil, err
	}
	full := 0
	if o.BacklogFullEvery > 0 {
		films, err := LoadFilms(o.Films, o.FilmsMax)
		if err != nil {
			return nil, err
		}
		for i := o.BacklogFullEvery - 1; i < len(paths); i += o.BacklogFullEvery {
			f := films[full%len(films)]
			if err := os.Remove(paths[i]); err != nil {
				return nil, err
			}
			if err := os.Link(f.Path, paths[i]); err != nil {
				return nil, fmt.Errorf("backlog: link a full-size film (the film set and %s must share a filesystem): %w", dir, err)
			}
			full++
		}
	}
	var bytes int64
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			bytes += st.Size()
		}
	}
	logf("  %d films written in %.0fs (%.0f MB)", len(paths), time.Since(t0).Seconds(), float64(bytes)/1e6)
	s := Setup{Name: "backlog", Models: []string{o.DefaultModel}, Shipped: true}
	t1 := time.Now()
	in, err := startDaemon(ctx, o.Launcher, dir, s)
	if err != nil {
		return nil, err
	}
	defer in.proc.Stop()
	ready := time.Since(t1)
	// The daemon starts on the backlog before the bench can subscribe to
	// anything, so progress is read from its own counter of films done.
	var done, errs atomic.Int64
	poll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			if m, err := scrape(in.httpAddr); err == nil {
				done.Store(int64(m.filmsDone))
				errs.Store(int64(m.quarantined))
			}
			select {
			case <-poll:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	defer func() { close(poll); <-pollDone }()
	cleaner := cleanDone(filepath.Join(drop, "done"))
	defer cleaner()
	mem := sampleMemory(in.proc.PID(), 500*time.Millisecond, func() int { return int(done.Load()) })
	c0, _ := cpuSeconds(in.proc.PID())
	last, lastAt := int64(0), time.Now()
	for done.Load() < int64(len(paths)) {
		select {
		case <-ctx.Done():
			mem.finish()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if n := done.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > 3*time.Minute {
			mem.finish()
			return nil, fmt.Errorf("backlog: no progress for 3 minutes at %d of %d films", last, len(paths))
		}
	}
	took := time.Since(t1)
	c1, _ := cpuSeconds(in.proc.PID())
	_, hwm := memStatus(in.proc.PID())
	samples := mem.finish()
	b := &BacklogResult{
		Films: len(paths), FilmBytes: bytes / int64(len(paths)), ReadyS: round2(ready.Seconds()),
		DrainS: round2(took.Seconds()), FilmsPerS: round2(float64(len(paths)) / took.Seconds()),
		Errors: int(errs.Load()), PeakRSS: hwm, DaemonCores: round2((c1 - c0) / took.Seconds()),
		Description: fmt.Sprintf("films: %d small ones (the shared JPEGs at their own size, shorter side 256, 12 bits in 16, explicit VR little endian, unique UIDs) and every %dth a full-size film of the film set (%d, hard links: repeated instances, deduplicated on JetStream but decoded and scored), all in the drop folder before the daemon starts; shipped defaults (default model, CAM on alerts, occlusion for critical alerts)",
			len(paths)-full, o.BacklogFullEvery, full),
		FullSize: full,
	}
	b.ByProgress = rssByProgress(samples, len(paths))
	b.Samples = samples
	return b, nil
}

// rssByProgress is the largest RSS seen in each tenth of the backlog.
func rssByProgress(ss []memSample, n int) []int64 {
	out := make([]int64, 10)
	for _, s := range ss {
		k := min(s.Done*10/max(n, 1), 9)
		out[k] = max(out[k], s.RSS)
	}
	return out
}
