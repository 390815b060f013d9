package decode

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sort"
)

// The display pipeline, exactly (docs/dicom.md repeats it for anyone
// writing a reference implementation):
//
//  1. stored value s: the Bits Stored bits at High Bit (native data; codec
//     output is already right-aligned), two's complement when Pixel
//     Representation is 1.
//  2. Modality LUT: the Modality LUT Sequence's first item if present
//     (s below the first mapped value takes the first entry, above the
//     last the last), else m = s x Rescale Slope + Rescale Intercept.
//  3. VOI, the first that applies: the VOI LUT Sequence's first item
//     (entry at floor(m) - first mapped, clamped to the table, scaled
//     by 255 / (2^bits - 1)); the first Window Center/Width with its VOI
//     LUT Function (LINEAR per PS3.3 C.11.2.1.2.1, LINEAR_EXACT, SIGMOID);
//     for an 8-bit unsigned film with no modality transform, the identity;
//     otherwise the percentile stretch: sort the modality values of all
//     N pixels, k = (N-1) div 100, lo = v[k], hi = v[N-1-k], and
//     y = (m - lo) / (hi - lo) x 255 (if hi = lo: the minimum and maximum
//     instead; if those are equal too, 0).
//  4. 8 bits: floor(clamp(y, 0, 255) + 0.5).
//  5. MONOCHROME1, or Presentation LUT Shape INVERSE: 255 - that.
//
// Color films (RGB, YBR) are reduced to gray instead: RGB (and YBR_RCT,
// YBR_ICT, and JPEG's YCbCr, which the codecs hand back as RGB) with PIL's
// "L" conversion, YBR_FULL(_422) by taking Y, YBR_PARTIAL by stretching
// Y from 16..235.

// percentileDiv is the k = (N-1) / percentileDiv of the fallback stretch:
// 1% of the pixels at each end are clipped.
const percentileDiv = 100

// render returns the display-ready image and a description of the
// transforms it applied.
func render(h *Header, f *frame) (*image.Gray, string, error) {
	if h.SamplesPerPixel == 3 {
		return renderColor(h, f)
	}
	bs := h.BitsStored
	mask := uint32(1)<<bs - 1
	var flip uint32 // XOR with the sign bit maps two's complement to an offset index
	lo := 0
	if h.PixelRepresentation == 1 {
		flip = 1 << (bs - 1)
		lo = -int(flip)
	}
	index := func(w uint32) uint32 { return ((w >> f.shift) & mask) ^ flip }
	// The frame's own size: a reduced-resolution decode is smaller than
	// the header's Rows x Columns.
	n := f.w * f.h

	modality, desc := modalityFunc(h)
	var voi func(float64) float64
	switch {
	case h.VOILUT != nil:
		voi = lutVOI(h.VOILUT)
		desc += fmt.Sprintf(", VOI LUT Sequence (%d entries from %d, %d bits)", len(h.VOILUT.Data), h.VOILUT.First, h.VOILUT.Bits)
	case h.HasWindow:
		voi = windowVOI(h)
		fn := h.VOILUTFunction
		if fn == "" {
			fn = "LINEAR"
		}
		desc += fmt.Sprintf(", window %g/%g %s", h.WindowCenter, h.WindowWidth, fn)
	case bs == 8 && h.PixelRepresentation == 0 && h.ModalityLUT == nil && h.RescaleSlope == 1 && h.RescaleIntercept == 0:
		voi = func(x float64) float64 { return x }
		desc += ", identity (8-bit film without a VOI)"
	default:
		hist := make([]int, 1<<bs)
		for i := 0; i < n; i++ {
			hist[index(f.at(i))]++
		}
		var a, b float64
		voi, a, b = percentileVOI(hist, lo, modality, n)
		desc += fmt.Sprintf(", percentile stretch %g..%g (no VOI in the film)", a, b)
	}
	invert := h.Photometric == "MONOCHROME1" || h.PresentationLUTShape == "INVERSE"
	if invert {
		desc += ", inverted"
	}
	lut := make([]uint8, 1<<bs)
	for i := range lut {
		y := math.Floor(max(0, min(255, voi(modality(i+lo)))) + 0.5)
		v := uint8(y)
		if invert {
			v = 255 - v
		}
		lut[i] = v
	}
	img := image.NewGray(image.Rect(0, 0, f.w, f.h))
	out := img.Pix
	if f.u8 != nil {
		for i, w := range f.u8[:n] {
			out[i] = lut[index(uint32(w))]
		}
	} else {
		for i, w := range f.u16[:n] {
			out[i] = lut[index(uint32(w))]
		}
	}
	return img, desc, nil
}

// modalityFunc maps a stored value to its modality value.
func modalityFunc(h *Header) (func(int) float64, string) {
	if l := h.ModalityLUT; l != nil {
		first := l.First
		if h.PixelRepresentation == 1 && first >= 1<<15 {
			first -= 1 << 16 // the descriptor's first mapped value is SS for signed data
		}
		return func(s int) float64 {
			k := min(max(s-first, 0), len(l.Data)-1)
			return float64(l.Data[k])
		}, fmt.Sprintf("Modality LUT Sequence (%d entries from %d)", len(l.Data), first)
	}
	slope, icpt := h.RescaleSlope, h.RescaleIntercept
	return func(s int) float64 { return float64(s)*slope + icpt }, fmt.Sprintf("rescale %g/%g", slope, icpt)
}

func lutVOI(l *LUT) func(float64) float64 {
	scale := 255 / float64(uint32(1)<<l.Bits-1)
	first := float64(l.First)
	return func(m float64) float64 {
		k := int(min(max(math.Floor(m)-first, 0), float64(len(l.Data)-1)))
		return float64(l.Data[k]) * scale
	}
}

// windowVOI is the VOI transform to 0..255 (before rounding) of the film's
// first window.
func windowVOI(h *Header) func(float64) float64 {
	c, w := h.WindowCenter, h.WindowWidth
	switch h.VOILUTFunction {
	case "LINEAR_EXACT":
		return func(x float64) float64 {
			return ((x-c)/w + 0.5) * 255
		}
	case "SIGMOID":
		return func(x float64) float64 {
			return 255 / (1 + math.Exp(-4*(x-c)/w))
		}
	default: // LINEAR, PS3.3 C.11.2.1.2.1
		return func(x float64) float64 {
			if w <= 1 {
				if x <= c-0.5 {
					return 0
				}
				return 255
			}
			if x <= c-0.5-(w-1)/2 {
				return 0
			}
			if x > c-0.5+(w-1)/2 {
				return 255
			}
			return ((x-(c-0.5))/(w-1) + 0.5) * 255
		}
	}
}

// percentileVOI stretches between the k-th smallest and k-th largest
// modality values of the frame's pixels (see the top of this file).
func percentileVOI(hist []int, lo int, modality func(int) float64, n int) (voi func(float64) float64, a, b float64) {
	type bin struct {
		m     float64
		count int
	}
	var bins []bin
	for i, c := range hist {
		if c > 0 {
			bins = append(bins, bin{modality(i + lo), c})
		}
	}
	sort.SliceStable(bins, func(i, j int) bool { return bins[i].m < bins[j].m })
	nth := func(k int) float64 { // the k-th smallest, from 0
		for _, b := range bins {
			if k < b.count {
				return b.m
			}
			k -= b.count
		}
		return bins[len(bins)-1].m
	}
	k := (n - 1) / percentileDiv
	a, b = nth(k), nth(n-1-k)
	if b == a {
		a, b = bins[0].m, bins[len(bins)-1].m
	}
	if b == a {
		return func(float64) float64 { return 0 }, a, b
	}
	return func(x float64) float64 { return (x - a) / (b - a) * 255 }, a, b
}

func renderColor(h *Header, f *frame) (*image.Gray, string, error) {
	img := image.NewGray(image.Rect(0, 0, f.w, f.h))
	n := f.w * f.h
	s8 := func(i int) uint8 { return uint8(min(f.at(i), 255)) }
	switch {
	case f.rgb || h.Photometric == "RGB" || h.Photometric == "YBR_RCT" || h.Photometric == "YBR_ICT":
		for i := 0; i < n; i++ {
			img.Pix[i] = luma(s8(3*i), s8(3*i+1), s8(3*i+2))
		}
		return img, "color: RGB to gray (PIL L)", nil
	case h.Photometric == "YBR_FULL" || h.Photometric == "YBR_FULL_422":
		for i := 0; i < n; i++ {
			img.Pix[i] = s8(3 * i)
		}
		return img, "color: Y of " + h.Photometric, nil
	default: // YBR_PARTIAL: Y in 16..235
		for i := 0; i < n; i++ {
			y := (float64(s8(3*i)) - 16) * 255 / 219
			img.Pix[i] = uint8(math.Floor(max(0, min(255, y)) + 0.5))
		}
		return img, "color: Y of " + h.Photometric + " stretched from 16..235", nil
	}
}

// Stored returns the first frame's stored values as decoded, before any
// display transform: a 16-bit gray image of the Bits Stored bits (signed
// values as their two's complement bit pattern), or the color samples.
func (f *Film) Stored() image.Image {
	h, fr := f.Header, f.frame
	r := image.Rect(0, 0, fr.w, fr.h)
	n := fr.w * fr.h
	if h.SamplesPerPixel == 3 {
		img := image.NewNRGBA64(r)
		for i := 0; i < n; i++ {
			img.SetNRGBA64(i%fr.w, i/fr.w, color.NRGBA64{R: uint16(fr.at(3 * i)), G: uint16(fr.at(3*i + 1)), B: uint16(fr.at(3*i + 2)), A: 0xFFFF})
		}
		return img
	}
	mask := uint32(1)<<h.BitsStored - 1
	img := image.NewGray16(r)
	for i := 0; i < n; i++ {
		v := uint16((fr.at(i) >> fr.shift) & mask)
		img.Pix[2*i], img.Pix[2*i+1] = uint8(v>>8), uint8(v)
	}
	return img
}
