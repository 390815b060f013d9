package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

func TestHeatmapRendersFiles(t *testing.T) {
	testenv.ORT(t)
	film := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	out := t.TempDir()
	code, stdout, errs := run("heatmap", "render", "-o", out, film)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	p := filepath.Join(out, "01-cam.png")
	if !strings.HasPrefix(stdout, p+"\t") {
		t.Errorf("stdout %q", stdout)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() != 1024 {
		t.Fatalf("overlay: %v %v", err, img.Bounds())
	}
	if _, err := os.Stat(filepath.Join(out, "01-cam.npy")); err != nil {
		t.Error(err)
	}
	if code, _, _ := run("heatmap", "render", "-method", "gradcam", film); code != 2 {
		t.Errorf("unknown method: exit %d", code)
	}
}

func TestHeatmapCheckPrintsTheDeletionTable(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	testenv.SharedData(t)
	code, out, errs := run("heatmap", "check", "-cam-only", "-n", "6")
	if !strings.Contains(out, "deletion check on 6 COVID-19 films") || !strings.Contains(out, "random") || !strings.Contains(out, "cam ") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	// The verdict on six films is not the point here (TestHeatmapsBeatRandomDeletion
	// in package heatmap is); the exit status must agree with the table.
	if fails := strings.Contains(out, "FAIL"); fails != (code == 1) {
		t.Errorf("exit %d with table:\n%s", code, out)
	}
}
