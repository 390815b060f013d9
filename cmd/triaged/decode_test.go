package main

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// `triaged decode FILE -o out.png -raw raw.png -crop crop.png` writes the
// display-ready film, its stored values and the model's crop, and says how
// it was displayed; a bad file exits 1 with its reason code.
func TestDecodeWritesWhatTheModelSees(t *testing.T) {
	dir := t.TempDir()
	film := filepath.Join(dir, "film.dcm")
	im := dicomtest.Image{Rows: 300, Columns: 260, BitsStored: 12, Pixels: make([]int, 300*260), Center: 2048, Width: 4096, Photometric: "MONOCHROME1"}
	for i := range im.Pixels {
		im.Pixels[i] = i % 4096
	}
	os.WriteFile(film, im.Bytes(), 0o644)
	out, raw, crop := filepath.Join(dir, "out.png"), filepath.Join(dir, "raw.png"), filepath.Join(dir, "crop.png")
	code, stdout, stderr := run("decode", film, "-o", out, "-raw", raw, "-crop", crop)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var sum decodeSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || !strings.Contains(sum.Display, "window 2048/4096") || !strings.Contains(sum.Display, "inverted") {
		t.Fatalf("summary %s (%v)", stdout, err)
	}
	g, ok := readPNG(t, out).(*image.Gray)
	if !ok || g.Rect.Dx() != 260 || g.Rect.Dy() != 300 || g.Pix[0] != 255 {
		t.Fatalf("display image %T %v", g, g.Rect)
	}
	r, ok := readPNG(t, raw).(*image.Gray16)
	if !ok || r.Gray16At(5, 1).Y != uint16((260+5)%4096) {
		t.Fatalf("raw image %T", r)
	}
	if c := readPNG(t, crop); c.Bounds().Dx() != 224 || c.Bounds().Dy() != 224 {
		t.Fatalf("crop %v", c.Bounds())
	}

	bad := filepath.Join(dir, "bad.dcm")
	os.WriteFile(bad, dicomtest.Hostile()[10].Data, 0o644)
	code, stdout, _ = run("decode", bad, "-o", filepath.Join(dir, "x.png"))
	if code != 1 || !strings.Contains(stdout, `"code":"`) {
		t.Fatalf("bad file: exit %d %s", code, stdout)
	}
	if code, _, _ := run("decode", film); code != 2 {
		t.Fatalf("no output: exit %d", code)
	}
}
