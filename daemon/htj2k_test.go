package daemon_test

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/ojph"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// HTJ2K films of the three transfer syntaxes, encoded by OpenJPH (not the
// OpenJPEG library the daemon decodes them with), go the whole way: one
// result each, the lossless two scored exactly as the same pixels sent
// uncompressed, the lossy one close to them.
func TestHTJ2KFilmsScoredEndToEnd(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	ojph.Tool(t, "ojph_compress")
	srv := testenv.NATS(t)
	h := start(t, newConfig(t, srv.ClientURL()))

	const rows, cols = 640, 512
	px := make([]int, rows*cols)
	for y := range rows {
		for x := range cols {
			v := 300 + 2400*y/rows + 900*x/cols
			if dx, dy := x-cols/2, y-rows/3; dx*dx+dy*dy < rows*cols/16 {
				v += 400
			}
			px[y*cols+x] = v // 12 bits
		}
	}
	im := dicomtest.Image{Rows: rows, Columns: cols, BitsAllocated: 16, BitsStored: 12, Pixels: px,
		BodyPart: "CHEST", View: "PA", Modality: "DX"}
	const root = "1.2.826.0.1.3680043.10.1234.4201."
	films := []struct {
		name, uid string
		data      func() []byte
		lossless  bool
	}{
		{"native", root + "1", func() []byte { n := im; n.SOPInstanceUID = root + "1"; return n.Bytes() }, true},
		{"htj2k lossless", root + "2", func() []byte {
			n := im
			n.SOPInstanceUID = root + "2"
			return ojph.Film(t, n, decode.TSHTJ2KLossless, "-reversible", "true", "-prog_order", "LRCP")
		}, true},
		{"htj2k rpcl", root + "3", func() []byte {
			n := im
			n.SOPInstanceUID = root + "3"
			return ojph.Film(t, n, decode.TSHTJ2KRPCL, "-reversible", "true", "-prog_order", "RPCL")
		}, true},
		{"htj2k lossy", root + "4", func() []byte {
			n := im
			n.SOPInstanceUID = root + "4"
			return ojph.Film(t, n, decode.TSHTJ2K, "-qstep", "0.001")
		}, false},
	}
	for _, f := range films {
		drop(t, h.drop, filepath.Base(f.uid)+".dcm", f.data())
	}
	testenv.Eventually(t, 60*time.Second, "every film done", func() bool {
		return count(filepath.Join(h.drop, "done"), isFilm) == len(films)
	})
	res := results(t, h.url)
	native := res[root+"1"]
	if len(native) != 1 {
		t.Fatalf("native film: %d results", len(native))
	}
	for _, f := range films {
		rs := res[f.uid]
		if len(rs) != 1 {
			t.Errorf("%s: %d results, want 1", f.name, len(rs))
			continue
		}
		r := rs[0]
		if r.Decode != nil {
			t.Errorf("%s: decoded %+v, want the exact path", f.name, *r.Decode)
		}
		d := math.Abs(r.Score - native[0].Score)
		if f.lossless && d != 0 {
			t.Errorf("%s: score %v, native %v: a lossless film must score exactly the same", f.name, r.Score, native[0].Score)
		}
		if !f.lossless && d > 0.02 {
			t.Errorf("%s: score %v, native %v", f.name, r.Score, native[0].Score)
		}
		t.Logf("%s: P(COVID-19) %.6f (|d| %.2g), priority %s", f.name, r.Score, d, r.Priority)
	}
}
