package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// RefResult is the PyTorch reference pipeline over the film set
// (training/reference_infer.py: pydicom + GDCM, numpy, PIL, torchvision,
// torch, image by image as the Deep-COVID inference script does).
type RefResult struct {
	Models    []string `json:"models"`
	Films     int      `json:"films"`
	Seconds   float64  `json:"seconds"`
	FilmsPerS float64  `json:"films_per_s"`
	Threads   int      `json:"torch_threads"`
	Versions  string   `json:"versions"`
	// Per film, mean milliseconds: reading and decoding the DICOM file to the
	// RGB image the transform takes (by syntax), the transform, each model.
	LoadMSBySyntax     map[string]float64 `json:"load_ms_by_syntax"`
	PreprocessMS       float64            `json:"preprocess_ms"`
	InferenceMSByModel map[string]float64 `json:"inference_ms_by_model"`
	// scores[path][model or "ensemble"]
	scores map[string]map[string]float64
}

var refSummary = regexp.MustCompile(`# (\d+) films in ([0-9.]+)s: [0-9.]+ films/s, (\d+) threads, (.*)`)

func runReference(ctx context.Context, o Options, s Setup, films []*Film) (*RefResult, error) {
	py := o.Python
	if py == "" {
		py = "/usr/bin/python3"
	}
	threads := o.RefThreads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	set := films
	if o.RefFilms > 0 && o.RefFilms < len(set) {
		set = set[:o.RefFilms]
	}
	out := filepath.Join(o.Out, "run", "reference-"+strings.Join(baseNames(s.Models), "+")+".csv")
	if len(s.Models) > 1 {
		out = filepath.Join(o.Out, "run", "reference-ensemble.csv")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	args := []string{filepath.Join(o.Root, "training", "reference_infer.py"), "--threads", strconv.Itoa(threads), "--csv", out}
	for _, m := range s.Models {
		abs, _ := filepath.Abs(m)
		args = append(args, "--model", abs)
	}
	for _, f := range set {
		args = append(args, f.Path)
	}
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = o.Root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("PyTorch reference (%s %s): %v\n%s", py, args[0], err, lastLines(stderr.String(), 20))
	}
	sm := refSummary.FindStringSubmatch(stderr.String())
	if sm == nil {
		return nil, fmt.Errorf("PyTorch reference: no summary line in its output:\n%s", lastLines(stderr.String(), 20))
	}
	r := &RefResult{Models: baseNames(s.Models), Threads: threads, Versions: strings.TrimSpace(sm[4]),
		LoadMSBySyntax: map[string]float64{}, InferenceMSByModel: map[string]float64{}, scores: map[string]map[string]float64{}}
	r.Films, _ = strconv.Atoi(sm[1])
	r.Seconds, _ = strconv.ParseFloat(sm[2], 64)
	if r.Seconds > 0 {
		r.FilmsPerS = round2(float64(r.Films) / r.Seconds)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("PyTorch reference: %s: %v", out, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	syntax := map[string]string{}
	for _, f := range set {
		syntax[f.Path] = f.Syntax
	}
	load := map[string][]float64{}
	var pre []float64
	inf := map[string][]float64{}
	for _, row := range rows[1:] {
		path := row[0]
		sc := map[string]float64{}
		for _, m := range append(append([]string(nil), r.Models...), "ensemble") {
			if i, ok := col[m]; ok {
				sc[m], _ = strconv.ParseFloat(row[i], 64)
			}
		}
		r.scores[path] = sc
		f := func(name string) float64 {
			if i, ok := col[name]; ok {
				v, _ := strconv.ParseFloat(row[i], 64)
				return 1000 * v
			}
			return math.NaN()
		}
		load[syntax[path]] = append(load[syntax[path]], f("load_s"))
		pre = append(pre, f("preprocess_s"))
		for _, m := range r.Models {
			inf[m] = append(inf[m], f(m+"_s"))
		}
	}
	for k, v := range load {
		r.LoadMSBySyntax[k] = round2(mean(v))
	}
	r.PreprocessMS = round2(mean(pre))
	for k, v := range inf {
		r.InferenceMSByModel[k] = round2(mean(v))
	}
	return r, nil
}

// Agreement compares the daemon's scores with the reference's on the same
// films.
type Agreement struct {
	Setup      string             `json:"setup"`
	Films      int                `json:"films"`
	MaxAbsDiff map[string]float64 `json:"max_abs_diff"` // per model, and "ensemble"
	Tolerance  float64            `json:"tolerance"`
	OK         bool               `json:"ok"`
}

// AgreementTolerance is the largest difference in P(COVID-19) accepted
// between the daemon and the reference on the same film: float32 inference
// in two runtimes (ONNX Runtime, PyTorch) differs by a few 1e-7 on these
// networks; decoding and preprocessing are exact.
const AgreementTolerance = 1e-4

func agree(s Setup, ref *RefResult, res SetupResult) Agreement {
	a := Agreement{Setup: s.Name, MaxAbsDiff: map[string]float64{}, Tolerance: AgreementTolerance, OK: true}
	seen := map[string]bool{}
	for _, t := range res.films {
		if t.res == nil || seen[t.film.Path] {
			continue
		}
		want, ok := ref.scores[t.film.Path]
		if !ok {
			continue
		}
		seen[t.film.Path] = true
		a.Films++
		for _, m := range t.res.Models {
			if w, ok := want[m.Name]; ok {
				a.MaxAbsDiff[m.Name] = max(a.MaxAbsDiff[m.Name], math.Abs(m.Probability-w))
			}
		}
		if w, ok := want["ensemble"]; ok {
			a.MaxAbsDiff["ensemble"] = max(a.MaxAbsDiff["ensemble"], math.Abs(t.res.Score-w))
		}
	}
	for _, d := range a.MaxAbsDiff {
		if d > a.Tolerance {
			a.OK = false
		}
	}
	if a.Films == 0 {
		a.OK = false
	}
	return a
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
