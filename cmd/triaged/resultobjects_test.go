package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// `triaged result-objects` writes, for a positive film, the SR and the
// heatmap image in the film's study, both valid for dciodvfy.
func TestResultObjectsWritesValidSRAndImage(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	film := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	out := t.TempDir()
	// Thresholds low enough that the film is positive and gets its image.
	cfg := filepath.Join(out, "triaged.yaml")
	if err := os.WriteFile(cfg, []byte("models: [{path: "+testenv.Model(t, "squeezenet1_1")+"}]\ntriage: {urgent_threshold: 0.01, critical_threshold: 0.999}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("result-objects", "-config", cfg, "-o", out, film)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.dcm"))
	if len(files) != 2 || strings.Count(stdout, "\n") != 2 {
		t.Fatalf("%d objects written, stdout %q", len(files), stdout)
	}
	src, err := header(film)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		h, err := header(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if h.StudyInstanceUID != src.StudyInstanceUID || h.SeriesInstanceUID == src.SeriesInstanceUID {
			t.Errorf("%s: study %s series %s; want the film's study in a new series", f, h.StudyInstanceUID, h.SeriesInstanceUID)
		}
		if _, err := exec.LookPath("dciodvfy"); err == nil {
			msg, _ := exec.Command("dciodvfy", f).CombinedOutput()
			if strings.Contains(string(msg), "Error") {
				t.Errorf("dciodvfy %s:\n%s", f, msg)
			}
		}
	}
}

func header(path string) (*decode.Header, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decode.ReadHeader(bytes.NewReader(b), int64(len(b)), decode.Limits{})
}
