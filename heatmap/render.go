package heatmap

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/triaged/triaged/preprocess"
)

// RenderOptions say how an overlay looks.
type RenderOptions struct {
	// MaxSide bounds the longer side of the rendered film; larger films are
	// scaled down (antialiased), smaller ones are drawn at least MinSide.
	MaxSide, MinSide int
	// Alpha is the opacity of the hottest color over the film; cooler
	// values fade towards the bare film so what is not highlighted stays
	// readable.
	Alpha    float64
	Colormap Colormap
}

// DefaultRender is the daemon's rendering unless configured.
var DefaultRender = RenderOptions{MaxSide: 1024, MinSide: 512, Alpha: 0.5, Colormap: Colormap{"inferno", &infernoTable}}

// Check reports an unusable setting.
func (o RenderOptions) Check() error {
	if o.MaxSide < 256 || o.MinSide < 64 || o.MinSide > o.MaxSide {
		return fmt.Errorf("render: need 64 <= min side (%d) <= max side (%d), max side >= 256", o.MinSide, o.MaxSide)
	}
	if o.Alpha <= 0 || o.Alpha > 1 {
		return fmt.Errorf("render: alpha %g must be in (0, 1]", o.Alpha)
	}
	if o.Colormap.table == nil {
		return errors.New("render: no colormap")
	}
	return nil
}

// Window is the model's 224x224 crop in film pixels (fractional: the crop
// is taken from the resized film).
type Window struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// CropWindow maps the preprocessing crop back onto a film of w x h pixels.
func CropWindow(w, h int, c preprocess.Crop) Window {
	sx, sy := float64(w)/float64(c.ResizedW), float64(h)/float64(c.ResizedH)
	return Window{X: float64(c.Left) * sx, Y: float64(c.Top) * sy, W: Side * sx, H: Side * sy}
}

const (
	legendH     = 84
	legendMinW  = 512
	legendBarW  = 256
	legendTextX = 10
)

// hatch and frame colors: neutral gray for "not seen", and a cyan frame
// that no colormap uses.
var (
	hatchColor = color.RGBA{150, 150, 150, 255}
	frameColor = color.RGBA{0, 220, 255, 255}
)

// Render draws m over the display-ready film it was made from, in the
// film's own geometry: the map covers the crop window the model saw (drawn
// as a dashed frame); the rest of the film is dimmed and hatched as not
// seen. A legend panel below the film gives the colormap, the value range,
// the method and the model. The result is opaque RGBA.
func Render(film *image.Gray, crop preprocess.Crop, m *Map, o RenderOptions) (*image.RGBA, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	fw, fh := film.Rect.Dx(), film.Rect.Dy()
	if fw < 1 || fh < 1 || crop.ResizedW < 1 || crop.ResizedH < 1 {
		return nil, fmt.Errorf("render: empty film (%dx%d) or crop %+v", fw, fh, crop)
	}
	long := max(fw, fh)
	s := 1.0
	switch {
	case long > o.MaxSide:
		s = float64(o.MaxSide) / float64(long)
	case long < o.MinSide:
		s = float64(o.MinSide) / float64(long)
	}
	ow, oh := max(1, int(math.Round(float64(fw)*s))), max(1, int(math.Round(float64(fh)*s)))
	base := film
	if ow != fw || oh != fh {
		base = preprocess.ResizeBilinear(film, ow, oh)
	}
	cw := max(ow, legendMinW)
	img := image.NewRGBA(image.Rect(0, 0, cw, oh+legendHeight(cw)))
	draw.Draw(img, img.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)

	// Output pixel -> crop coordinate: u = (o + 0.5) * k - off, where the
	// crop pixel i spans [i, i+1).
	win := CropWindow(fw, fh, crop)
	kx, ky := float64(crop.ResizedW)/float64(ow), float64(crop.ResizedH)/float64(oh)
	peak := m.Max()
	inv := float32(0)
	if peak > 0 {
		inv = 1 / peak
	}
	alpha := float32(o.Alpha)
	for y := 0; y < oh; y++ {
		v := (float64(y)+0.5)*ky - float64(crop.Top)
		inY := v >= 0 && v < Side
		src := base.Pix[y*base.Stride : y*base.Stride+ow]
		dst := img.Pix[y*img.Stride : y*img.Stride+4*ow]
		for x, g := range src {
			u := (float64(x)+0.5)*kx - float64(crop.Left)
			p := dst[4*x : 4*x+4]
			p[3] = 255
			if !inY || u < 0 || u >= Side {
				// Not seen by the model: dimmed, hatched.
				d := uint8(uint16(g) * 45 / 100)
				if (x+y)%12 < 2 {
					d = hatchColor.R/2 + d/2
				}
				p[0], p[1], p[2] = d, d, d
				continue
			}
			t := sample(m.V, u-0.5, v-0.5) * inv
			if t <= 0 {
				p[0], p[1], p[2] = g, g, g
				continue
			}
			t = min(t, 1)
			a := alpha * min(1, t/0.25)
			c := o.Colormap.At(t)
			gf := float32(g) * (1 - a)
			p[0] = uint8(gf + float32(c.R)*a + 0.5)
			p[1] = uint8(gf + float32(c.G)*a + 0.5)
			p[2] = uint8(gf + float32(c.B)*a + 0.5)
		}
	}
	drawFrame(img, ow, oh, win, s)
	drawLegend(img, oh, m, peak, o.Colormap)
	return img, nil
}

// legendScale enlarges the legend on wide overlays, where 13-pixel text
// would be too small to read at a glance.
func legendScale(cw int) int {
	if cw >= 900 {
		return 2
	}
	return 1
}

func legendHeight(cw int) int { return legendH * legendScale(cw) }

// Shrink returns the film scaled (antialiased) so its longer side is at
// most maxSide, or the film itself if it already is. Render draws a shrunk
// film exactly as the original, since the crop maps back proportionally,
// so a film waiting for a late heatmap can be held at overlay size.
func Shrink(film *image.Gray, maxSide int) *image.Gray {
	w, h := film.Rect.Dx(), film.Rect.Dy()
	long := max(w, h)
	if long <= maxSide {
		return film
	}
	s := float64(maxSide) / float64(long)
	return preprocess.ResizeBilinear(film, max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s))))
}

// sample reads the Side x Side map bilinearly at continuous pixel
// coordinates (pixel centres at integers), clamped at the edges.
func sample(v []float32, x, y float64) float32 {
	x = min(max(x, 0), Side-1)
	y = min(max(y, 0), Side-1)
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, Side-1), min(y0+1, Side-1)
	fx, fy := float32(x-float64(x0)), float32(y-float64(y0))
	a := v[y0*Side+x0] + (v[y0*Side+x1]-v[y0*Side+x0])*fx
	b := v[y1*Side+x0] + (v[y1*Side+x1]-v[y1*Side+x0])*fx
	return a + (b-a)*fy
}

// drawFrame draws the crop window as a dashed 2-pixel frame.
func drawFrame(img *image.RGBA, ow, oh int, w Window, s float64) {
	x0, y0 := int(math.Round(w.X*s)), int(math.Round(w.Y*s))
	x1, y1 := int(math.Round((w.X+w.W)*s))-1, int(math.Round((w.Y+w.H)*s))-1
	x0, y0 = max(x0, 0), max(y0, 0)
	x1, y1 = min(x1, ow-1), min(y1, oh-1)
	dash := func(i int) bool { return i%12 < 8 }
	for x := x0; x <= x1; x++ {
		if dash(x) {
			for d := range 2 {
				img.SetRGBA(x, y0+d, frameColor)
				img.SetRGBA(x, y1-d, frameColor)
			}
		}
	}
	for y := y0; y <= y1; y++ {
		if dash(y) {
			for d := range 2 {
				img.SetRGBA(x0+d, y, frameColor)
				img.SetRGBA(x1-d, y, frameColor)
			}
		}
	}
}

// drawLegend draws the legend panel below the film (from row top), at
// legendScale: drawn small, then enlarged pixel by pixel.
func drawLegend(dst *image.RGBA, panel int, m *Map, peak float32, cm Colormap) {
	k := legendScale(dst.Rect.Dx())
	img := image.NewRGBA(image.Rect(0, 0, dst.Rect.Dx()/k, legendH))
	draw.Draw(img, img.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)
	defer func() {
		for y := range legendH * k {
			for x := range dst.Rect.Dx() {
				dst.SetRGBA(x, panel+y, img.RGBAAt(min(x/k, img.Rect.Dx()-1), y/k))
			}
		}
	}()
	const top = 0
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, top+y)}
		d.DrawString(s)
	}
	white, gray := color.RGBA{235, 235, 235, 255}, color.RGBA{170, 170, 170, 255}
	text(legendTextX, 14, fmt.Sprintf("COVID-19 heatmap: %s, model %s", title(m.Method), m.Model), white)
	for i := range legendBarW {
		c := cm.At(float32(i) / (legendBarW - 1))
		for y := top + 20; y < top+32; y++ {
			img.SetRGBA(legendTextX+i, y, c)
		}
	}
	lo, hi := "0", "no positive values"
	if peak > 0 {
		hi = fmt.Sprintf("%.3g", peak)
	}
	text(legendTextX, 45, lo, white)
	text(legendTextX+legendBarW-7*len(hi), 45, hi, white)
	text(legendTextX+legendBarW+10, 30, m.Unit, white)
	if m.Note != "" {
		text(legendTextX, 60, m.Note, gray)
	}
	text(legendTextX, 75, "dashed box: the 224x224 crop the model saw; hatched: not seen", gray)
}

func title(method string) string {
	switch method {
	case MethodCAM:
		return "class activation map"
	case MethodOcclusion:
		return "occlusion sensitivity"
	}
	return method
}

// EncodePNG encodes an overlay (opaque, as Render makes it) as an RGB PNG.
// Speed over size: it is on an alert's path. The PNG carries no text
// chunks, so no metadata beyond the pixels.
func EncodePNG(img *image.RGBA) ([]byte, error) {
	b, err := encodeRGB(img)
	if err != nil {
		return nil, fmt.Errorf("encode heatmap PNG: %w", err)
	}
	return b, nil
}
