package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/triage"
)

// cmdResultObjects scores DICOM films once and writes, for each, the
// objects the daemon returns into the film's study: the structured report
// and, for a positive film, the heatmap image (CAM overlay), for
// inspection without a PACS. The objects carry the film's patient
// attributes (they are clinical output); stdout names only the files.
func cmdResultObjects(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("result-objects", stdout, stderr)
	cfgPath := fs.configFlag("models, thresholds, heatmap rendering, result_objects")
	out := fs.outFlag("", "directory the objects are written to (required)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() == 0 || *out == "" {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	ro, _, err := provision.Heatmap(cfg.Heatmap)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	rc := cfg.ResultObjects.WithDefaults()
	opts := resultobj.Options{UIDRoot: rc.UIDRoot, SeriesNumber: rc.SeriesNumber, SeriesDescription: rc.SeriesDescription, SoftwareVersion: version}
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
	lim := provision.DecodeLimits(cfg)
	host, _ := os.Hostname()
	failed := 0
	for _, path := range fs.Args() {
		paths, err := resultObjects(path, *out, eng, lim, ro, opts, host)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
			continue
		}
		for _, p := range paths {
			fmt.Fprintf(stdout, "%s\t%s\n", p, path)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// resultObjects scores one film and writes its objects into dir (named by
// their SOP Instance UIDs, so films share a directory).
func resultObjects(path, dir string, eng *triage.Engine, lim decode.Limits, ro heatmap.RenderOptions, opts resultobj.Options, host string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, err := film.AnalyzeFile(context.Background(), eng, data, lim)
	if err != nil {
		return nil, err
	}
	r := a.Message(eng, publish.Source{Kind: "file", Name: filepath.Dir(path), File: filepath.Base(path)}, version, host)
	var overlay []byte
	if a.Priority.Positive() {
		m, err := heatmap.ResultCAM(a.Result)
		if err != nil {
			return nil, err
		}
		img, err := heatmap.Render(a.Display, a.Input.Crop, m, ro)
		if err != nil {
			return nil, err
		}
		if overlay, err = heatmap.EncodePNG(img); err != nil {
			return nil, err
		}
	}
	src, err := resultobj.ReadSourceFile(path, lim)
	if err != nil {
		return nil, err
	}
	objs, err := resultobj.Build(src, r, overlay, opts)
	if err != nil {
		return nil, err
	}
	return resultobj.WriteFiles(dir, objs)
}
