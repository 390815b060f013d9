package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigListsEveryProblem(t *testing.T) {
	td := filepath.Join(testenv.Root(), "cmd", "triaged", "testdata")
	code, stdout, out := run("check-config", "-config", filepath.Join(td, "bad.yaml"))
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q (problems belong on stderr)", code, stdout)
	}
	golden := filepath.Join(td, "bad.golden")
	if *update {
		os.WriteFile(golden, []byte(out), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if out != string(want) {
		t.Fatalf("check-config output differs from %s (run go test -update):\n%s", golden, out)
	}
}

func TestCheckConfigAcceptsDefaultsAndExample(t *testing.T) {
	if code, out, errs := run("check-config"); code != 0 {
		t.Fatalf("defaults: exit %d\n%s%s", code, out, errs)
	}
	ex, _ := filepath.Glob(filepath.Join(testenv.Root(), "config", "examples", "*.yaml"))
	for _, p := range ex {
		if code, out, errs := run("check-config", "-config", p); code != 0 {
			t.Errorf("%s: exit %d\n%s%s", p, code, out, errs)
		}
	}
}

// The shipped four-model example config runs the paper's ensemble: every
// model scores the film and the result's score is their mean.
func TestScoreWithTheFourModelEnsemble(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	film := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	code, out, errs := run("score", "-config", filepath.Join(testenv.Root(), "config", "examples", "ensemble.yaml"), film)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var r struct {
		Score  float64 `json:"score"`
		Models []struct {
			Name        string  `json:"name"`
			Probability float64 `json:"probability"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	names, sum := map[string]bool{}, 0.0
	for _, m := range r.Models {
		names[m.Name] = true
		sum += m.Probability
	}
	for _, want := range []string{"squeezenet1_1", "resnet18", "densenet121", "resnet50"} {
		if !names[want] {
			t.Errorf("no %s score in %s", want, out)
		}
	}
	if len(r.Models) != 4 || math.Abs(sum/4-r.Score) > 1e-6 {
		t.Errorf("ensemble score %v is not the mean of its models': %s", r.Score, out)
	}
}

func TestScorePrintsJSONAndFailsOnBadFiles(t *testing.T) {
	testenv.ORT(t)
	film := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	bad := filepath.Join(t.TempDir(), "bad.dcm")
	os.WriteFile(bad, []byte("not a film"), 0o644)
	code, out, _ := run("score", film, bad)
	if code == 0 {
		t.Fatal("exit 0 with a bad file")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got:\n%s", out)
	}
	var r struct {
		Score    float64 `json:"score"`
		Priority string  `json:"priority"`
		Models   []any   `json:"models"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.Priority == "" || len(r.Models) != 1 {
		t.Fatalf("result line: %s (%v)", lines[0], err)
	}
	var f scoreFailure
	if err := json.Unmarshal([]byte(lines[1]), &f); err != nil || f.Code != "not_dicom" {
		t.Fatalf("failure line: %s", lines[1])
	}
	if code, _, _ := run("score", film); code != 0 {
		t.Fatalf("exit %d for a good film", code)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "triaged ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := run("nonsense"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// `triaged eval` on the test split writes the report, the paper's figures
// and the heatmap deletion check.
func TestEvalWritesReportAndFigures(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	data := testenv.SharedData(t)
	out := t.TempDir()
	code, stdout, errs := run("model", "eval", "-labels", filepath.Join(data, "cxr", "labels.csv"), "-split", "models/split.json", "-set", "test",
		"-models", "models/squeezenet1_1", "-heatmaps", "cam", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	for _, f := range []string{"report.json", "report.md", "roc.png", "pr.png", "hist_squeezenet1_1.png", "confusion_squeezenet1_1.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	var rep struct {
		Items        int `json:"items"`
		Models       []struct{ Name string }
		Faithfulness []struct {
			Methods map[string]struct {
				BeatsRandom bool `json:"beats_random"`
			}
		} `json:"heatmap_faithfulness"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Items != 185 || len(rep.Models) != 1 || len(rep.Faithfulness) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(stdout, "| squeezenet1_1 |") || !strings.Contains(stdout, "per source") && !strings.Contains(stdout, "Per source") {
		t.Errorf("markdown table missing:\n%s", stdout)
	}
}

// Every command's -h prints its usage on stdout and exits 0; the usage is
// kept in golden files so a change to the command line is a visible diff.
func TestHelpGolden(t *testing.T) {
	td := filepath.Join(testenv.Root(), "cmd", "triaged", "testdata", "help")
	cases := map[string][]string{"triaged": {"-h"}}
	for _, c := range table() {
		if c.verbs == nil {
			cases[c.name] = []string{c.name, "-h"}
			continue
		}
		cases[c.name] = []string{c.name, "-h"}
		for _, v := range c.verbs {
			cases[c.name+"-"+v.name] = []string{c.name, v.name, "-h"}
		}
	}
	for name, args := range cases {
		code, stdout, stderr := run(args...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
		golden := filepath.Join(td, name+".golden")
		if *update {
			os.MkdirAll(td, 0o755)
			os.WriteFile(golden, []byte(stdout), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil || stdout != string(want) {
			t.Errorf("%v differs from %s (go test -update):\n%s", args, golden, stdout)
		}
	}
}

// Usage errors exit 2 with the usage on stderr; old names keep working and
// say what they are now.
func TestUsageErrorsAndOldNames(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"score"}, {"score", "-nope"}, {"model"}, {"model", "nope"}, {"heatmap"}} {
		code, stdout, stderr := run(args...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	for old, now := range map[string]string{"eval": "model eval", "calibrate": "model calibrate", "heatmap-check": "heatmap check"} {
		code, stdout, stderr := run(old, "-h")
		if code != 0 || !strings.Contains(stdout, "usage: triaged "+now+" ") || !strings.Contains(stderr, "is now") {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", old, code, stdout, stderr)
		}
	}
	if code, stdout, _ := run("version", "-verbose", "-h"); code != 0 || !strings.Contains(stdout, "-v") {
		t.Errorf("version -verbose -h: exit %d %q", code, stdout)
	}
}
