package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/triage"
)

// labeledFlags are the flags eval and calibrate share.
type labeledFlags struct {
	cfgPath, models, labels, split, set, folder *string
	workers                                     *int
}

func addLabeledFlags(fs *flags, defaultSet string) labeledFlags {
	return labeledFlags{
		cfgPath: fs.configFlag("models, thresholds, ONNX Runtime"),
		models:  fs.String("models", "", "comma-separated model directories (overrides the config's models)"),
		labels:  fs.String("labels", "", "labels CSV with file,label[,source,patient_id] columns (files relative to the CSV)"),
		split:   fs.String("split", "", "split file (models/split.json) to select patients from the CSV"),
		set:     fs.String("set", defaultSet, "which set of the split: train, val or test"),
		folder:  fs.String("folder", "", "labeled folder with covid/ and non/ subfolders (instead of -labels)"),
		workers: fs.Int("workers", 4, "films decoded in parallel"),
	}
}

func (lf labeledFlags) load() ([]eval.Item, string, error) {
	switch {
	case *lf.folder != "":
		items, err := eval.LoadFolder(*lf.folder)
		return items, filepath.Base(*lf.folder), err
	case *lf.labels != "":
		var sp *eval.Split
		name := filepath.Base(*lf.labels)
		if *lf.split != "" {
			var err error
			if sp, err = eval.LoadSplit(*lf.split); err != nil {
				return nil, "", err
			}
			name = fmt.Sprintf("%s split of %s", *lf.set, filepath.Base(*lf.split))
		}
		items, err := eval.LoadCSV(*lf.labels, sp, *lf.set)
		return items, name, err
	}
	return nil, "", errors.New("give -labels CSV (optionally with -split and -set) or -folder DIR")
}

func (lf labeledFlags) engine(stderr io.Writer) (*triage.Engine, error) {
	eng, _, err := lf.engineConfig(stderr)
	return eng, err
}

func (lf labeledFlags) engineConfig(stderr io.Writer) (*triage.Engine, *config.Config, error) {
	cfg, err := loadConfig(*lf.cfgPath)
	if err != nil {
		return nil, nil, err
	}
	if *lf.models != "" {
		cfg.Models = nil
		for _, m := range strings.Split(*lf.models, ",") {
			cfg.Models = append(cfg.Models, config.Model{Path: strings.TrimSpace(m)})
		}
	}
	cfg.Triage.BatchSize = max(cfg.Triage.BatchSize, 16)
	eng, err := provision.Engine(cfg, newLogger(stderr, "warn"))
	return eng, cfg, err
}

func modelInfos(eng *triage.Engine) ([]eval.ModelInfo, eval.ModelInfo) {
	var ms []eval.ModelInfo
	for _, m := range eng.Models {
		ms = append(ms, eval.ModelInfo{Name: m.Manifest.Name, Version: m.Manifest.Version, Urgent: m.Manifest.Thresholds.Urgent, Critical: m.Manifest.Thresholds.Critical})
	}
	return ms, eval.ModelInfo{Name: "ensemble", Version: eng.Set, Urgent: eng.Thresholds.Urgent, Critical: eng.Thresholds.Critical}
}

func cmdEval(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("model eval", stdout, stderr)
	lf := addLabeledFlags(fs, "test")
	sf := addStoredFlags(fs) // -stored: the stored results, live and shadow (evalstored.go)
	out := fs.outFlag("out/eval", "directory for report.json, report.md and the figures", "out")
	heat := fs.String("heatmaps", "cam", "deletion check of the heatmaps on the positives: off, cam, or both (CAM and occlusion; occlusion costs ((224-N)/S+1)^2 passes per film and model)")
	stride := fs.Int("occlusion-stride", 0, "occlusion stride S for the check (default: heatmap.occlusion.stride)")
	shortcut := addShortcutFlags(fs) // -border, -source-probe (eval_shortcut.go)
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if *sf.stored {
		return sf.run(*lf.cfgPath, *lf.labels, *out, stdout, stderr)
	}
	if *shortcut.border < 0 || *shortcut.border >= 0.5 {
		fmt.Fprintf(stderr, "triaged: -border %g: want a fraction of the crop from 0 to below 0.5\n", *shortcut.border)
		return 2
	}
	items, name, err := lf.load()
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 2
	}
	if *heat != "off" && *heat != "cam" && *heat != "both" {
		fmt.Fprintf(stderr, "triaged: -heatmaps must be off, cam or both\n")
		return 2
	}
	eng, cfg, err := lf.engineConfig(stderr)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	defer eng.Close()
	outs := eval.Run(context.Background(), eng, items, eval.Options{Workers: *lf.workers, KeepInputs: *heat != "off" || shortcut.on(),
		Progress: newProgress(stderr, len(items)).counter()})
	ms, ens := modelInfos(eng)
	rep := eval.Build(name, outs, ms, ens)
	var deletion string
	if *heat != "off" {
		if deletion, err = faithfulness(eng, cfg, outs, rep, *heat == "both", *stride, stderr); err != nil {
			fmt.Fprintf(stderr, "triaged: heatmap check: %v\n", err)
			return 1
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	md := rep.Markdown()
	sc, err := shortcutChecks(shortcut, eng, outs, *out)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: shortcut checks: %v\n", err)
		return 1
	}
	md += sc
	if deletion != "" {
		md += "\nHeatmap faithfulness (deletion check on the COVID-19 images): mean P(COVID-19) after deleting the top k% of each map, and k% in random regions; a faithful map lowers it faster than random.\n\n```\n" + deletion + "```\n"
	}
	if err := rep.WriteJSON(filepath.Join(*out, "report.json")); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(*out, "report.md"), []byte(md), 0o644); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	files, err := rep.WriteFigures(*out)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, md)
	fmt.Fprintf(stdout, "\nwrote %s, %s and %d figures\n", filepath.Join(*out, "report.json"), filepath.Join(*out, "report.md"), len(files))
	if len(rep.Failed) > 0 {
		fmt.Fprintf(stderr, "triaged: %d files could not be scored, e.g. %s\n", len(rep.Failed), rep.Failed[0])
		return 1
	}
	return 0
}

// faithfulness runs the heatmap deletion check (heatmap.Faithfulness) on the
// positives just scored and records it in the report.
func faithfulness(eng *triage.Engine, cfg *config.Config, outs []eval.Outcome, rep *eval.Report, occlusion bool, stride int, stderr io.Writer) (string, error) {
	var xs [][]float32
	for _, o := range outs {
		if o.Err == nil && o.Item.Positive && o.Input != nil {
			x := make([]float32, preprocess.TensorLen)
			preprocess.Tensor(o.Input.Gray, x)
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return "", nil
	}
	_, occ, err := provision.Heatmap(cfg.Heatmap)
	if err != nil {
		return "", err
	}
	if stride > 0 {
		occ.Stride = stride
	}
	dopt := heatmap.DefaultDeletion
	dopt.Fill = occ.Fill
	if !occlusion {
		occ = heatmap.Occlusion{}
		dopt.Fill = heatmap.Fill{Mean: true}
	} else if err := occ.Check(); err != nil {
		return "", err
	}
	t0 := time.Now()
	rs, err := heatmap.Faithfulness(context.Background(), eng.Models, xs, heatmap.CheckOptions{
		Occlusion: occ, Deletion: dopt,
		Progress: func(model string, done, total int) {
			if done == total {
				fmt.Fprintf(stderr, "heatmap check: %s done (%s)\n", model, time.Since(t0).Round(time.Second))
			}
		},
	})
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		f := eval.Faithfulness{Model: r.Model, Films: r.Films, RandomDrop10: r.Drop10[heatmap.Random], Methods: map[string]eval.MethodFaithfulness{}}
		for _, m := range r.Methods() {
			f.Methods[m] = eval.MethodFaithfulness{Drop10: r.Drop10[m], Wins: r.Wins[m], BeatsRandom: r.BeatsRandom(m), DeletionAUC: r.Curves[m].AUC()}
		}
		rep.Faithfulness = append(rep.Faithfulness, f)
	}
	var b strings.Builder
	if err := heatmap.WriteDeletionReport(&b, rs); err != nil {
		return "", err
	}
	return b.String(), nil
}
