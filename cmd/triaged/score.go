package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/decode"
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
	fs := newFlags("score", stderr)
	cfgPath := fs.String("config", "", "config file (models, thresholds, ONNX Runtime)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: triaged score [-config FILE] FILE...")
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	log := newLogger(stderr, "warn")
	eng, err := daemon.NewEngine(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer eng.Close()
	lim := daemon.DecodeLimits(cfg)
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

func scoreOne(eng *triage.Engine, path string, lim decode.Limits) (*daemon.Analysis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) >= 132 && string(data[128:132]) == "DICM" {
		return daemon.Analyze(context.Background(), eng, bytes.NewReader(data), int64(len(data)), lim, "")
	}
	if len(data) > 0 && (data[0] == 0xFF || data[0] == 0x89) {
		return daemon.AnalyzeImage(context.Background(), eng, data, lim)
	}
	return daemon.Analyze(context.Background(), eng, bytes.NewReader(data), int64(len(data)), lim, "")
}
