// Command triaged-bench is `make bench`: the end-to-end benchmark of the
// daemon against the PyTorch reference (package bench, docs/performance.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/triaged/triaged/bench"
)

// list splits a comma- or space-separated list (make's $(wildcard) gives spaces).
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func main() {
	o := bench.Options{}
	var models, int8Models, binary string
	var quick bool
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Films, "films", "var/films", "film set (make films)")
	flag.IntVar(&o.FilmsMax, "films-max", 0, "use at most this many films (0: all)")
	flag.StringVar(&o.CXR, "cxr", "../shared/data/cxr", "the shared data set's cxr/ (backlog films)")
	flag.StringVar(&o.Out, "out", "out/bench", "output directory (report.md, report.json, logs)")
	flag.StringVar(&binary, "binary", "bin/triaged", "the daemon binary")
	flag.StringVar(&o.DefaultModel, "default-model", "models/squeezenet1_1", "the default setup's model directory")
	flag.StringVar(&models, "models", "", "comma-separated model directories of the ensemble (empty: no ensemble setups)")
	flag.BoolVar(&o.Reduced, "reduced", true, "also measure the default model and the ensemble with reduced-resolution JPEG 2000 and HTJ2K decode (decode.resolution.mode: reduced)")
	flag.StringVar(&o.Int8Model, "int8-model", "", "also measure this quantized model alone (e.g. models/int8/squeezenet1_1-int8; empty: skip)")
	flag.StringVar(&int8Models, "int8-models", "", "also measure these quantized models as an ensemble (comma-separated, e.g. models/int8/*-int8; empty: skip)")
	flag.DurationVar(&o.Phase, "seconds", 120*time.Second, "saturated throughput phase per setup")
	flag.IntVar(&o.Outstanding, "outstanding", 24, "films kept waiting while saturating")
	flag.Float64Var(&o.Rate, "rate", 1, "offered load of the latency phase, films/s")
	flag.IntVar(&o.LatencyFilms, "latency-films", 100, "films of the latency phase")
	flag.DurationVar(&o.NATSPhase, "nats-seconds", 45*time.Second, "saturated NATS-intake phase (default setup; 0: skip)")
	flag.IntVar(&o.Backlog, "backlog", 10000, "films of the backlog run (0: skip)")
	flag.IntVar(&o.BacklogFullEvery, "backlog-full-every", 10, "every n-th backlog film is a full-size film (0: small films only)")
	flag.BoolVar(&o.Reference, "reference", true, "run the PyTorch reference")
	flag.IntVar(&o.RefFilms, "ref-films", 0, "films for the reference (0: the whole film set)")
	flag.StringVar(&o.Python, "python", "/usr/bin/python3", "Python with torch, torchvision, pydicom, gdcm")
	flag.BoolVar(&o.Stages, "stages", true, "measure each stage alone, in process")
	flag.BoolVar(&quick, "quick", false, "a short run to check the harness (minutes, not a measurement)")
	flag.Parse()
	o.Ensemble, o.Int8Ensemble = list(models), list(int8Models)
	if quick {
		// Seven setups: short enough to stay within a few minutes.
		o.Phase, o.LatencyFilms, o.NATSPhase, o.Backlog, o.RefFilms = 12*time.Second, 5, 6*time.Second, 200, 8
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o.Launcher = bench.Subprocess{Binary: abs}
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "triaged-bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "bench: report in %s and %s\n", filepath.Join(o.Out, "report.md"), filepath.Join(o.Out, "report.json"))
}
