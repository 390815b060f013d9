package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// scoreFailure is printed for a file that could not be scored.
type scoreFailure struct {
	File  string `json:"file"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

func cmdScore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("score", stdout, stderr)
	cfgPath := fs.configFlag("models, thresholds, ONNX Runtime")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	log := newLogger(stderr, "warn")
	eng, err := provision.Engine(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer eng.Close()
	lim := provision.DecodeLimits(cfg)
	host, _ := os.Hostname()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	failed := 0
	for _, path := range fs.Args() {
		a, err := scoreOne(eng, path, lim)
		if err != nil {
			failed++
			enc.Encode(scoreFailure{File: path, Code: string(decode.CodeOf(err)), Error: decode.Reason(err)})
			fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
			continue
		}
		enc.Encode(a.Message(eng, publish.Source{Kind: "file", Name: filepath.Dir(path), File: filepath.Base(path)}, version, host))
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func scoreOne(eng *triage.Engine, path string, lim decode.Limits) (*film.Analysis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return film.AnalyzeFile(context.Background(), eng, data, lim)
}
