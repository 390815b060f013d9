package decode

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/ojph"
)

// fuzzLimits keep each execution small; the bounds they imply are what
// the fuzz target checks.
var fuzzLimits = Limits{
	MaxFileSize:         1 << 20,
	MaxPixels:           1 << 20,
	MaxHeaderSize:       256 << 10,
	MaxElements:         20_000,
	MaxDepth:            16,
	MaxCompressionRatio: 1000,
}

// fuzzAllocBound is the most one decode may allocate on the Go heap for
// an input of n bytes: a copy or two of the input, the header parser's
// worst case (4 x the header limit), a 1-Mpixel 3-sample 16-bit frame with
// its conversions, and the output.
func fuzzAllocBound(n int) uint64 {
	return 4*uint64(n) + 4*uint64(fuzzLimits.MaxHeaderSize) + 32*uint64(fuzzLimits.MaxPixels) + 16<<20
}

// fuzzHang is how long one decode within fuzzLimits may take (the slowest
// seed takes milliseconds).
const fuzzHang = 10 * time.Second

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func heapAllocs() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// FuzzDecode runs the whole decode path (pre-scan, header parser, codecs,
// display pipeline) on arbitrary bytes. It must never panic or hang, every
// failure must carry a reason code, a success must be a well-formed image,
// and no input may make a decode allocate beyond fuzzAllocBound or run
// longer than fuzzHang. The seed corpus (testdata/fuzz/FuzzDecode) is
// synthetic: films in every transfer syntax and the hostile files (seed-*,
// written by TestWriteFuzzCorpus), and the inputs the fuzzer found
// interesting in its runs from them (found-*).
func FuzzDecode(f *testing.F) {
	for _, h := range dicomtest.Hostile() {
		if len(h.Data) <= 16<<10 {
			f.Add(h.Data)
		}
	}
	f.Add(dicomtest.Good().Bytes())
	for _, b := range extraFuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Go's fuzzing engine has no per-input time limit: a hang panics the
		// worker from a timer, which the engine records as a crasher.
		hang := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("decode of %d bytes still running after %s", len(b), fuzzHang)) })
		defer hang.Stop()
		before := heapAllocs()
		film, err := Decode(bytes.NewReader(b), int64(len(b)), fuzzLimits)
		if used := heapAllocs() - before; used > fuzzAllocBound(len(b)) {
			t.Fatalf("decode of %d bytes allocated %d bytes", len(b), used)
		}
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("error without a reason code: %v", err)
			}
			return
		}
		h := film.Header
		if film.Image.Rect.Dx() != h.Columns || film.Image.Rect.Dy() != h.Rows || len(film.Image.Pix) != h.Rows*h.Columns {
			t.Fatalf("image %v for a %dx%d header", film.Image.Rect, h.Columns, h.Rows)
		}
		_ = film.Stored()
		// The reduced-resolution path (JPEG 2000, HTJ2K) on the same bytes,
		// with a floor of one pixel, so that every level the codestream
		// declares is left out: it must fail with a reason or give a smaller
		// well-formed image, within the same bounds.
		red := fuzzLimits
		red.ReducedMinSide = 1
		before = heapAllocs()
		rf, err := Decode(bytes.NewReader(b), int64(len(b)), red)
		if used := heapAllocs() - before; used > fuzzAllocBound(len(b)) {
			t.Fatalf("reduced decode of %d bytes allocated %d bytes", len(b), used)
		}
		if err != nil {
			if CodeOf(err) == CodeInternal {
				t.Fatalf("reduced decode: error without a reason code: %v", err)
			}
			return
		}
		dx, dy := rf.Image.Rect.Dx(), rf.Image.Rect.Dy()
		if dx < 1 || dy < 1 || dx > h.Columns || dy > h.Rows || len(rf.Image.Pix) != dx*dy || (rf.Reduced == 0 && (dx != h.Columns || dy != h.Rows)) {
			t.Fatalf("reduced decode (level %d): image %v for a %dx%d header", rf.Reduced, rf.Image.Rect, h.Columns, h.Rows)
		}
		_ = rf.Stored()
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus from synthetic
// films (never from the shared data set). It needs the reference encoders
// (dcmtk, opj_compress) and runs only when asked:
//
//	TRIAGED_WRITE_FUZZ_CORPUS=1 go test ./decode -run TestWriteFuzzCorpus
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TRIAGED_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set TRIAGED_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	old, _ := filepath.Glob(filepath.Join(dir, "seed-*")) // found-* are the fuzzer's finds: kept
	for _, p := range old {
		os.Remove(p)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	clean := regexp.MustCompile(`[^a-z0-9]+`)
	write := func(name string, b []byte) {
		if len(b) > 16<<10 { // large seeds slow every mutation down

			return
		}
		var s strings.Builder
		s.WriteString("go test fuzz v1\n[]byte(")
		s.WriteString(fmt.Sprintf("%q", b))
		s.WriteString(")\n")
		name = strings.Trim(clean.ReplaceAllString(strings.ToLower(name), "-"), "-")
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(s.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range syntaxCases() {
		write("syntax "+c.name, c.file(t))
	}
	for _, h := range dicomtest.Hostile() {
		write("hostile "+h.Name, h.Data)
	}
	for name, im := range pipelineSeeds() {
		write("pipeline "+name, im.Bytes())
	}
	for name, b := range extraFuzzSeeds(t) {
		write(name, b)
	}
	for name, b := range reducedFuzzSeeds(t) {
		write(name, b)
	}
}

// reducedFuzzSeeds are small JPEG 2000 and HTJ2K films with five
// decomposition levels, so that the reduced-resolution decode has levels
// to leave out (the syntax films have three on a 40 x 24 image).
func reducedFuzzSeeds(t *testing.T) map[string][]byte {
	im := dicomtest.Image{Rows: 48, Columns: 64, BitsAllocated: 16, BitsStored: 12, Pixels: pattern(64, 48, 12, false), Modality: "CR"}
	return map[string][]byte{
		"reduce j2k lossless":   j2k(t, im, TSJ2KLossless, "-n", "6"),
		"reduce j2k lossy":      j2k(t, im, TSJ2K, "-n", "6", "-r", "20"),
		"reduce htj2k lossless": ojph.Film(t, im, TSHTJ2KLossless, "-reversible", "true", "-num_decomps", "5"),
		"reduce htj2k lossy":    ojph.Film(t, im, TSHTJ2K, "-qstep", "0.01", "-num_decomps", "5"),
	}
}

// pipelineSeeds are small films exercising the display pipeline's
// branches.
func pipelineSeeds() map[string]dicomtest.Image {
	tag := dicomtest.Tag
	ramp := make([]uint16, 256)
	for i := range ramp {
		ramp[i] = uint16(i)
	}
	return map[string]dicomtest.Image{
		"modality lut": {Rows: 2, Columns: 2, BitsAllocated: 8, Pixels: []int{0, 1, 2, 3},
			Extra: []dicomtest.Elem{dicomtest.Seq(tag(0x0028, 0x3000), dicomtest.LUTItem(1, 12, []uint16{100, 2000, 4000}))}},
		"voi lut": {Rows: 2, Columns: 2, BitsStored: 8, Pixels: []int{0, 10, 20, 255},
			Extra: []dicomtest.Elem{dicomtest.Seq(tag(0x0028, 0x3010), dicomtest.LUTItem(0, 8, ramp))}},
		"sigmoid":      {Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096, VOIFunction: "SIGMOID"},
		"signed":       {Rows: 1, Columns: 4, BitsStored: 12, PixelRepresentation: 1, Pixels: []int{-2048, -1, 0, 2047}, Slope: 2, Intercept: 1000},
		"monochrome1":  {Rows: 1, Columns: 3, BitsAllocated: 8, Pixels: []int{0, 100, 255}, Photometric: "MONOCHROME1"},
		"rgb planar":   {Rows: 2, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "RGB", PlanarConfiguration: 1, Pixels: seq(0, 12)},
		"ybr 422":      {Rows: 2, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "YBR_FULL_422", Pixels: seq(0, 8)},
		"multi-frame":  {Rows: 2, Columns: 2, Frames: 3, BitsStored: 12, Pixels: seq(0, 12)},
		"implicit":     {TransferSyntax: dicomtest.ImplicitLE, Rows: 2, Columns: 2, BitsStored: 12, Pixels: seq(0, 4)},
		"big endian 8": {TransferSyntax: dicomtest.ExplicitBE, Rows: 2, Columns: 3, BitsAllocated: 8, Pixels: seq(0, 6)},
	}
}
