package resultobj

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

var docImg = flag.Bool("docimg", false, "rewrite docs/img/result-sc.png")

// TestDocPicture makes docs/img/result-sc.png, the SC as a viewer shows it
// (dcmtk's dcm2pnm renders the DICOM object), from a synthetic film: no
// image of the shared data set may enter the repository.
func TestDocPicture(t *testing.T) {
	testenv.Slow(t)
	if !*docImg {
		t.Skip("skipping: only with -docimg (rewrites docs/img/result-sc.png)")
	}
	dcm2pnm := tool(t, "dcm2pnm", "dcmtk")
	film := writeTemp(t, "synthetic.dcm", dicomtest.Film("1.2.826.0.1.3680043.8.498.10", 900, 760, ""))
	src, err := ReadSourceFile(film, decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Build(src, testResult(src), overlay(t, film), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := writeTemp(t, "sc.dcm", objs.SC)
	out := filepath.Join(testenv.Root(), "docs", "img", "result-sc.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(dcm2pnm, "+on", "-il", "-mf", sc, out).CombinedOutput(); err != nil {
		t.Fatalf("dcm2pnm: %v\n%s", err, b)
	}
}
