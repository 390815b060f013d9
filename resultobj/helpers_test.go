package resultobj

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/publish"
)

// tool returns the path of an external program or skips, naming the
// Debian package that has it.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s not found (Debian package %s)", name, pkg)
	}
	return p
}

// testResult is a result as the daemon publishes it for film src.
func testResult(src *SourceFilm) *publish.Result {
	return &publish.Result{
		Schema: publish.ResultSchema, Kind: "alert",
		MessageID: src.SOPInstanceUID + ":ms-741f6a8e2d17",
		Film: publish.Film{StudyInstanceUID: src.StudyInstanceUID, SeriesInstanceUID: src.SeriesInstanceUID,
			SOPInstanceUID: src.SOPInstanceUID, SOPClassUID: src.SOPClassUID, Modality: src.Modality},
		Models: []publish.ModelScore{
			{Name: "squeezenet1_1", Version: "2026.11.1", Provider: "CPUExecutionProvider", Probability: 0.7102},
			{Name: "resnet18", Version: "2026.11.1", Provider: "CPUExecutionProvider", Probability: 0.655},
		},
		Score:          0.6826,
		Priority:       "urgent",
		PriorityReason: "score 0.6826 >= urgent threshold 0.2695",
		Thresholds:     publish.Thresholds{Urgent: 0.2695, Critical: 0.9266, CalibratedOn: "validation split of models/split.json"},
		ModelSet:       "ms-741f6a8e2d17",
		ScoredAt:       time.Date(2026, 11, 26, 6, 50, 41, 220000000, time.UTC),
		Daemon:         "v0.1.0",
		Host:           "pacs-gw-1",
	}
}

// overlay renders a heatmap overlay of a real film the way the daemon
// does (decode, preprocess, heatmap.Render) with a synthetic map: a warm
// blob in the right lower lung field.
func overlay(t testing.TB, path string) []byte {
	t.Helper()
	overlaysMu.Lock()
	defer overlaysMu.Unlock()
	if b, ok := overlays[path]; ok {
		return b
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	film, err := decode.Decode(bytes.NewReader(data), int64(len(data)), decode.Limits{})
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	in := preprocess.Prepare(film.Image)
	m := &heatmap.Map{Method: heatmap.MethodCAM, Model: heatmap.EnsembleName, Unit: "CAM (a.u.)", V: make([]float32, heatmap.Side*heatmap.Side)}
	for y := range heatmap.Side {
		for x := range heatmap.Side {
			dx, dy := float64(x-70), float64(y-140)
			m.V[y*heatmap.Side+x] = float32(math.Exp(-(dx*dx + dy*dy) / 900))
		}
	}
	img, err := heatmap.Render(film.Image, in.Crop, m, heatmap.DefaultRender)
	if err != nil {
		t.Fatal(err)
	}
	b, err := heatmap.EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	overlays[path] = b
	return b
}

// overlays caches rendered overlays by film: under -race one costs seconds.
var (
	overlaysMu sync.Mutex
	overlays   = map[string][]byte{}
)

// films are the real chest films the objects are built from.
var films = []string{
	"original/nih_cxr_dx_implicit.dcm",
	"original/RG1_J2KI.dcm",
	"derived/nih_dx_deflate.dcm",
	"derived/nih_dx_bigendian.dcm",
}

func readSource(t testing.TB, rel string) (*SourceFilm, string) {
	t.Helper()
	p := testenv.DICOM(t, rel)
	s, err := ReadSourceFile(p, decode.Limits{})
	if err != nil {
		t.Fatalf("ReadSourceFile %s: %v", rel, err)
	}
	return s, p
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type publishResult = publish.Result

func fmtAll(s *SourceFilm) string {
	return fmt.Sprintf("%v %+v %#v %s %v %+v", s, s, s, s, *s, *s)
}
