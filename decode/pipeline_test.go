package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Known outputs of the display pipeline (render.go, docs/dicom.md), each
// computed by hand or with a few lines of Python from the formulas there.
func TestDisplayPipelineKnownOutputs(t *testing.T) {
	tag := dicomtest.Tag
	ramp := make([]uint16, 4096) // a VOI LUT: stored 12 bits -> 8 bits
	for i := range ramp {
		ramp[i] = uint16(i / 16)
	}
	outlier := append(append([]int{0}, seq(1000, 1099)...), 4095) // 101 pixels
	garbage := make([]byte, 12)
	for i, v := range stored12 { // 12 bits stored, high bits set by an overlay
		binary.LittleEndian.PutUint16(garbage[2*i:], uint16(v)|0xF000)
	}
	cases := []struct {
		name string
		im   dicomtest.Image
		want []uint8
	}{
		{"LINEAR_EXACT window", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096, VOIFunction: "LINEAR_EXACT"},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"SIGMOID window", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096, VOIFunction: "SIGMOID"},
			[]uint8{30, 67, 128, 183, 225, 46}},
		{"first of several windows", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12,
			Extra: []dicomtest.Elem{dicomtest.DS(tag(0x0028, 0x1050), 2048, 100), dicomtest.DS(tag(0x0028, 0x1051), 4096, 10)}},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"modality LUT sequence replaces rescale", dicomtest.Image{Rows: 2, Columns: 2, BitsAllocated: 8, Pixels: []int{0, 1, 2, 3}, Slope: 2, Intercept: 7, Center: 2048, Width: 4096,
			Extra: []dicomtest.Elem{dicomtest.Seq(tag(0x0028, 0x3000), dicomtest.LUTItem(1, 12, []uint16{100, 2000, 4000}))}},
			[]uint8{6, 6, 125, 249}},
		{"VOI LUT sequence before the window", dicomtest.Image{Rows: 2, Columns: 2, BitsStored: 12, Pixels: []int{0, 1000, 2048, 4095}, Center: 10, Width: 2,
			Extra: []dicomtest.Elem{dicomtest.Seq(tag(0x0028, 0x3010), dicomtest.LUTItem(0, 8, ramp))}},
			[]uint8{0, 62, 128, 255}},
		{"percentile fallback clips 1% each end", dicomtest.Image{Rows: 1, Columns: 101, BitsStored: 12, Pixels: outlier},
			pick(outlier, map[int]uint8{0: 0, 1000: 0, 1049: 128, 1098: 255, 4095: 255})},
		{"percentile fallback after a negative slope", dicomtest.Image{Rows: 1, Columns: 101, BitsStored: 12, Pixels: outlier, Slope: -1, Intercept: 0},
			pick(outlier, map[int]uint8{0: 255, 1000: 255, 1049: 128, 1098: 0, 4095: 0})},
		{"constant film", dicomtest.Image{Rows: 2, Columns: 2, BitsStored: 12, Pixels: []int{7, 7, 7, 7}}, []uint8{0, 0, 0, 0}},
		{"8-bit MONOCHROME1 without a window", dicomtest.Image{Rows: 1, Columns: 3, BitsAllocated: 8, Pixels: []int{0, 100, 255}, Photometric: "MONOCHROME1"},
			[]uint8{255, 155, 0}},
		{"Presentation LUT Shape INVERSE", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096,
			Extra: []dicomtest.Elem{dicomtest.Str(tag(0x2050, 0x0020), "CS", "INVERSE")}},
			[]uint8{255, 193, 127, 68, 0, 224}},
		{"MONOCHROME1 with INVERSE inverts once", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Pixels: stored12, Center: 2048, Width: 4096, Photometric: "MONOCHROME1",
			Extra: []dicomtest.Elem{dicomtest.Str(tag(0x2050, 0x0020), "CS", "INVERSE")}},
			[]uint8{255, 193, 127, 68, 0, 224}},
		{"bits above the high bit are masked", dicomtest.Image{Rows: 2, Columns: 3, BitsStored: 12, Center: 2048, Width: 4096,
			PixelData: &dicomtest.Elem{Tag: tag(0x7FE0, 0x0010), VR: "OW", Value: garbage, Length: -1}},
			[]uint8{0, 62, 128, 187, 255, 31}},
		{"signed 12 of 16 bits with rescale", dicomtest.Image{Rows: 1, Columns: 4, BitsStored: 12, PixelRepresentation: 1, Pixels: []int{-2048, -1, 0, 2047}, Slope: 2, Intercept: 1000, Center: 1000, Width: 8192},
			[]uint8{0, 127, 128, 255}},
		{"RGB to gray (PIL L)", dicomtest.Image{Rows: 2, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "RGB",
			Pixels: []int{255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}}, []uint8{76, 150, 29, 18}},
		{"RGB color-by-plane", dicomtest.Image{Rows: 2, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "RGB", PlanarConfiguration: 1,
			Pixels: []int{255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30}}, []uint8{76, 150, 29, 18}},
		{"YBR_FULL takes Y", dicomtest.Image{Rows: 1, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "YBR_FULL",
			Pixels: []int{100, 128, 128, 200, 50, 60}}, []uint8{100, 200}},
		{"YBR_FULL_422 takes Y", dicomtest.Image{Rows: 2, Columns: 2, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "YBR_FULL_422",
			Pixels: []int{10, 20, 128, 128, 30, 40, 90, 200}}, []uint8{10, 20, 30, 40}},
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

func seq(a, b int) []int {
	out := make([]int, 0, b-a)
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}

// pick builds the expected output of a film from the values it checks;
// pixels not listed are taken from the stretch between lo and hi.
func pick(px []int, known map[int]uint8) []uint8 {
	out := make([]uint8, len(px))
	for i, v := range px {
		if k, ok := known[v]; ok {
			out[i] = k
			continue
		}
		y := float64(v-1000) / 98 * 255
		out[i] = uint8(max(0, min(255, y)) + 0.5)
		if known[0] == 255 { // the negative slope case
			out[i] = 255 - out[i]
			y = float64(1098-v) / 98 * 255
			out[i] = uint8(max(0, min(255, y)) + 0.5)
		}
	}
	return out
}

// A multi-frame encapsulated film decodes its first frame, located through
// the basic offset table, or without one by one fragment per frame or the
// codestream's end marker.
func TestMultiFrameEncapsulatedTakesTheFirst(t *testing.T) {
	testenv.Slow(t)
	const n = 64 * 64
	px := make([]int, 3*n)
	for i := range px {
		px[i] = (i*i*7 + i/3) % 256 // noisy enough for several 1 KiB fragments per frame
	}
	im := dicomtest.Image{Rows: 64, Columns: 64, Frames: 3, BitsAllocated: 8, Pixels: px}
	for _, c := range []struct {
		name  string
		prog  string
		flags []string
	}{
		{"RLE, offset table", "dcmcrle", []string{"+ot"}},
		{"RLE, no offset table", "dcmcrle", []string{"-ot"}},
		{"JPEG-LS, offset table, fragmented", "dcmcjpls", []string{"+ot", "+fs", "1"}},
		{"JPEG-LS, no offset table, fragmented", "dcmcjpls", []string{"-ot", "+fs", "1"}},
		{"JPEG lossless, no offset table, fragmented", "dcmcjpeg", []string{"+e1", "-ot", "+fs", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := encode(t, im.Bytes(), c.prog, c.flags...)
			f := mustDecode(t, b)
			if got := stored(f); !equalInts(got, px[:n]) {
				t.Fatalf("not the first frame")
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Color films compressed by the reference encoders reduce to the same gray
// as their uncompressed color (lossless), or as dcmtk's decompression.
func TestCompressedColorToGray(t *testing.T) {
	testenv.Slow(t)
	const w, h = 16, 8
	px := make([]int, 3*w*h)
	for i := 0; i < w*h; i++ {
		px[3*i], px[3*i+1], px[3*i+2] = (i*7)%256, (i*13)%256, (i*29)%256
	}
	im := dicomtest.Image{Rows: h, Columns: w, BitsAllocated: 8, SamplesPerPixel: 3, Photometric: "RGB", Pixels: px}
	want := mustDecode(t, im.Bytes()).Image.Pix
	for _, c := range []struct {
		prog  string
		flags []string
	}{{"dcmcrle", nil}, {"dcmcjpls", []string{"+el"}}, {"dcmcjpeg", []string{"+e1"}}} {
		t.Run(c.prog, func(t *testing.T) {
			f := mustDecode(t, encode(t, im.Bytes(), c.prog, c.flags...))
			if !bytes.Equal(f.Image.Pix, want) {
				t.Fatalf("gray differs from the uncompressed film")
			}
		})
	}
	for _, mct := range []string{"0", "1"} {
		t.Run("opj_compress mct "+mct, func(t *testing.T) {
			dir := t.TempDir()
			var ppm bytes.Buffer
			fmt.Fprintf(&ppm, "P6\n%d %d\n255\n", w, h)
			for _, v := range px {
				ppm.WriteByte(byte(v))
			}
			in, out := filepath.Join(dir, "in.ppm"), filepath.Join(dir, "out.j2k")
			os.WriteFile(in, ppm.Bytes(), 0o644)
			run(t, tool(t, "opj_compress", "libopenjp2-tools"), "-i", in, "-o", out, "-n", "2", "-mct", mct)
			cs, _ := os.ReadFile(out)
			j := im
			j.TransferSyntax = TSJ2KLossless
			pd := dicomtest.Encapsulated(cs)
			j.PixelData = &pd
			if f := mustDecode(t, j.Bytes()); !bytes.Equal(f.Image.Pix, want) {
				t.Fatalf("gray differs from the uncompressed film")
			}
		})
	}
	t.Run("dcmcjpeg baseline", func(t *testing.T) {
		b := encode(t, im.Bytes(), "dcmcjpeg", "+eb")
		f := mustDecode(t, b)
		path := filepath.Join(t.TempDir(), "b.dcm")
		os.WriteFile(path, b, 0o644)
		out := filepath.Join(t.TempDir(), "ref.dcm")
		run(t, tool(t, "dcmdjpeg", "dcmtk"), path, out)
		ref := decodeFile(t, out)
		d, _ := maxDiff(toInts(f.Image.Pix), toInts(ref.Image.Pix))
		if d > 1 {
			t.Fatalf("gray differs from dcmdjpeg's RGB by %d", d)
		}
	})
}

func toInts(b []byte) []int {
	out := make([]int, len(b))
	for i, v := range b {
		out[i] = int(v)
	}
	return out
}
