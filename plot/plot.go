// Package plot draws the evaluation's figures (ROC and precision-recall
// curves, score histograms, confusion matrices) as PNG files with the
// standard library and a bitmap font: enough for a report, no plotting
// dependency.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Palette holds distinguishable series colors (Tableau 10).
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

const (
	width, height            = 820, 620
	left, right, top, bottom = 70, 30, 50, 60
	plotW                    = width - left - right
	plotH                    = height - top - bottom
)

var (
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	gray  = color.RGBA{150, 150, 150, 255}
)

type canvas struct {
	img        *image.RGBA
	x0, x1     float64
	y0, y1     float64
	legendRows int
}

func newCanvas(title, xlabel, ylabel string, x0, x1, y0, y1 float64) *canvas {
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, width, height)), x0: x0, x1: x1, y0: y0, y1: y1}
	draw.Draw(c.img, c.img.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	for i := 0; i <= 5; i++ {
		fx := x0 + (x1-x0)*float64(i)/5
		fy := y0 + (y1-y0)*float64(i)/5
		px, _ := c.px(fx, y0)
		_, py := c.px(x0, fy)
		c.line(px, top, px, top+plotH, grid, 1)
		c.line(left, py, left+plotW, py, grid, 1)
		c.text(px-10, top+plotH+18, tick(fx), black)
		c.text(left-38, py+4, tick(fy), black)
	}
	c.rect(left, top, left+plotW, top+plotH, black)
	c.text(left, 28, title, black)
	c.text(left+plotW/2-len(xlabel)*7/2, height-18, xlabel, black)
	c.text(8, top-8, ylabel, black)
	return c
}

func tick(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 && math.Abs(v) >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (c *canvas) px(x, y float64) (int, int) {
	return left + int(math.Round((x-c.x0)/(c.x1-c.x0)*plotW)), top + plotH - int(math.Round((y-c.y0)/(c.y1-c.y0)*plotH))
}

func (c *canvas) text(x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func (c *canvas) set(x, y int, col color.Color) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.Set(x, y, col)
	}
}

// line draws a Bresenham line w pixels thick.
func (c *canvas) line(x0, y0, x1, y1 int, col color.Color, w int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		for ox := 0; ox < w; ox++ {
			for oy := 0; oy < w; oy++ {
				c.set(x0+ox-w/2, y0+oy-w/2, col)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	c.line(x0, y0, x1, y0, col, 1)
	c.line(x1, y0, x1, y1, col, 1)
	c.line(x1, y1, x0, y1, col, 1)
	c.line(x0, y1, x0, y0, col, 1)
}

func (c *canvas) fill(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), image.NewUniform(col), image.Point{}, draw.Over)
}

func (c *canvas) legend(name string, col color.Color, right bool) {
	y := top + 18 + 18*c.legendRows
	x := left + 12
	if right {
		x = left + plotW - 260
		y = top + plotH - 20 - 18*c.legendRows
	}
	c.fill(x, y-8, x+22, y-2, col)
	c.text(x+28, y, name, black)
	c.legendRows++
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

func sign(a int) int {
	switch {
	case a < 0:
		return -1
	case a > 0:
		return 1
	}
	return 0
}

// Series is one curve.
type Series struct {
	Name   string
	Points [][2]float64
}

// Curves draws curves on [0,1]x[0,1], optionally with the chance diagonal.
func Curves(title, xlabel, ylabel string, series []Series, diagonal, legendBottomRight bool) *image.RGBA {
	c := newCanvas(title, xlabel, ylabel, 0, 1, 0, 1)
	if diagonal {
		x0, y0 := c.px(0, 0)
		x1, y1 := c.px(1, 1)
		c.line(x0, y0, x1, y1, gray, 1)
	}
	for i, s := range series {
		col := Palette[i%len(Palette)]
		for j := 1; j < len(s.Points); j++ {
			a, b := s.Points[j-1], s.Points[j]
			if math.IsNaN(a[1]) || math.IsNaN(b[1]) {
				continue
			}
			x0, y0 := c.px(a[0], a[1])
			x1, y1 := c.px(b[0], b[1])
			c.line(x0, y0, x1, y1, col, 2)
		}
		c.legend(s.Name, col, legendBottomRight)
	}
	return c.img
}

// Marker is a vertical line at x.
type Marker struct {
	X     float64
	Label string
}

// Histogram draws the distribution of scores in [0,1] for each group, as
// translucent bars of relative frequency, with threshold markers.
func Histogram(title string, bins int, groups []Series, markers []Marker) *image.RGBA {
	counts := make([][]float64, len(groups))
	ymax := 0.0
	for g, s := range groups {
		counts[g] = make([]float64, bins)
		for _, p := range s.Points {
			b := min(bins-1, max(0, int(p[0]*float64(bins))))
			counts[g][b]++
		}
		for b := range counts[g] {
			if n := float64(len(s.Points)); n > 0 {
				counts[g][b] /= n
			}
			ymax = math.Max(ymax, counts[g][b])
		}
	}
	ymax = math.Ceil(ymax*10+0.5) / 10
	c := newCanvas(title, "P(COVID-19)", "fraction of group", 0, 1, 0, ymax)
	for g := range groups {
		p := Palette[g%len(Palette)]
		col := color.NRGBA{p.R, p.G, p.B, 140} // translucent, so overlapping bars stay visible
		for b, v := range counts[g] {
			x0, y0 := c.px(float64(b)/float64(bins), v)
			x1, y1 := c.px(float64(b+1)/float64(bins), 0)
			c.fill(x0+1, y0, x1, y1, col)
		}
		c.legend(groups[g].Name, Palette[g%len(Palette)], false)
	}
	for _, m := range markers {
		x, y0 := c.px(m.X, ymax)
		_, y1 := c.px(m.X, 0)
		c.line(x, y0, x, y1, black, 1)
		c.text(x+4, y0+14, m.Label, black)
	}
	return c.img
}

// Confusion draws 2x2 confusion matrices side by side; cells are shaded by
// their share of the row (truth).
func Confusion(title string, names []string, mats [][2][2]int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 420*len(mats)+40, 420))
	draw.Draw(img, img.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	c := &canvas{img: img}
	c.text(20, 24, title, black)
	labels := []string{"COVID-19", "non-COVID"}
	for k, m := range mats {
		ox := 40 + 420*k
		c.text(ox+110, 56, names[k], black)
		c.text(ox+150, 400, "prediction", black)
		c.text(ox-30, 80, "truth", black)
		for r := 0; r < 2; r++ {
			rowSum := m[r][0] + m[r][1]
			c.text(ox-30, 150+r*130, labels[r], black)
			for col := 0; col < 2; col++ {
				share := 0.0
				if rowSum > 0 {
					share = float64(m[r][col]) / float64(rowSum)
				}
				shade := uint8(255 - 180*share)
				x0, y0 := ox+60+col*130, 90+r*130
				c.fill(x0, y0, x0+128, y0+128, color.RGBA{shade, shade, 255, 255})
				txt := fmt.Sprintf("%d (%.0f%%)", m[r][col], 100*share)
				tc := color.Color(black)
				if share > 0.6 {
					tc = color.White
				}
				c.text(x0+64-len(txt)*7/2, y0+68, txt, tc)
			}
		}
		c.text(ox+60+30, 385, labels[0], black)
		c.text(ox+60+130+26, 385, labels[1], black)
	}
	return img
}

// Save writes a PNG.
func Save(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}
