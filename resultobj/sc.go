package resultobj

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Limits on the overlay PNG, checked on its header before its pixels are
// decoded: the daemon's overlays are at most 8192 pixels a side
// (heatmap.max_side) plus the legend.
const (
	maxOverlaySide   = 16384
	maxOverlayPixels = 64 << 20
)

// Banner colors: white and amber on a dark red band, colors the overlay's
// own palette (grays, the colormap, the cyan crop frame) never puts in a
// full-width band.
var (
	BannerBackground = color.RGBA{110, 0, 0, 255}
	bannerWhite      = color.RGBA{255, 255, 255, 255}
	bannerAmber      = color.RGBA{255, 200, 60, 255}
)

// BannerHeight is the height of the band burned in above the overlay, for
// an overlay w pixels wide.
func BannerHeight(w int) int { return bannerRows * bannerScale(w) }

const bannerRows = 64 // at scale 1: one large line and two small ones

// MinWidth is the narrowest SC: the banner's text at scale 1 fits in it.
const MinWidth = 12 + 2*7*len(bannerWarning) + 12

func bannerScale(w int) int { return max(1, w/512) }

// composeSC draws the banner above the overlay: NOT FOR DIAGNOSTIC USE,
// the score and priority, the model set and the software.
func (c *builder) composeSC(overlayPNG []byte) (*image.RGBA, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(overlayPNG))
	if err != nil {
		return nil, fmt.Errorf("overlay PNG header: %w", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxOverlaySide || cfg.Height > maxOverlaySide ||
		int64(cfg.Width)*int64(cfg.Height) > maxOverlayPixels {
		return nil, fmt.Errorf("overlay PNG is %dx%d: beyond %d a side or %d pixels", cfg.Width, cfg.Height, maxOverlaySide, maxOverlayPixels)
	}
	ov, err := png.Decode(bytes.NewReader(overlayPNG))
	if err != nil {
		return nil, fmt.Errorf("overlay PNG: %w", err)
	}
	// A narrow overlay is drawn on a black canvas wide enough for the
	// whole warning: a clipped warning is no warning.
	w, h := max(ov.Bounds().Dx(), MinWidth), ov.Bounds().Dy()
	bh := BannerHeight(w)
	img := image.NewRGBA(image.Rect(0, 0, w, bh+h))
	draw.Draw(img, img.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, w, bh), image.NewUniform(BannerBackground), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, bh, ov.Bounds().Dx(), bh+h), ov, ov.Bounds().Min, draw.Src)

	k := bannerScale(w)
	small := image.NewRGBA(image.Rect(0, 0, (w+k-1)/k, bannerRows))
	draw.Draw(small, small.Rect, image.NewUniform(BannerBackground), image.Point{}, draw.Src)
	text := func(dst *image.RGBA, x, y int, s string, col color.Color) {
		d := font.Drawer{Dst: dst, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	// The warning at twice the size of the rest: drawn at 1x, doubled.
	warn := image.NewRGBA(image.Rect(0, 0, 7*len(bannerWarning)+2, 16))
	draw.Draw(warn, warn.Rect, image.NewUniform(BannerBackground), image.Point{}, draw.Src)
	text(warn, 1, 12, bannerWarning, bannerWhite)
	enlarge(small, image.Pt(6, 1), warn, 2)
	r := c.r
	text(small, 8, 46, fmt.Sprintf("COVID-19 score %.3f  priority %s", r.Score, strings.ToUpper(r.Priority)), bannerAmber)
	text(small, 8, 60, fmt.Sprintf("%s  triaged %s", r.ModelSet, c.o.SoftwareVersion), bannerWhite)
	enlarge(img, image.Point{}, small, k)
	return img, nil
}

const bannerWarning = "NOT FOR DIAGNOSTIC USE"

// enlarge draws src k times larger (nearest neighbour) into dst at at,
// clipped to dst: one row is built, then copied k times.
func enlarge(dst *image.RGBA, at image.Point, src *image.RGBA, k int) {
	row := make([]byte, 4*k*src.Rect.Dx())
	for sy := range src.Rect.Dy() {
		s := src.Pix[sy*src.Stride : sy*src.Stride+4*src.Rect.Dx()]
		for x := range k * src.Rect.Dx() {
			copy(row[4*x:4*x+4], s[4*(x/k):4*(x/k)+4])
		}
		for dy := range k {
			y := at.Y + sy*k + dy
			if y < 0 || y >= dst.Rect.Dy() {
				continue
			}
			n := min(len(row), 4*(dst.Rect.Dx()-at.X))
			if n <= 0 {
				return
			}
			copy(dst.Pix[y*dst.Stride+4*at.X:], row[:n])
		}
	}
}

// rgb is the interleaved 8-bit RGB of an opaque image, padded to an even
// length with a zero byte (PS3.5 8.1.1).
func rgb(img *image.RGBA) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	px := make([]byte, w*h*3+(w*h*3)%2)
	for y := range h {
		src := img.Pix[y*img.Stride : y*img.Stride+4*w]
		dst := px[3*w*y : 3*w*(y+1)]
		for x := range w {
			copy(dst[3*x:3*x+3], src[4*x:4*x+3])
		}
	}
	return px
}

// sc encodes the Secondary Capture of the overlay.
func (c *builder) sc(overlayPNG []byte) ([]byte, error) {
	img, err := c.composeSC(overlayPNG)
	if err != nil {
		return nil, err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	px := rgb(img)

	var d dataset
	c.common(&d, SecondaryCaptureStorage, c.u.SCInstance, c.u.SCSeries, "OT", c.o.SeriesNumber+1, c.o.SeriesDescription+" heatmap")
	d.str(0x00080008, "CS", `DERIVED\SECONDARY`)
	d.str(0x00080064, "CS", "WSD") // Conversion Type: workstation
	d.str(0x00082111, "ST", "Heatmap of where the triage model looked, over the film; "+bannerWarning)
	var purpose dataset = code{"121322", "DCM", "Source image for image processing operation"}.item()
	src := c.sourceRef()
	src.seq(0x0040A170, purpose)
	d.seq(0x00082112, src)           // Source Image Sequence
	d.seq(0x00081140, c.sourceRef()) // Referenced Image Sequence
	d.str(0x00181012, "DA", c.date())
	d.str(0x00181014, "TM", c.time())
	d.str(0x00200020, "CS", "") // Patient Orientation: unknown for a rendering
	// Body Part Examined: what the film is of; it also says Laterality
	// (type 2C for paired parts) is not needed.
	d.str(0x00180015, "CS", c.src.bodyPart())
	d.us(0x00280002, 3)
	d.str(0x00280004, "CS", "RGB")
	d.us(0x00280006, 0)
	d.us(0x00280010, uint16(h))
	d.us(0x00280011, uint16(w))
	d.us(0x00280100, 8)
	d.us(0x00280101, 8)
	d.us(0x00280102, 7)
	d.us(0x00280103, 0)
	d.str(0x00280301, "CS", "YES")
	d.str(0x00280302, "CS", "NO")
	d.add(0x7FE00010, "OB", px)
	b, err := part10(SecondaryCaptureStorage, c.u.SCInstance, d)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}
