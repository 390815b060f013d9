package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// `model eval -border -source-probe` on the validation split adds the
// within-source AUC, the border test and the source probe to the report
// and writes shortcut.json.
func TestEvalShortcutChecks(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	data := testenv.SharedData(t)
	out := t.TempDir()
	code, stdout, errs := run("model", "eval", "-labels", filepath.Join(data, "cxr", "labels.csv"), "-split", "models/split.json", "-set", "val",
		"-models", "models/squeezenet1_1", "-heatmaps", "off", "-border", "0.12", "-source-probe", "-workers", "2", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, errs)
	}
	var sc struct {
		Within []struct {
			AUC float64 `json:"within_source_auc"`
		} `json:"within_source"`
		Border []struct {
			Films      int     `json:"films"`
			BandPixels int     `json:"band_pixels"`
			MeanAbs    float64 `json:"mean_abs_change"`
		}
		Probe []struct {
			Class  string
			Images int
		} `json:"source_probe"`
	}
	b, err := os.ReadFile(filepath.Join(out, "shortcut.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	if len(sc.Within) != 1 || len(sc.Border) != 1 || sc.Border[0].Films != 200 || sc.Border[0].BandPixels != 27 || sc.Border[0].MeanAbs <= 0 ||
		len(sc.Probe) != 2 || sc.Probe[0].Images+sc.Probe[1].Images != 200 {
		t.Fatalf("shortcut.json: %+v", sc)
	}
	for _, s := range []string{"Within-source AUC", "Border test", "Source probe"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	if code, _, _ := run("model", "eval", "-border", "0.6", "-folder", out); code != 2 {
		t.Errorf("-border 0.6: exit %d, want 2", code)
	}
}
