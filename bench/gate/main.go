// Command gate compares two ways of scoring the same films, film by film:
// arm A (the reference: full-size decode, fp32 models) against arm B (a
// reduced-resolution decode, or other models such as int8 ones). It reports
// what issue 18's accuracy gates ask for: per model and for the ensemble,
// max and p99 |dP(COVID-19)|, the films whose priority changes at either
// threshold, AUC both ways with a paired bootstrap interval of the
// difference, and the decode + preprocessing CPU time per film both ways.
//
//	go run ./bench/gate -films var/films-gate -extra ../shared/data/dicom/original/RG1_J2KI.dcm \
//	    -models models/squeezenet1_1,... -b-floor 448 -o out/gate-resolution
//	go run ./bench/gate -labels ../shared/data/cxr/labels.csv -split models/split.json -set test \
//	    -models models/squeezenet1_1 -b-models var/int8/squeezenet1_1 -o out/gate-int8
//
// Films come from a `make films` folder (its manifest.json gives each
// film's label) or from the labeled images of a split; -extra adds
// unlabeled DICOM files (they count for |dP| and priorities, not AUC).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

type item struct {
	Path, Syntax string
	Labeled      bool
	Positive     bool
}

// arm is one way of scoring: a decode floor and a model set.
type arm struct {
	name              string
	floor             int
	models            []*triage.Model
	urgent, critical  float64 // ensemble thresholds
	modelUrg, modelCr []float64
}

// Film is one film's outcome in both arms.
type Film struct {
	Path     string       `json:"path"`
	Syntax   string       `json:"syntax"`
	Labeled  bool         `json:"labeled"`
	Positive bool         `json:"positive"`
	P        [2][]float64 `json:"p"` // per arm: each model's P(COVID-19), then the ensemble
	Reduced  [2]int       `json:"reduced"`
	CPUms    [2]float64   `json:"cpu_ms"` // decode + preprocessing, one thread
	Err      string       `json:"error,omitempty"`
}

func main() {
	films := flag.String("films", "", "a make-films folder (manifest.json with labels)")
	syntaxes := flag.String("syntaxes", "", "keep only these syntaxes of -films (comma-separated)")
	limit := flag.Int("limit", 0, "at most this many films (0: all)")
	labels := flag.String("labels", "", "labels.csv of an image data set (instead of -films)")
	split := flag.String("split", "models/split.json", "the split of -labels")
	set := flag.String("set", "test", "the split's set")
	extra := flag.String("extra", "", "unlabeled DICOM files to add (comma-separated)")
	aModels := flag.String("models", "models/squeezenet1_1", "arm A's model directories (comma-separated)")
	bModels := flag.String("b-models", "", "arm B's model directories (default: arm A's)")
	aFloor := flag.Int("a-floor", 0, "arm A's decode floor (0: full size)")
	bFloor := flag.Int("b-floor", 0, "arm B's decode floor (448: reduced resolution)")
	urgent := flag.Float64("urgent", -1, "ensemble urgent threshold (default: the first model's; config/examples/ensemble.yaml for four)")
	critical := flag.Float64("critical", -1, "ensemble critical threshold")
	bUrgent := flag.Float64("b-urgent", -1, "arm B's ensemble urgent threshold (default: arm A's)")
	bCritical := flag.Float64("b-critical", -1, "arm B's ensemble critical threshold")
	out := flag.String("o", "out/gate", "output folder (gate.json, gate.md)")
	flag.DurationVar(&speedFor, "speed", 0, "also time each model of both arms at batch 1 and 8 for this long (e.g. 3s)")
	flag.Parse()
	if err := run(*films, *syntaxes, *limit, *labels, *split, *set, *extra, *aModels, *bModels, *aFloor, *bFloor,
		[4]float64{*urgent, *critical, *bUrgent, *bCritical}, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(1)
	}
}

func loadItems(films, syntaxes string, limit int, labels, split, set, extra string) ([]item, error) {
	var items []item
	switch {
	case films != "":
		b, err := os.ReadFile(filepath.Join(films, "manifest.json"))
		if err != nil {
			return nil, fmt.Errorf("film set: %w", err)
		}
		var m struct {
			Films []struct {
				File, Label, Syntax string
			} `json:"films"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("film set %s: %w", films, err)
		}
		keep := map[string]bool{}
		for _, s := range strings.Split(syntaxes, ",") {
			if s != "" {
				keep[s] = true
			}
		}
		for _, f := range m.Films {
			if len(keep) > 0 && !keep[f.Syntax] {
				continue
			}
			items = append(items, item{Path: filepath.Join(films, f.File), Syntax: f.Syntax, Labeled: f.Label != "", Positive: f.Label == "covid"})
		}
	case labels != "":
		sp, err := eval.LoadSplit(split)
		if err != nil {
			return nil, err
		}
		its, err := eval.LoadCSV(labels, sp, set)
		if err != nil {
			return nil, err
		}
		for _, it := range its {
			items = append(items, item{Path: it.Path, Syntax: "jpeg-image", Labeled: true, Positive: it.Positive})
		}
	}
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	for _, p := range strings.Split(extra, ",") {
		if p != "" {
			items = append(items, item{Path: p, Syntax: "shared:" + filepath.Base(p)})
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no films: give -films, -labels or -extra")
	}
	return items, nil
}

func loadArm(name, dirs string, floor int, urgent, critical float64) (*arm, error) {
	a := &arm{name: name, floor: floor, urgent: urgent, critical: critical}
	for _, d := range strings.Split(dirs, ",") {
		m, err := triage.LoadModel(d, triage.Options{Log: zerolog.Nop()})
		if err != nil {
			return nil, err
		}
		a.models = append(a.models, m)
		a.modelUrg = append(a.modelUrg, m.Manifest.Thresholds.Urgent)
		a.modelCr = append(a.modelCr, m.Manifest.Thresholds.Critical)
	}
	if a.urgent < 0 {
		a.urgent = a.modelUrg[0]
	}
	if a.critical < 0 {
		a.critical = a.modelCr[0]
	}
	return a, nil
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1
	syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// prepare decodes and preprocesses a film on this thread only (the codec
// too), measuring its CPU time.
func prepare(path string, floor int) ([]float32, int, float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lim := decode.DefaultLimits
	lim.CodecThreads = 1
	lim.ReducedMinSide = floor
	t0 := threadCPU()
	var img = (*decode.Film)(nil)
	var gray = preprocess.Input{}
	reduced := 0
	if decode.Sniff(data) == decode.KindDICOM {
		img, err = decode.Decode(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return nil, 0, 0, err
		}
		gray = preprocess.Prepare(img.Image)
		reduced = img.Reduced
	} else {
		g, err := decode.ImageFile(data, lim)
		if err != nil {
			return nil, 0, 0, err
		}
		gray = preprocess.Prepare(g)
	}
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(gray.Gray, x)
	return x, reduced, float64(threadCPU()-t0) / 1e6, nil
}

func score(a *arm, x []float32) ([]float64, error) {
	var ps []float64
	sum := 0.0
	for _, m := range a.models {
		o, _, err := m.Run(x, 1)
		if err != nil {
			return nil, err
		}
		ps = append(ps, o[0].Prob)
		sum += o[0].Prob
	}
	return append(ps, sum/float64(len(a.models))), nil
}

func run(films, syntaxes string, limit int, labels, split, set, extra, aModels, bModels string, aFloor, bFloor int, th [4]float64, out string) error {
	items, err := loadItems(films, syntaxes, limit, labels, split, set, extra)
	if err != nil {
		return err
	}
	if bModels == "" {
		bModels = aModels
	}
	a, err := loadArm("A", aModels, aFloor, th[0], th[1])
	if err != nil {
		return err
	}
	bu, bc := th[2], th[3]
	if bu < 0 {
		bu = a.urgent
	}
	if bc < 0 {
		bc = a.critical
	}
	if bModels != aModels && th[2] < 0 {
		bu = -1 // arm B's own models' thresholds
	}
	if bModels != aModels && th[3] < 0 {
		bc = -1
	}
	b, err := loadArm("B", bModels, bFloor, bu, bc)
	if err != nil {
		return err
	}
	if len(a.models) != len(b.models) {
		return fmt.Errorf("arm A has %d models, arm B %d", len(a.models), len(b.models))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	jl, err := os.Create(filepath.Join(out, "films.jsonl"))
	if err != nil {
		return err
	}
	defer jl.Close()
	var res []Film
	for i, it := range items {
		f := Film{Path: it.Path, Syntax: it.Syntax, Labeled: it.Labeled, Positive: it.Positive}
		for k, ar := range []*arm{a, b} {
			x, red, cpu, err := prepare(it.Path, ar.floor)
			if err == nil {
				f.P[k], err = score(ar, x)
			}
			if err != nil {
				f.Err = fmt.Sprintf("arm %s: %v", ar.name, err)
				break
			}
			f.Reduced[k], f.CPUms[k] = red, cpu
		}
		json.NewEncoder(jl).Encode(f)
		if f.Err != "" {
			fmt.Fprintf(os.Stderr, "%s: %s\n", it.Path, f.Err)
			continue
		}
		res = append(res, f)
		if (i+1)%20 == 0 {
			fmt.Fprintf(os.Stderr, "%d/%d films\n", i+1, len(items))
		}
	}
	names := []string{}
	for _, m := range a.models {
		names = append(names, m.Manifest.Name)
	}
	if len(names) > 1 {
		names = append(names, "ensemble")
	}
	rep := summarize(res, names, a, b)
	if speedFor > 0 {
		rep.ImagesPerSecond = map[string]map[string][4]float64{}
		for _, ar := range []*arm{a, b} {
			for _, m := range ar.models {
				if _, ok := rep.ImagesPerSecond[m.Manifest.Name]; ok {
					continue
				}
				var v [4]float64
				for k, n := range []int{1, 8} {
					if v[k], v[2+k], err = imagesPerSecond(m, n, speedFor); err != nil {
						return err
					}
				}
				rep.ImagesPerSecond[m.Manifest.Name] = map[string][4]float64{"arm " + ar.name: v}
			}
		}
	}
	rep.Command = strings.Join(os.Args, " ")
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAvg = strings.TrimSpace(string(la))
	}
	jb, _ := json.MarshalIndent(rep, "", " ")
	if err := os.WriteFile(filepath.Join(out, "gate.json"), jb, 0o644); err != nil {
		return err
	}
	md := rep.Markdown()
	fmt.Print(md)
	return os.WriteFile(filepath.Join(out, "gate.md"), []byte(md), 0o644)
}

var speedFor time.Duration

// imagesPerSecond runs m on batches of n for about d (after a warm-up).
func imagesPerSecond(m *triage.Model, n int, d time.Duration) (ips, cpuMS float64, err error) {
	x := make([]float32, n*preprocess.TensorLen)
	for i := range x {
		x[i] = float32(i%251)/125 - 1
	}
	if _, _, err := m.Run(x, n); err != nil {
		return 0, 0, err
	}
	t0, c0 := time.Now(), processCPU()
	runs := 0
	for time.Since(t0) < d || runs < 3 {
		if _, _, err := m.Run(x, n); err != nil {
			return 0, 0, err
		}
		runs++
	}
	return round(float64(runs*n) / time.Since(t0).Seconds()), round(float64(processCPU()-c0) / 1e6 / float64(runs*n)), nil
}

// processCPU is the CPU time of the whole process (ONNX Runtime's threads
// included): on a loaded machine, CPU per image says more than images/s.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Row is one model's (or the ensemble's) comparison.
type Row struct {
	Name            string  `json:"name"`
	MaxAbsDP        float64 `json:"max_abs_dp"`
	P99AbsDP        float64 `json:"p99_abs_dp"`
	PriorityChanges int     `json:"priority_changes"`
	Films           int     `json:"films"`
	Labeled         int     `json:"labeled"`
	AUCA            float64 `json:"auc_a"`
	AUCB            float64 `json:"auc_b"`
	// DAUCLo, DAUCHi: 95% paired bootstrap interval of AUC(B) - AUC(A).
	DAUCLo float64 `json:"dauc_lo"`
	DAUCHi float64 `json:"dauc_hi"`
}

// Report is the gate's outcome.
type Report struct {
	Command string                `json:"command"`
	LoadAvg string                `json:"loadavg"`
	Rows    []Row                 `json:"rows"`
	CPUms   map[string][2]float64 `json:"cpu_ms_per_film_by_syntax"` // mean decode + preprocessing CPU, arm A and B
	Levels  map[int]int           `json:"arm_b_levels"`              // films per reduced level in arm B
	// ImagesPerSecond per model and arm: batch 1 and batch 8 (ONNX
	// Runtime's default threads), with -speed.
	// Then the process CPU milliseconds per image at batch 1 and 8.
	ImagesPerSecond map[string]map[string][4]float64 `json:"images_per_second,omitempty"`
	Pass            bool                             `json:"pass"`
	PassReason      string                           `json:"pass_reason"`
}

func priority(p, urgent, critical float64) int {
	switch {
	case p >= critical:
		return 2
	case p >= urgent:
		return 1
	}
	return 0
}

func summarize(fs []Film, names []string, a, b *arm) *Report {
	rep := &Report{CPUms: map[string][2]float64{}, Levels: map[int]int{}}
	n := map[string]int{}
	for _, f := range fs {
		c := rep.CPUms[f.Syntax]
		c[0] += f.CPUms[0]
		c[1] += f.CPUms[1]
		rep.CPUms[f.Syntax] = c
		n[f.Syntax]++
		rep.Levels[f.Reduced[1]]++
	}
	for s, c := range rep.CPUms {
		rep.CPUms[s] = [2]float64{round(c[0] / float64(n[s])), round(c[1] / float64(n[s]))}
	}
	for k, name := range names {
		r := Row{Name: name, Films: len(fs)}
		var d []float64
		var sa, sb []eval.Scored
		for _, f := range fs {
			pa, pb := f.P[0][k], f.P[1][k]
			d = append(d, math.Abs(pb-pa))
			ua, ca, ub, cb := a.urgent, a.critical, b.urgent, b.critical
			if name != "ensemble" {
				ua, ca, ub, cb = a.modelUrg[k], a.modelCr[k], b.modelUrg[k], b.modelCr[k]
			}
			if priority(pa, ua, ca) != priority(pb, ub, cb) {
				r.PriorityChanges++
			}
			if f.Labeled {
				sa = append(sa, eval.Scored{Score: pa, Positive: f.Positive})
				sb = append(sb, eval.Scored{Score: pb, Positive: f.Positive})
			}
		}
		sort.Float64s(d)
		if len(d) > 0 {
			r.MaxAbsDP = d[len(d)-1]
			r.P99AbsDP = d[int(math.Ceil(0.99*float64(len(d))))-1]
		}
		r.Labeled = len(sa)
		r.AUCA, r.AUCB = eval.AUC(sa), eval.AUC(sb)
		r.DAUCLo, r.DAUCHi = pairedDeltaAUC(sa, sb, 2000, 18)
		rep.Rows = append(rep.Rows, r)
	}
	rep.Pass, rep.PassReason = true, "no priority changes and |AUC(B) - AUC(A)| < 0.002 for every model and the ensemble"
	for _, r := range rep.Rows {
		if r.PriorityChanges > 0 || !(math.Abs(r.AUCB-r.AUCA) < 0.002) {
			rep.Pass = false
			rep.PassReason = fmt.Sprintf("%s: %d priority changes, AUC %.4f -> %.4f", r.Name, r.PriorityChanges, r.AUCA, r.AUCB)
			break
		}
	}
	return rep
}

// pairedDeltaAUC is a 95% percentile bootstrap interval of AUC(b) - AUC(a)
// resampling films (the same films in both arms: paired), positives and
// negatives separately.
func pairedDeltaAUC(a, b []eval.Scored, rounds int, seed uint64) (lo, hi float64) {
	var pos, neg []int
	for i, x := range a {
		if x.Positive {
			pos = append(pos, i)
		} else {
			neg = append(neg, i)
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return math.NaN(), math.NaN()
	}
	r := rand.New(rand.NewPCG(seed, 0x67617465))
	ds := make([]float64, rounds)
	ba, bb := make([]eval.Scored, 0, len(a)), make([]eval.Scored, 0, len(a))
	for i := range ds {
		ba, bb = ba[:0], bb[:0]
		for _, grp := range [][]int{pos, neg} {
			for range grp {
				j := grp[r.IntN(len(grp))]
				ba, bb = append(ba, a[j]), append(bb, b[j])
			}
		}
		ds[i] = eval.AUC(bb) - eval.AUC(ba)
	}
	sort.Float64s(ds)
	return ds[int(0.025*float64(rounds))], ds[int(math.Ceil(0.975*float64(rounds)))-1]
}

func round(x float64) float64 { return math.Round(x*10) / 10 }

// Markdown is the report as the tables of docs/performance.md.
func (r *Report) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "`%s` (load average %s)\n\n", r.Command, r.LoadAvg)
	s.WriteString("| model | films | max \\|dP\\| | p99 \\|dP\\| | priority changes | labeled | AUC A | AUC B | AUC B - A (95% paired bootstrap) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Rows {
		fmt.Fprintf(&s, "| %s | %d | %.4f | %.4f | %d | %d | %.4f | %.4f | %+.4f (%+.4f, %+.4f) |\n", x.Name, x.Films, x.MaxAbsDP, x.P99AbsDP,
			x.PriorityChanges, x.Labeled, x.AUCA, x.AUCB, x.AUCB-x.AUCA, x.DAUCLo, x.DAUCHi)
	}
	s.WriteString("\n| syntax | decode + preprocess CPU ms/film, A | B | A / B |\n|---|---|---|---|\n")
	for _, k := range slices.Sorted(maps.Keys(r.CPUms)) {
		c := r.CPUms[k]
		fmt.Fprintf(&s, "| %s | %.1f | %.1f | %.1fx |\n", k, c[0], c[1], c[0]/math.Max(c[1], 0.1))
	}
	if len(r.ImagesPerSecond) > 0 {
		s.WriteString("\n| model | arm | images/s batch 1 | batch 8 | CPU ms/image batch 1 | batch 8 |\n|---|---|---|---|---|---|\n")
		for _, m := range slices.Sorted(maps.Keys(r.ImagesPerSecond)) {
			for a, v := range r.ImagesPerSecond[m] {
				fmt.Fprintf(&s, "| %s | %s | %.1f | %.1f | %.1f | %.1f |\n", m, a, v[0], v[1], v[2], v[3])
			}
		}
	}
	fmt.Fprintf(&s, "\narm B reduced levels (level: films): %v\n\ngate: pass=%v (%s)\n", r.Levels, r.Pass, r.PassReason)
	return s.String()
}
