package heatmap

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/triaged/triaged/preprocess"
)

func flatFilm(w, h int, g uint8) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = g
	}
	return img
}

// A landscape film: the model saw its middle; the map is hot in the crop's
// left fifth only. The overlay must color exactly that part of the film,
// leave the rest of the crop as it was, and mark the sides as not seen.
func TestRenderMapsTheCropBackOntoTheFilm(t *testing.T) {
	film := flatFilm(600, 300, 120)
	in := preprocess.Prepare(film)
	if in.Crop != (preprocess.Crop{ResizedW: 448, ResizedH: 224, Left: 112, Top: 0}) {
		t.Fatalf("crop %+v", in.Crop)
	}
	win := CropWindow(600, 300, in.Crop)
	if win != (Window{X: 150, Y: 0, W: 300, H: 300}) {
		t.Fatalf("crop window %+v", win)
	}
	m := &Map{Method: MethodCAM, Model: "m", Unit: "u", V: make([]float32, Side*Side)}
	for y := range Side {
		for x := range 45 {
			m.V[y*Side+x] = 1
		}
	}
	img, err := Render(film, in.Crop, m, DefaultRender)
	if err != nil {
		t.Fatal(err)
	}
	if img.Rect.Dx() != 600 || img.Rect.Dy() <= 300 {
		t.Fatalf("overlay %v, want 600 wide with a legend below 300 rows of film", img.Rect)
	}
	at := func(x, y int) color.RGBA { return img.RGBAAt(x, y) }
	if c := at(60, 150); c.R != c.G || c.R >= 120 {
		t.Errorf("left of the crop (not seen): %v, want dimmed gray", c)
	}
	if c := at(180, 150); c.R == c.G && c.G == c.B {
		t.Errorf("hot part of the crop: %v, want colored", c)
	}
	if c := at(400, 150); c != (color.RGBA{120, 120, 120, 255}) {
		t.Errorf("cold part of the crop: %v, want the film unchanged", c)
	}
	frame := 0
	for y := range 300 {
		if at(150, y) == frameColor {
			frame++
		}
	}
	if frame < 150 {
		t.Errorf("crop frame drawn on %d of 300 rows at its left edge", frame)
	}
	legend := 0
	for y := 300; y < img.Rect.Dy(); y++ {
		for x := range 300 {
			if at(x, y) != (color.RGBA{0, 0, 0, 255}) {
				legend++
			}
		}
	}
	if legend < 2000 {
		t.Errorf("legend panel nearly empty (%d non-black pixels)", legend)
	}
}

func TestRenderBoundsTheSize(t *testing.T) {
	m := &Map{Method: MethodOcclusion, Model: EnsembleName, Unit: "drop", V: make([]float32, Side*Side)}
	for _, c := range []struct{ w, h, ow, oh int }{
		{3000, 2000, 1024, 683}, // scaled down
		{200, 256, 400, 512},    // small films are drawn larger; the legend keeps its width
		{1955, 1841, 1024, 964},
	} {
		film := flatFilm(c.w, c.h, 30)
		in := preprocess.Prepare(film)
		img, err := Render(film, in.Crop, m, DefaultRender)
		if err != nil {
			t.Fatal(err)
		}
		fw, fh := img.Rect.Dx(), img.Rect.Dy()-legendHeight(img.Rect.Dx())
		if max(fw, c.ow) != max(c.ow, legendMinW) || fh != c.oh {
			t.Errorf("%dx%d film: overlay %dx%d (+legend), want %dx%d", c.w, c.h, fw, fh, c.ow, c.oh)
		}
		b, err := EncodePNG(img)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.ColorModel != color.RGBAModel && cfg.ColorModel != color.NRGBAModel {
			t.Errorf("PNG: %v %v", err, cfg.ColorModel)
		}
	}
	if _, err := Render(flatFilm(10, 10, 0), preprocess.Crop{ResizedW: 224, ResizedH: 224}, &Map{}, DefaultRender); err == nil {
		t.Error("a map of the wrong size was rendered")
	}
}

func TestColormapsArePerceptuallyOrdered(t *testing.T) {
	for _, name := range Colormaps {
		cm, err := ColormapByName(name)
		if err != nil {
			t.Fatal(err)
		}
		// Lightness rises monotonically in all three (a property of the
		// perceptually uniform maps): check the luma of every 16th entry.
		prev := -1.0
		for i := 0; i < 256; i += 16 {
			c := cm.At(float32(i) / 255)
			l := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
			if l <= prev {
				t.Errorf("%s: luma falls at entry %d", name, i)
			}
			prev = l
		}
	}
	if _, err := ColormapByName("jet"); err == nil {
		t.Error("jet accepted")
	}
}

// The overlay's own PNG writer must round-trip through image/png exactly.
func TestEncodePNGRoundTrips(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 37, 23))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	b, err := EncodePNG(img)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if dec.Bounds() != img.Rect {
		t.Fatalf("bounds %v", dec.Bounds())
	}
	for y := range 23 {
		for x := range 37 {
			r, g, bl, a := dec.At(x, y).RGBA()
			want := img.RGBAAt(x, y)
			if uint8(r>>8) != want.R || uint8(g>>8) != want.G || uint8(bl>>8) != want.B || a != 0xffff {
				t.Fatalf("(%d,%d): got %v, want %v", x, y, dec.At(x, y), want)
			}
		}
	}
}

// A film shrunk to overlay size (what a film waiting for its late
// occlusion map keeps) renders like the original.
func TestShrunkFilmRendersTheSame(t *testing.T) {
	film := image.NewGray(image.Rect(0, 0, 2000, 1500))
	for i := range film.Pix {
		film.Pix[i] = uint8(i % 2000 / 8)
	}
	in := preprocess.Prepare(film)
	m := &Map{Method: MethodCAM, Model: "m", V: make([]float32, Side*Side)}
	for i := range m.V {
		m.V[i] = float32(i%Side) / Side
	}
	a, err := Render(film, in.Crop, m, DefaultRender)
	if err != nil {
		t.Fatal(err)
	}
	small := Shrink(film, DefaultRender.MaxSide)
	if small.Rect.Dx() != 1024 || Shrink(small, 1024) != small {
		t.Fatalf("shrunk to %v", small.Rect)
	}
	b, err := Render(small, in.Crop, m, DefaultRender)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rect != b.Rect {
		t.Fatalf("%v vs %v", a.Rect, b.Rect)
	}
	differ := 0
	for i := range a.Pix {
		if d := int(a.Pix[i]) - int(b.Pix[i]); d > 2 || d < -2 {
			differ++
		}
	}
	if differ > len(a.Pix)/1000 {
		t.Errorf("%d of %d bytes differ by more than 2", differ, len(a.Pix))
	}
}
