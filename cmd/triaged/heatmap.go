package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/internal/splitdata"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/provision"
)

// testPositives picks n COVID-19 images of the test split, spread evenly
// over its sorted list (all of them for n <= 0).
func testPositives(split, cxr string, n int) ([]splitdata.Image, error) {
	ims, err := splitdata.Images(split, cxr, "test", "covid")
	if err != nil {
		return nil, err
	}
	if len(ims) == 0 {
		return nil, fmt.Errorf("no COVID-19 images in the test split of %s", split)
	}
	if n <= 0 || n >= len(ims) {
		return ims, nil
	}
	out := make([]splitdata.Image, n)
	for i := range out {
		out[i] = ims[i*len(ims)/n]
	}
	return out, nil
}

func cmdHeatmap(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("heatmap render", stdout, stderr)
	cfgPath := fs.configFlag("models, heatmap rendering and occlusion settings")
	method := fs.String("method", "cam", "cam, occlusion or both")
	out := fs.outFlag(".", "directory the PNG overlays (and .npy raw maps) are written to", "out")
	positives := fs.Int("test-positives", 0, "instead of FILEs, render N COVID-19 films of the test split (models/split.json)")
	split := fs.String("split", "models/split.json", "the split, with -test-positives")
	cxr := fs.String("data", "../shared/data/cxr", "the shared chest X-ray set, with -test-positives")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	files := fs.Args()
	if *positives > 0 {
		ims, err := testPositives(*split, *cxr, *positives)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		for _, im := range ims {
			files = append(files, im.Path)
		}
	}
	doCAM, doOcc := *method == "cam" || *method == "both", *method == "occlusion" || *method == "both"
	if len(files) == 0 || (!doCAM && !doOcc) {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	ro, occ, err := provision.Heatmap(cfg.Heatmap)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(*out, 0o750); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	eng, err := provision.Engine(cfg, newLogger(stderr, "warn"))
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer eng.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lim := decode.Limits{MaxFileSize: int64(cfg.Ingest.MaxFileSize), MaxPixels: cfg.Decode.MaxPixels}
	failed := 0
	for i, path := range files {
		a, err := scoreOne(eng, path, lim)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
			continue
		}
		var maps []*heatmap.Map
		if doCAM {
			m, err := heatmap.ResultCAM(a.Result)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
				continue
			}
			maps = append(maps, m)
		}
		if doOcc {
			x := make([]float32, preprocess.TensorLen)
			preprocess.Tensor(a.Input.Gray, x)
			t0 := time.Now()
			m, err := occ.Occlude(ctx, heatmap.Runners(eng, a.Result), x)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
				continue
			}
			fmt.Fprintf(stderr, "%s: occlusion took %s\n", path, time.Since(t0).Round(time.Millisecond))
			maps = append(maps, m)
		}
		// Numbered, not named after the input: film file names often carry
		// UIDs. stdout maps each output to its input.
		base := fmt.Sprintf("%02d", i+1)
		for _, m := range maps {
			img, err := heatmap.Render(a.Display, a.Input.Crop, m, ro)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
				continue
			}
			png, err := heatmap.EncodePNG(img)
			if err == nil {
				err = os.WriteFile(filepath.Join(*out, base+"-"+m.Method+".png"), png, 0o640)
			}
			if err == nil {
				var raw []byte
				if raw, err = heatmap.Raw(m); err == nil {
					err = os.WriteFile(filepath.Join(*out, base+"-"+m.Method+".npy"), raw, 0o640)
				}
			}
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
				continue
			}
			fmt.Fprintf(stdout, "%s\tP(COVID-19) %.3f %s\t%s\n", filepath.Join(*out, base+"-"+m.Method+".png"), a.Result.Ensemble, a.Priority, path)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func cmdHeatmapCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("heatmap check", stdout, stderr)
	cfgPath := fs.configFlag("models, occlusion settings")
	n := fs.Int("n", 0, "number of test-split COVID-19 films, spread over the split (0: all)")
	size := fs.Int("occlusion-size", 0, "occlusion patch size N (default: heatmap.occlusion.size)")
	fs.Var(fs.Lookup("occlusion-size").Value, "size", "deprecated: use -occlusion-size")
	stride := fs.Int("occlusion-stride", 0, "occlusion stride S (default: heatmap.occlusion.stride)")
	fs.Var(fs.Lookup("occlusion-stride").Value, "stride", "deprecated: use -occlusion-stride")
	noOcc := fs.Bool("cam-only", false, "check CAM only (occlusion costs ((224-N)/S+1)^2 passes per film and model)")
	draws := fs.Int("draws", heatmap.DefaultDeletion.RandomDraws, "random masks per film and fraction")
	split := fs.String("split", "models/split.json", "the split")
	cxr := fs.String("data", "../shared/data/cxr", "the shared chest X-ray set")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	_, occ, err := provision.Heatmap(cfg.Heatmap)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	if *size > 0 {
		occ.Size = *size
	}
	if *stride > 0 {
		occ.Stride = *stride
	}
	if err := occ.Check(); err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 2
	}
	if *noOcc {
		occ = heatmap.Occlusion{}
	}
	ims, err := testPositives(*split, *cxr, *n)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	lim := decode.Limits{MaxFileSize: int64(cfg.Ingest.MaxFileSize), MaxPixels: cfg.Decode.MaxPixels}
	var xs [][]float32
	for _, im := range ims {
		b, err := os.ReadFile(im.Path)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		g, err := decode.ImageFile(b, lim)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %s: %v\n", im.Path, err)
			return 1
		}
		x := make([]float32, preprocess.TensorLen)
		preprocess.Tensor(preprocess.Prepare(g).Gray, x)
		xs = append(xs, x)
	}
	eng, err := provision.Engine(cfg, newLogger(stderr, "warn"))
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer eng.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dopt := heatmap.DefaultDeletion
	dopt.RandomDraws = *draws
	dopt.Fill = occ.Fill
	if occ.Size == 0 {
		dopt.Fill = heatmap.Fill{Mean: true}
	}
	t0 := time.Now()
	what := "CAM only"
	if occ.Size > 0 {
		what = fmt.Sprintf("CAM and occlusion %dx%d stride %d (%d passes per film and model)", occ.Size, occ.Size, occ.Stride, occ.Passes())
	}
	fmt.Fprintf(stdout, "deletion check on %d COVID-19 films of the test split, %s, %d random draws, fill %s\n", len(xs), what, dopt.RandomDraws, dopt.Fill)
	rs, err := heatmap.Faithfulness(ctx, eng.Models, xs, heatmap.CheckOptions{
		Occlusion: occ, Deletion: dopt,
		Progress: func(model string, done, total int) {
			if done%10 == 0 || done == total {
				fmt.Fprintf(stderr, "%s: maps for %d/%d films (%s)\n", model, done, total, time.Since(t0).Round(time.Second))
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	if err := heatmap.WriteDeletionReport(stdout, rs); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "took %s\n", time.Since(t0).Round(time.Second))
	for _, r := range rs {
		for _, m := range r.Methods() {
			if !r.BeatsRandom(m) {
				return 1
			}
		}
	}
	return 0
}
