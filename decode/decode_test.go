package decode

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func decodeBytes(t *testing.T, b []byte) (*Film, error) {
	t.Helper()
	return Decode(bytes.NewReader(b), int64(len(b)), DefaultLimits)
}

func mustDecode(t *testing.T, b []byte) *Film {
	t.Helper()
	f, err := decodeBytes(t, b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return f
}

var stored12 = []int{0, 1000, 2048, 3000, 4095, 500}

// Expected values below were computed by hand from PS3.3 C.11.2.1.2.1
// (LINEAR window) with round-half-up to 8 bits.
func TestPixelPipelineKnownOutputs(t *testing.T) {
	cases := []struct {
		name string
		im   dicomtest.Image
		want []uint8
	}{
		{"window", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"monochrome1 inverts", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096, Photometric: "MONOCHROME1"},
			[]uint8{255, 193, 127, 68, 0, 224}},
		{"rescale then window", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Slope: 0.5, Intercept: -100, Center: 400, Width: 800},
			[]uint8{0, 128, 255, 255, 255, 48}},
		{"signed pixels", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 16, PixelRepresentation: 1, Pixels: []int{-1000, -1, 0, 1, 1000, 32767}, Center: 0, Width: 2000},
			[]uint8{0, 127, 128, 128, 255, 255}},
		{"8-bit without a window is display-ready", dicomtest.Image{Rows: 2, Columns: 3, BitsAllocated: 8, Pixels: []int{10, 20, 30, 40, 50, 60}},
			[]uint8{10, 20, 30, 40, 50, 60}},
		{"high bit above bits stored", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, HighBit: 15, Pixels: stored12, Center: 2048, Width: 4096},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"big endian", dicomtest.Image{TransferSyntax: dicomtest.ExplicitBE, Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"implicit VR", dicomtest.Image{TransferSyntax: dicomtest.ImplicitLE, Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"multi-frame takes the first", dicomtest.Image{Rows: 2, Columns: 3, Frames: 2, BitsStored: 12, Pixels: append(slices.Clone(stored12), 7, 7, 7, 7, 7, 7), Center: 2048, Width: 4096},
			[]uint8{0, 62, 128, 187, 255, 31}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := mustDecode(t, c.im.Bytes())
			if !bytes.Equal(f.Image.Pix, c.want) {
				t.Fatalf("got %v, want %v", f.Image.Pix, c.want)
			}
		})
	}
}

func TestHeaderFields(t *testing.T) {
	b := dicomtest.Image{Rows: 2, Columns: 2, Pixels: []int{1, 2, 3, 4}, Modality: "CR", BodyPart: "CHEST", View: "PA", Priority: "STAT", SOPInstanceUID: "1.2.3.4"}.Bytes()
	h, err := ReadHeader(bytes.NewReader(b), int64(len(b)), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if h.Modality != "CR" || h.BodyPart != "CHEST" || h.ViewPosition != "PA" || h.Priority != "STAT" || h.SOPInstanceUID != "1.2.3.4" {
		t.Fatalf("header %+v", h)
	}
}

func TestBadInputsHaveReasonCodes(t *testing.T) {
	good := dicomtest.Image{Rows: 16, Columns: 16, Pixels: make([]int, 256)}.Bytes()
	short := dicomtest.Image{Rows: 16, Columns: 16, PixelData: &dicomtest.Elem{Tag: dicomtest.Tag(0x7FE0, 0x0010), VR: "OW", Value: make([]byte, 100), Length: -1}}.Bytes()
	noPixels := dicomtest.Image{Rows: 16, Columns: 16, Pixels: make([]int, 256)}.Bytes()
	noPixels = noPixels[:len(noPixels)-512-12] // cut exactly before the Pixel Data element
	cases := map[string]struct {
		data []byte
		code Code
	}{
		"empty":             {nil, CodeEmptyFile},
		"text":              {[]byte("hello, this is not a film\n"), CodeNotDICOM},
		"png":               {append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 200)...), CodeNotDICOM},
		"truncated pixels":  {good[:len(good)-100], CodeTruncated},
		"cut before pixels": {noPixels, CodeNoPixelData},
		"pixel data short":  {short, CodePixelDataSize},
		"bad photometric":   {dicomtest.Image{Rows: 2, Columns: 2, Pixels: []int{1, 2, 3, 4}, Photometric: "PALETTE COLOR"}.Bytes(), CodeUnsupportedPixels},
		"zero rows":         {dicomtest.Image{Rows: 0, Columns: 2}.Bytes(), CodeBadHeader},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeBytes(t, c.data)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if got := CodeOf(err); got != c.code {
				t.Fatalf("code %s, want %s (%v)", got, c.code, err)
			}
		})
	}
}

func TestFileSizeLimit(t *testing.T) {
	b := dicomtest.Image{Rows: 16, Columns: 16, Pixels: make([]int, 256)}.Bytes()
	_, err := Decode(bytes.NewReader(b), int64(len(b)), Limits{MaxFileSize: 100, MaxPixels: 1 << 20})
	if CodeOf(err) != CodeTooLarge {
		t.Fatalf("got %v", err)
	}
	_, err = Decode(bytes.NewReader(b), int64(len(b)), Limits{MaxFileSize: 1 << 20, MaxPixels: 100})
	if CodeOf(err) != CodeTooManyPixels {
		t.Fatalf("got %v", err)
	}
}

func decodeFile(t *testing.T, path string) *Film {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	film, err := Decode(f, st.Size(), DefaultLimits)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	return film
}

// The uncompressed variants of the real NIH chest film (implicit, explicit,
// big endian, deflated) must decode to identical pixels; JPEG baseline is
// lossy (max error 11 per the data set's notes).
func TestRealFilmsAcrossUncompressedSyntaxes(t *testing.T) {
	ref := decodeFile(t, testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if ref.Image.Rect.Dx() != 1024 || ref.Image.Rect.Dy() != 1024 {
		t.Fatalf("size %v", ref.Image.Rect)
	}
	for _, name := range []string{"derived/nih_dx_explicitLE.dcm", "derived/nih_dx_bigendian.dcm", "derived/nih_dx_deflate.dcm"} {
		got := decodeFile(t, testenv.DICOM(t, name))
		if !bytes.Equal(got.Image.Pix, ref.Image.Pix) {
			t.Errorf("%s differs from the implicit VR original", name)
		}
	}
	jb := decodeFile(t, testenv.DICOM(t, "derived/nih_dx_jpegBaseline.dcm"))
	maxd := 0
	for i := range jb.Image.Pix {
		d := int(jb.Image.Pix[i]) - int(ref.Image.Pix[i])
		maxd = max(maxd, d, -d)
	}
	// min-max windowing can stretch the codec's error by a little.
	if maxd > 16 {
		t.Errorf("JPEG baseline differs from the original by %d gray levels", maxd)
	}
}

func TestRealMonochrome1ChestIsInverted(t *testing.T) {
	f := decodeFile(t, testenv.DICOM(t, "derived/RG1_chest_CR_mono1_explicitLE.dcm"))
	h := f.Header
	if h.Photometric != "MONOCHROME1" || h.Modality != "CR" || h.BodyPart != "CHEST" {
		t.Fatalf("header %+v", h)
	}
	// Lungs (dark on a display) sit left and right of the middle; the
	// mediastinum between them is brighter once MONOCHROME1 is inverted.
	mean := func(x0, x1, y0, y1 int) float64 {
		s, n := 0.0, 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				s += float64(f.Image.GrayAt(x, y).Y)
				n++
			}
		}
		return s / float64(n)
	}
	w, hgt := f.Image.Rect.Dx(), f.Image.Rect.Dy()
	lung := mean(w/5, 2*w/5, hgt/3, hgt/2)
	mediastinum := mean(w/2-w/20, w/2+w/20, hgt/3, hgt/2)
	if !(mediastinum > lung+10) {
		t.Fatalf("mediastinum %.1f not brighter than lung %.1f: inversion wrong?", mediastinum, lung)
	}
}

func TestErrorUnwraps(t *testing.T) {
	_, err := decodeBytes(t, []byte("x"))
	var de *Error
	if !errors.As(err, &de) || de.Code != CodeNotDICOM {
		t.Fatalf("got %v", err)
	}
}
