package dataset

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The walk-through of training/README.md runs end to end on a few films:
// DICOM films with labels (made by dcmtk's img2dcm from the shared labeled
// JPEGs, 8 COVID-19 and 8 non-COVID) -> triaged dataset export -> one epoch
// of fine-tuning from the shipped default -> export.py -> triaged model
// calibrate -> triaged model eval. The path, not the accuracy.
func TestWalkthrough(t *testing.T) {
	testenv.Slow(t)
	py := python(t)
	testenv.ORT(t)
	img2dcm, err := exec.LookPath("img2dcm")
	if err != nil {
		t.Skip("skipping: img2dcm not found (install the Debian package dcmtk)")
	}
	data := testenv.SharedData(t)
	f, err := os.Open(filepath.Join(data, "cxr", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	films := filepath.Join(dir, "films")
	os.MkdirAll(films, 0o755)
	lab, _ := os.Create(filepath.Join(films, "labels.csv"))
	w := csv.NewWriter(lab)
	w.Write([]string{"file", "label", "site", "patient"})
	n := map[string]int{}
	for _, r := range recs[1:] { // file,label,source,view,original_path,finding,license,patient_id
		if n[r[1]] == 8 {
			continue
		}
		n[r[1]]++
		name := fmt.Sprintf("film%02d.dcm", n["covid"]+n["non"])
		if b, err := exec.Command(img2dcm, "-q", filepath.Join(data, "cxr", r[0]), filepath.Join(films, name)).CombinedOutput(); err != nil {
			t.Fatalf("img2dcm: %v %s", err, b)
		}
		w.Write([]string{name, r[1], r[2], r[7]})
	}
	w.Flush()
	lab.Close()

	bin := filepath.Join(dir, "triaged")
	build := exec.Command("go", "build", "-o", bin, "./cmd/triaged")
	build.Dir = testenv.Root()
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v %s", err, b)
	}
	work := filepath.Join(dir, "work")
	cmd := exec.Command(filepath.Join(testenv.Root(), "training", "walkthrough.sh"), "-labels", filepath.Join(films, "labels.csv"), work, "1")
	cmd.Env = append(os.Environ(), "TRIAGED="+bin, "PYTHON="+py)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough.sh: %v\n%s", err, out)
	}
	var man struct {
		Thresholds struct{ Urgent, Critical float64 }
		Training   struct {
			Init, Freeze string
			EpochsRun    int `json:"epochs_run"`
		}
	}
	b, err := os.ReadFile(filepath.Join(work, "model", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	if man.Training.Init != "model:"+testenv.Model(t, "squeezenet1_1") || man.Training.Freeze != "all-but-last" || man.Training.EpochsRun != 1 || man.Thresholds.Urgent <= 0 {
		t.Fatalf("manifest %+v", man)
	}
	var rep struct {
		Items  int
		Models []struct{ AUC float64 }
	}
	b, err = os.ReadFile(filepath.Join(work, "eval", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Items != 16 || len(rep.Models) != 1 {
		t.Fatalf("report: %v %+v", err, rep)
	}
	if _, err := os.Stat(filepath.Join(work, "eval", "shortcut.json")); err != nil {
		t.Fatal(err)
	}
}
