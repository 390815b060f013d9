package dataset

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/triage"
)

// python is Debian's interpreter with torch, or a skip naming the packages.
func python(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import torch, torchvision, onnx, PIL").CombinedOutput(); err != nil {
		t.Skipf("skipping: %s cannot import torch/torchvision/onnx (install the Debian packages python3-torch python3-torchvision python3-onnx python3-pil): %v %s", py, err, out)
	}
	return py
}

// One decode for training and serving: a film exported by dataset export
// and fed to training's Python transform and the PyTorch network rebuilt
// from the committed ONNX file scores what the daemon scores for the same
// DICOM film, within 1e-5.
func TestExportedImagesScoreAsTheDaemon(t *testing.T) {
	testenv.Slow(t)
	py := python(t)
	testenv.ORT(t)
	var films []Film
	for _, rel := range []string{"original/RG1_J2KI.dcm", "original/nih_cxr_dx_implicit.dcm",
		"derived/RG1_chest_CR_mono1_jpegLS_lossless.dcm", "derived/nih_dx_jpegBaseline.dcm", "derived/nih_dx_rle.dcm"} {
		films = append(films, Film{Path: testenv.DICOM(t, rel), Label: "non"})
	}
	out := t.TempDir()
	sum, err := Export(context.Background(), films, out, Options{Workers: 2})
	if err != nil || sum.Exported != len(films) {
		t.Fatalf("export: %+v %v", sum, err)
	}
	rows := readCSV(t, filepath.Join(out, "labels.csv"))

	model := testenv.Model(t, "squeezenet1_1")
	args := []string{filepath.Join(testenv.Root(), "training", "reference_infer.py"), "--model", model, "--threads", "1",
		"--csv", filepath.Join(out, "torch.csv")}
	for _, r := range rows {
		args = append(args, filepath.Join(out, r["file"]))
	}
	if b, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("reference_infer: %v\n%s", err, b)
	}
	f, err := os.Open(filepath.Join(out, "torch.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != len(rows)+1 {
		t.Fatalf("torch.csv: %d records, %v", len(recs), err)
	}

	eng, err := triage.NewEngine([]string{model}, triage.Options{}, triage.EngineOptions{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	worst := 0.0
	for i, r := range rows {
		data, err := os.ReadFile(r["dicom"])
		if err != nil {
			t.Fatal(err)
		}
		a, err := film.AnalyzeFile(context.Background(), eng, data, decode.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := strconv.ParseFloat(recs[i+1][1], 64)
		if err != nil {
			t.Fatal(err)
		}
		got := a.Result.Models[0].Probability
		d := math.Abs(got - want)
		worst = max(worst, d)
		t.Logf("%s (%s): daemon %.7f, PyTorch on the exported PNG %.7f, |diff| %.1e", filepath.Base(r["dicom"]), r["transfer_syntax"], got, want, d)
		if d > 1e-5 {
			t.Errorf("%s: daemon %.7f vs exported image through PyTorch %.7f", filepath.Base(r["dicom"]), got, want)
		}
	}
	t.Logf("largest |P(COVID-19) difference| over %d films: %.1e", len(rows), worst)
}
