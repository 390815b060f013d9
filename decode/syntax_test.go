package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/ojph"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// pattern is a synthetic film: smooth ramps plus texture, using the full
// range of its bits (and negative values when signed).
func pattern(w, h, bits int, signed bool) []int {
	out := make([]int, w*h)
	top := 1 << bits
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := (x*top/w + y*top/(2*h) + (x*y%17)*(top/64+1)) % top
			if signed {
				v -= top / 2
			}
			out[y*w+x] = v
		}
	}
	return out
}

// wantStored is what Stored() should return for synthetic pixels: their
// bits, two's complement for negative values.
func wantStored(px []int, bits int) []int {
	out := make([]int, len(px))
	for i, v := range px {
		out[i] = v & (1<<bits - 1)
	}
	return out
}

// encode writes a native file and transcodes it with a reference tool.
func encode(t *testing.T, native []byte, name string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.dcm")
	os.WriteFile(in, native, 0o644)
	run(t, tool(t, name, "dcmtk"), append(args, in, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// j2k compresses gray samples with opj_compress and wraps the codestream.
func j2k(t *testing.T, im dicomtest.Image, ts string, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	var pgm bytes.Buffer
	fmt.Fprintf(&pgm, "P5\n%d %d\n%d\n", im.Columns, im.Rows, 1<<im.BitsStored-1)
	for _, v := range im.Pixels {
		if im.BitsStored > 8 {
			binary.Write(&pgm, binary.BigEndian, uint16(v))
		} else {
			pgm.WriteByte(byte(v))
		}
	}
	in, out := filepath.Join(dir, "in.pgm"), filepath.Join(dir, "out.j2k")
	os.WriteFile(in, pgm.Bytes(), 0o644)
	run(t, tool(t, "opj_compress", "libopenjp2-tools"), append([]string{"-i", in, "-o", out, "-n", "3"}, args...)...)
	cs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	im.TransferSyntax = ts
	pd := dicomtest.Encapsulated(cs)
	im.PixelData = &pd
	return im.Bytes()
}

type syntaxCase struct {
	name string
	ts   string
	file func(t *testing.T) []byte
	// want is the stored values; nil: compare with the reference decoder.
	want []int
}

func gray(bits, stored int, signed bool) dicomtest.Image {
	pr := 0
	if signed {
		pr = 1
	}
	return dicomtest.Image{Rows: 24, Columns: 40, BitsAllocated: bits, BitsStored: stored, PixelRepresentation: pr,
		Pixels: pattern(40, 24, stored, signed), Modality: "CR"}
}

func syntaxCases() []syntaxCase {
	g8, g12, g16, s16 := gray(8, 8, false), gray(16, 12, false), gray(16, 16, false), gray(16, 16, true)
	native := func(im dicomtest.Image, ts string) func(*testing.T) []byte {
		return func(*testing.T) []byte { im.TransferSyntax = ts; return im.Bytes() }
	}
	dcm := func(im dicomtest.Image, prog string, args ...string) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return encode(t, im.Bytes(), prog, args...) }
	}
	raw12 := g12
	raw12.TransferSyntax = TSEncapsulatedLE
	frame := make([]byte, 2*len(raw12.Pixels))
	for i, v := range raw12.Pixels {
		binary.LittleEndian.PutUint16(frame[2*i:], uint16(v))
	}
	pd := dicomtest.Encapsulated(frame)
	raw12.PixelData = &pd
	return []syntaxCase{
		{"implicit 12-bit", TSImplicitLE, native(g12, TSImplicitLE), wantStored(g12.Pixels, 12)},
		{"explicit 16-bit signed", TSExplicitLE, native(s16, TSExplicitLE), wantStored(s16.Pixels, 16)},
		{"big endian 12-bit", TSExplicitBE, native(g12, TSExplicitBE), wantStored(g12.Pixels, 12)},
		{"big endian 8-bit", TSExplicitBE, native(g8, TSExplicitBE), wantStored(g8.Pixels, 8)},
		{"deflated 12-bit", TSDeflatedLE, native(g12, TSDeflatedLE), wantStored(g12.Pixels, 12)},
		{"encapsulated uncompressed 12-bit", TSEncapsulatedLE, func(*testing.T) []byte { return raw12.Bytes() }, wantStored(g12.Pixels, 12)},
		{"JPEG baseline 8-bit", TSJPEGBaseline, dcm(g8, "dcmcjpeg", "+eb"), nil},
		{"JPEG extended 12-bit", TSJPEGExtended, dcm(g12, "dcmcjpeg", "+ee"), nil},
		{"JPEG extended 8-bit", TSJPEGExtended, dcm(g8, "dcmcjpeg", "+ee"), nil},
		{"JPEG lossless SV6 16-bit", TSJPEGLossless, dcm(g16, "dcmcjpeg", "+el", "+sv", "6"), wantStored(g16.Pixels, 16)},
		{"JPEG lossless SV6 12-bit", TSJPEGLossless, dcm(g12, "dcmcjpeg", "+el", "+sv", "6"), wantStored(g12.Pixels, 12)},
		{"JPEG lossless SV1 8-bit", TSJPEGLosslessSV, dcm(g8, "dcmcjpeg", "+e1"), wantStored(g8.Pixels, 8)},
		{"JPEG lossless SV1 16-bit signed", TSJPEGLosslessSV, dcm(s16, "dcmcjpeg", "+e1"), wantStored(s16.Pixels, 16)},
		{"JPEG-LS lossless 16-bit", TSJPEGLSLossless, dcm(g16, "dcmcjpls", "+el"), wantStored(g16.Pixels, 16)},
		{"JPEG-LS lossless 8-bit", TSJPEGLSLossless, dcm(g8, "dcmcjpls", "+el"), wantStored(g8.Pixels, 8)},
		{"JPEG-LS near-lossless 12-bit", TSJPEGLSNear, dcm(g12, "dcmcjpls", "+en"), nil},
		{"RLE 16-bit signed", TSRLE, dcm(s16, "dcmcrle"), wantStored(s16.Pixels, 16)},
		{"RLE 8-bit", TSRLE, dcm(g8, "dcmcrle"), wantStored(g8.Pixels, 8)},
		{"JPEG 2000 lossless 12-bit", TSJ2KLossless, func(t *testing.T) []byte { return j2k(t, g12, TSJ2KLossless) }, wantStored(g12.Pixels, 12)},
		{"JPEG 2000 lossless 16-bit", TSJ2K, func(t *testing.T) []byte { return j2k(t, g16, TSJ2K) }, wantStored(g16.Pixels, 16)},
		{"JPEG 2000 lossy 12-bit", TSJ2K, func(t *testing.T) []byte { return j2k(t, g12, TSJ2K, "-I", "-r", "8") }, nil},
		{"HTJ2K lossless 12-bit", TSHTJ2KLossless, func(t *testing.T) []byte {
			return ojph.Film(t, g12, TSHTJ2KLossless, "-reversible", "true", "-num_decomps", "3", "-prog_order", "LRCP")
		}, wantStored(g12.Pixels, 12)},
		{"HTJ2K RPCL lossless 16-bit", TSHTJ2KRPCL, func(t *testing.T) []byte {
			return ojph.Film(t, g16, TSHTJ2KRPCL, "-reversible", "true", "-num_decomps", "3")
		}, wantStored(g16.Pixels, 16)},
		{"HTJ2K lossy 12-bit", TSHTJ2K, func(t *testing.T) []byte { return ojph.Film(t, g12, TSHTJ2K, "-num_decomps", "3", "-qstep", "0.01") }, nil},
	}
}

// TestEverySyntaxInTheTable enforces the README's transfer syntax table:
// every syntax marked decoded round-trips a synthetic film encoded by an
// independent encoder (dcmtk, OpenJPEG) to the exact stored values
// (lossless) or to what the reference decoder makes of it (lossy); every
// other syntax is refused with unsupported_transfer_syntax while its
// header still reads (so the film can be routed and reported).
func TestEverySyntaxInTheTable(t *testing.T) {
	testenv.Slow(t)
	covered := map[string]bool{}
	for _, c := range syntaxCases() {
		t.Run(c.name, func(t *testing.T) {
			b := c.file(t)
			film, err := decodeBytes(t, b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if film.Header.TransferSyntax != c.ts {
				t.Fatalf("transfer syntax %s, want %s", film.Header.TransferSyntax, c.ts)
			}
			got := stored(film)
			want, how := c.want, "the synthetic values"
			if want == nil {
				path := filepath.Join(t.TempDir(), "f.dcm")
				os.WriteFile(path, b, 0o644)
				want, how = reference(t, path, film)
			}
			d, err := maxDiff(got, want)
			tol := 0
			if c.ts == TSHTJ2K {
				tol = 1 // the irreversible 9/7 wavelet: OpenJPEG and OpenJPH round its output differently
			}
			if err != nil || d > tol {
				t.Fatalf("max |difference| to %s: %d %v", how, d, err)
			}
			covered[c.ts] = true
		})
	}
	for _, s := range Syntaxes {
		if s.Supported() {
			if !covered[s.UID] {
				t.Errorf("%s (%s) is marked decoded but no case covers it", s.Name, s.UID)
			}
			continue
		}
		t.Run("refused "+s.Name, func(t *testing.T) { checkRefused(t, s.UID) })
	}
	t.Run("refused MPEG2", func(t *testing.T) { checkRefused(t, "1.2.840.10008.1.2.4.100") })
	t.Run("unknown UID", func(t *testing.T) {
		b := dicomtest.Image{TransferSyntax: "1.2.3.4.5.6", Rows: 2, Columns: 2, Pixels: []int{1, 2, 3, 4}}.Bytes()
		if _, err := ReadHeader(bytes.NewReader(b), int64(len(b)), DefaultLimits); CodeOf(err) != CodeUnsupportedSyntax {
			t.Fatalf("got %v", err)
		}
	})
}

func checkRefused(t *testing.T, ts string) {
	pd := dicomtest.Encapsulated([]byte("not decoded here"))
	b := dicomtest.Image{TransferSyntax: ts, Rows: 2, Columns: 2, PixelData: &pd, Modality: "CR"}.Bytes()
	h, err := ReadHeader(bytes.NewReader(b), int64(len(b)), DefaultLimits)
	if err != nil || h.Modality != "CR" {
		t.Fatalf("header: %v", err)
	}
	if err := Check(h, DefaultLimits); CodeOf(err) != CodeUnsupportedSyntax {
		t.Fatalf("check: %v", err)
	}
	if _, err := decodeBytes(t, b); CodeOf(err) != CodeUnsupportedSyntax {
		t.Fatalf("decode: %v", err)
	}
}

// The README's table is the one the code describes.
func TestReadmeSyntaxTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), SyntaxTable()) {
		t.Fatalf("README.md does not contain the current transfer syntax table; paste this:\n%s", SyntaxTable())
	}
}
