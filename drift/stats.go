// Package drift watches whether the films a site sends still look like the
// films a model was calibrated on: the display statistics of one film
// (Measure), the calibration distribution stored in a model's manifest
// (Profile, written by `triaged model calibrate`), and a rolling window of
// recent films compared with it by a population stability index per signal
// (Watch). It never sees patient data: only numbers and coded header values
// (manufacturer, model name, transfer syntax, photometric).
package drift

import (
	"image"
	"math"
)

// Stats are a display-ready film's statistics, on the 8-bit gray levels the
// preprocessing starts from.
type Stats struct {
	Mean   float64 // mean gray level
	Spread float64 // standard deviation of the gray levels
	Levels int     // distinct gray levels used
	Pixels int
}

// Measure computes a film's statistics in one pass over a 256-bin histogram,
// so a 4096x4096 film costs a few milliseconds and no allocation beyond it.
func Measure(g *image.Gray) Stats {
	if g == nil {
		return Stats{}
	}
	var hist [256]int
	r := g.Rect
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := g.Pix[(y-r.Min.Y)*g.Stride : (y-r.Min.Y)*g.Stride+r.Dx()]
		for _, v := range row {
			hist[v]++
		}
	}
	var s Stats
	var sum, sq float64
	for v, n := range hist {
		if n == 0 {
			continue
		}
		s.Levels++
		s.Pixels += n
		sum += float64(v) * float64(n)
		sq += float64(v) * float64(v) * float64(n)
	}
	if s.Pixels == 0 {
		return s
	}
	n := float64(s.Pixels)
	s.Mean = sum / n
	s.Spread = math.Sqrt(math.Max(0, sq/n-s.Mean*s.Mean))
	return s
}
