package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/triage"
)

// `model calibrate -write-drift` on labeled DICOM films stores a drift
// profile (scores, display statistics, the syntaxes and photometric
// interpretations seen) in the manifest, leaving every other field as it
// was and where it was; the daemon's manifest loader accepts it.
func TestCalibrateWritesDriftProfile(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	src := testenv.Model(t, "squeezenet1_1")
	model := t.TempDir()
	before, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(model, "manifest.json"), before, 0o644)
	if err := os.Symlink(filepath.Join(src, "model.onnx"), filepath.Join(model, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	set := t.TempDir()
	for label, films := range map[string][]string{
		"covid": {"derived/RG1_chest_CR_mono1_explicitLE.dcm", "original/nih_cxr_dx_implicit.dcm"},
		"non":   {"derived/nih_dx_jpegBaseline.dcm", "derived/nih_dx_rle.dcm"},
	} {
		os.MkdirAll(filepath.Join(set, label), 0o755)
		for _, rel := range films {
			b, err := os.ReadFile(testenv.DICOM(t, rel))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(set, label, filepath.Base(rel)), b, 0o644)
		}
	}
	code, _, errs := run("model", "calibrate", "-models", model, "-folder", set, "-write-drift")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "drift profile of squeezenet1_1: 4 films") {
		t.Errorf("stderr: %s", errs)
	}
	after, _ := os.ReadFile(filepath.Join(model, "manifest.json"))
	// Everything before the profile is byte for byte what it was.
	head := bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(before), []byte("}")))
	if i := bytes.Index(before, []byte(",\n \"drift\"")); i > 0 {
		head = before[:i] // a profile already there is replaced
	}
	if !bytes.HasPrefix(after, head) {
		t.Errorf("fields before the profile changed:\n%s", after)
	}
	m, err := triage.LoadManifest(model)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Drift
	if p == nil || p.Films != 4 || p.Numeric["score"] == nil || p.Numeric["mean"] == nil || p.Numeric["spread"] == nil {
		t.Fatalf("profile: %+v", p)
	}
	if ts := p.Categorical["transfer_syntax"]; len(ts) != 4 {
		t.Errorf("transfer syntaxes: %v, want 4 (explicit LE, implicit LE, JPEG baseline, RLE)", ts)
	}
	if ph := p.Categorical["photometric"]; ph["MONOCHROME1"] != 0.25 || ph["MONOCHROME2"] != 0.75 {
		t.Errorf("photometric: %v", ph)
	}
	orig, err := triage.LoadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Thresholds != orig.Thresholds {
		t.Errorf("thresholds changed: %+v, were %+v", m.Thresholds, orig.Thresholds)
	}
}
