package decode

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/ojph"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func decodeReduced(t *testing.T, b []byte, minSide int) *Film {
	t.Helper()
	lim := DefaultLimits
	lim.ReducedMinSide = minSide
	f, err := Decode(bytes.NewReader(b), int64(len(b)), lim)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A reduced decode of JPEG 2000 and HTJ2K stops at the deepest level whose
// shorter side stays at or above the floor, and its stored samples are
// those the reference decoders make at that level (opj_decompress -r,
// ojph_expand -skip_res): the reversible 5/3 wavelet's low-pass is exact
// integer arithmetic, so lossless films must match bit for bit.
func TestReducedMatchesReferenceDecoders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs opj_compress, ojph_compress and their decoders: skipped under -short")
	}
	im := dicomtest.Image{Rows: 150, Columns: 200, BitsAllocated: 16, BitsStored: 12, Pixels: pattern(200, 150, 12, false),
		Modality: "CR", Center: 2048, Width: 4096}
	cases := []struct {
		name, ts string
		file     []byte
		ref      func(path string, r int) []int
	}{
		{"j2k lossless", TSJ2KLossless, j2k(t, im, TSJ2KLossless, "-n", "6"), func(path string, r int) []int {
			return opjReduced(t, path, r)
		}},
		{"htj2k lossless", TSHTJ2KLossless, ojph.Film(t, im, TSHTJ2KLossless, "-reversible", "true", "-num_decomps", "5"), func(path string, r int) []int {
			return ojphReduced(t, path, r)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.dcm")
			os.WriteFile(path, c.file, 0o644)
			exact := decodeReduced(t, c.file, 0)
			if exact.Reduced != 0 || exact.Image.Rect.Dx() != 200 {
				t.Fatalf("exact decode: reduced %d, %v", exact.Reduced, exact.Image.Rect)
			}
			for _, tc := range []struct{ floor, level, w, h int }{
				{150, 0, 200, 150}, {75, 1, 100, 75}, {74, 1, 100, 75}, {38, 2, 50, 38}, {1, 5, 7, 5},
			} {
				f := decodeReduced(t, c.file, tc.floor)
				if f.Reduced != tc.level || f.Image.Rect != image.Rect(0, 0, tc.w, tc.h) {
					t.Fatalf("floor %d: level %d, %v; want level %d, %dx%d", tc.floor, f.Reduced, f.Image.Rect, tc.level, tc.w, tc.h)
				}
				if d, err := maxDiff(stored(f), c.ref(path, tc.level)); err != nil || d != 0 {
					t.Fatalf("floor %d (level %d) vs the reference: max |difference| %d %v", tc.floor, tc.level, d, err)
				}
			}
		})
	}
}

func opjReduced(t *testing.T, path string, r int) []int {
	dir := t.TempDir()
	cs, pgm := filepath.Join(dir, "frame.j2k"), filepath.Join(dir, "frame.pgm")
	os.WriteFile(cs, codestream(t, path), 0o644)
	run(t, tool(t, "opj_decompress", "libopenjp2-tools"), "-i", cs, "-o", pgm, "-r", strconv.Itoa(r))
	return readPGM(t, pgm)
}

func ojphReduced(t *testing.T, path string, r int) []int {
	return ojph.Expand(t, codestream(t, path), "-skip_res", strconv.Itoa(r)+","+strconv.Itoa(r))
}

// Other syntaxes ignore the floor: they decode at full size.
func TestReducedIgnoresOtherSyntaxes(t *testing.T) {
	im := gray(16, 12, false)
	f := decodeReduced(t, im.Bytes(), 4)
	if f.Reduced != 0 || f.Image.Rect.Dx() != im.Columns || f.Image.Rect.Dy() != im.Rows {
		t.Fatalf("native film: reduced %d, %v", f.Reduced, f.Image.Rect)
	}
}

// The real RG1 chest film (1841 x 1955, JPEG 2000 lossy, MONOCHROME1,
// windowed) at the default floor of 448: the display pipeline (window,
// inversion) runs on the smaller image, which stays close to a box mean of
// the full-size display (the wavelet low-pass is not a box filter, so not
// equal to it).
func TestReducedSharedFilm(t *testing.T) {
	testenv.Slow(t)
	b, err := os.ReadFile(testenv.DICOM(t, "original/RG1_J2KI.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	exact := decodeReduced(t, b, 0)
	red := decodeReduced(t, b, 448)
	h := exact.Header
	r := red.Reduced
	w, hh := red.Image.Rect.Dx(), red.Image.Rect.Dy()
	if r < 1 || min(w, hh) < 448 || min(w, hh) >= 2*448 || w != (h.Columns+1<<r-1)>>r || hh != (h.Rows+1<<r-1)>>r {
		t.Fatalf("%dx%d film decoded at level %d to %dx%d", h.Columns, h.Rows, r, w, hh)
	}
	if red.Display != exact.Display {
		t.Fatalf("display pipeline %q, exact %q", red.Display, exact.Display)
	}
	var sum float64
	k := 1 << r
	for y := 0; y < hh; y++ {
		for x := 0; x < w; x++ {
			var s, n int
			for dy := 0; dy < k && y*k+dy < h.Rows; dy++ {
				for dx := 0; dx < k && x*k+dx < h.Columns; dx++ {
					s += int(exact.Image.GrayAt(x*k+dx, y*k+dy).Y)
					n++
				}
			}
			d := float64(red.Image.GrayAt(x, y).Y) - float64(s)/float64(n)
			sum += max(d, -d)
		}
	}
	mean := sum / float64(w*hh)
	t.Logf("RG1 %dx%d -> level %d, %dx%d; mean |reduced - box mean of exact| = %.2f gray levels; codec time exact %v, reduced %v",
		h.Columns, h.Rows, r, w, hh, mean, exact.Timings.Frame, red.Timings.Frame)
	if mean > 3 {
		t.Fatalf("reduced image differs from the box mean by %.2f gray levels on average", mean)
	}
}
