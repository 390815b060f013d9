package decode

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// rgbCodestream is a baseline JPEG whose three planes hold the samples of
// a near-white RGB image as stored (Go's encoder writes an image.YCbCr's
// planes as they are, with component IDs 1,2,3 and no JFIF or Adobe
// marker): decoded as YCbCr it comes out magenta, as RGB near white.
func rgbCodestream(t testing.TB, w, h int) []byte {
	t.Helper()
	im := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio444)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			im.Y[im.YOffset(x, y)] = uint8(235 + (x+y)%16) // R
			im.Cb[im.COffset(x, y)] = uint8(230 + x%20)    // G
			im.Cr[im.COffset(x, y)] = uint8(240 + y%12)    // B
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, im, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withIDs rewrites the component IDs of a codestream's frame and scan
// headers.
func withIDs(t testing.TB, cs []byte, ids [3]byte) []byte {
	t.Helper()
	out := append([]byte(nil), cs...)
	for i := 2; i+4 <= len(out) && out[i] == 0xFF; {
		m, n := out[i+1], int(binary.BigEndian.Uint16(out[i+2:]))
		seg := out[i+4 : i+2+n]
		switch m {
		case 0xC0:
			for c := 0; c < 3; c++ {
				seg[6+3*c] = ids[c]
			}
		case 0xDA:
			for c := 0; c < 3; c++ {
				seg[1+2*c] = ids[c]
			}
			return out
		}
		i += 2 + n
	}
	t.Fatal("no scan header")
	return nil
}

// withMarker inserts an APPn segment after SOI.
func withMarker(cs, seg []byte) []byte {
	return append(append(append([]byte(nil), cs[:2]...), seg...), cs[2:]...)
}

var (
	jfifAPP0 = []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	adobe    = func(transform byte) []byte {
		return []byte{0xFF, 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, transform}
	}
)

// The colour of a 3-component baseline JPEG frame is decided as libjpeg
// documents it where the codestream says anything (JFIF marker: YCbCr;
// Adobe transform flag; component IDs 1,2,3: YCbCr, 'R','G','B': RGB), and
// by the DICOM Photometric Interpretation where it says nothing (IDs 0,1,2
// and no marker): an RGB film stays RGB instead of turning magenta. Each
// case equals dcmtk's dcmdjpeg with the matching colour option: +cg (what
// the library infers from the codestream) or +cp (the Photometric
// Interpretation).
func TestJPEGColourSpace(t *testing.T) {
	testenv.Slow(t)
	const w, h = 24, 16
	base := rgbCodestream(t, w, h)
	cases := []struct {
		name, photometric string
		cs                []byte
		rgb               bool   // the samples are taken as RGB, not converted
		dcmtk             string // dcmdjpeg's option that decides the same way
	}{
		{"IDs 0,1,2, no marker, RGB", "RGB", withIDs(t, base, [3]byte{0, 1, 2}), true, "+cp"},
		{"IDs 0,1,2, no marker, YBR_FULL", "YBR_FULL", withIDs(t, base, [3]byte{0, 1, 2}), false, "+cp"},
		{"IDs 1,2,3, no marker, RGB", "RGB", base, false, "+cg"},
		{"IDs R,G,B, no marker, YBR_FULL", "YBR_FULL", withIDs(t, base, [3]byte{'R', 'G', 'B'}), true, "+cg"},
		{"JFIF, IDs 0,1,2, RGB", "RGB", withMarker(withIDs(t, base, [3]byte{0, 1, 2}), jfifAPP0), false, "+cg"},
		{"Adobe transform 0, IDs 1,2,3, YBR_FULL", "YBR_FULL", withMarker(base, adobe(0)), true, "+cg"},
		{"Adobe transform 1, IDs 0,1,2, RGB", "RGB", withMarker(withIDs(t, base, [3]byte{0, 1, 2}), adobe(1)), false, "+cg"},
	}
	dcmdjpeg, lookErr := exec.LookPath("dcmdjpeg")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pd := dicomtest.Encapsulated(c.cs)
			file := dicomtest.Image{TransferSyntax: TSJPEGBaseline, Rows: h, Columns: w, BitsAllocated: 8,
				SamplesPerPixel: 3, Photometric: c.photometric, PixelData: &pd, Modality: "OT"}.Bytes()
			film := mustDecode(t, file)
			got := stored(film)
			// As RGB the film is near white: R 235..250, G 230..249, B 240..251.
			r, g, b := got[0], got[1], got[2]
			white := r >= 234 && g >= 229 && b >= 239
			if white != c.rgb {
				t.Fatalf("first pixel %d,%d,%d: taken as RGB %v, want %v", r, g, b, white, c.rgb)
			}
			if lookErr != nil {
				t.Skip("dcmdjpeg is not installed (Debian package dcmtk): compared with the expected colour only")
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.dcm")
			os.WriteFile(in, file, 0o644)
			if msg, err := exec.Command(dcmdjpeg, c.dcmtk, "+px", in, out).CombinedOutput(); err != nil {
				t.Fatalf("dcmdjpeg %s: %v\n%s", c.dcmtk, err, msg)
			}
			ref, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if d, err := maxDiff(got, stored(mustDecode(t, ref))); err != nil || d > 0 {
				t.Fatalf("vs dcmdjpeg %s: max |difference| %d %v", c.dcmtk, d, err)
			}
		})
	}
}
