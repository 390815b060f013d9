// Package preprocess reproduces the Deep-COVID reference preprocessing
// (torchvision Resize(224) on a PIL image, CenterCrop(224), ToTensor,
// Normalize with ImageNet statistics) exactly, so a film scored by the
// daemon gets the score the PyTorch reference gives it.
package preprocess

import (
	"image"
	"math"
)

// Pillow's fixed-point precision for 8-bit resampling (libImaging/Resample.c).
const precisionBits = 32 - 8 - 2

// ResizeShorter resizes a gray image so its shorter side is size pixels, as
// torchvision's Resize(size) does on a PIL image: the longer side becomes
// int(size * long / short), with Pillow's antialiased bilinear filter.
func ResizeShorter(src *image.Gray, size int) *image.Gray {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	ow, oh := ShorterSideSize(w, h, size)
	return ResizeBilinear(src, ow, oh)
}

// ShorterSideSize returns torchvision's output size for Resize(size).
func ShorterSideSize(w, h, size int) (int, int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// coeffs are Pillow's precomputed filter taps for one axis: for each output
// pixel the first input index, the tap count, and the fixed-point weights.
type coeffs struct {
	ksize  int
	bounds []int // xmin, count per output pixel
	k      []int32
}

// precompute ports precompute_coeffs + normalize_coeffs_8bpc for the
// bilinear (triangle, support 1) filter, box = whole input.
func precompute(inSize, outSize int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1.0)
	support := 1.0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, bounds: make([]int, outSize*2), k: make([]int32, outSize*ksize)}
	kk := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ww := 0.0
		ss := 1.0 / filterscale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		for x := 0; x < xmax; x++ {
			t := (float64(x+xmin) - center + 0.5) * ss
			wt := 1.0 - math.Abs(t)
			if wt < 0 {
				wt = 0
			}
			kk[x] = wt
			ww += wt
		}
		for x := 0; x < ksize; x++ {
			v := 0.0
			if x < xmax {
				v = kk[x]
				if ww != 0 {
					v /= ww
				}
			}
			// C's (int) truncates toward zero, as Go's conversion does.
			if v < 0 {
				c.k[xx*ksize+x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				c.k[xx*ksize+x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.bounds[2*xx] = xmin
		c.bounds[2*xx+1] = xmax
	}
	return c
}

func clip8(v int32) uint8 {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> precisionBits)
}

// ResizeBilinear is Pillow's Image.resize((w, h), BILINEAR) for mode "L":
// a horizontal pass over the rows the vertical pass needs, then a vertical
// pass, each skipped when its axis keeps its size.
func ResizeBilinear(src *image.Gray, ow, oh int) *image.Gray {
	iw, ih := src.Rect.Dx(), src.Rect.Dy()
	if iw == ow && ih == oh {
		dst := image.NewGray(image.Rect(0, 0, ow, oh))
		for y := 0; y < ih; y++ {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+ow], src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+y):])
		}
		return dst
	}
	cv := precompute(ih, oh)
	// Rows of the source the vertical pass reads.
	yFirst := cv.bounds[0]
	yLast := cv.bounds[2*(oh-1)] + cv.bounds[2*(oh-1)+1]

	// Horizontal pass into a temporary image holding rows yFirst..yLast.
	tmp, rowOff := src, 0 // Pix row r of tmp holds source row r-rowOff
	if iw != ow {
		ch := precompute(iw, ow)
		tmp = image.NewGray(image.Rect(0, 0, ow, yLast-yFirst))
		rowOff = -yFirst
		for y := yFirst; y < yLast; y++ {
			row := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+y):]
			out := tmp.Pix[(y-yFirst)*tmp.Stride:]
			for xx := 0; xx < ow; xx++ {
				xmin, xn := ch.bounds[2*xx], ch.bounds[2*xx+1]
				k := ch.k[xx*ch.ksize : xx*ch.ksize+xn]
				px := row[xmin : xmin+xn]
				ss := int32(1 << (precisionBits - 1))
				for x, kv := range k {
					ss += int32(px[x]) * kv
				}
				out[xx] = clip8(ss)
			}
		}
		if ih == oh {
			return tmp
		}
	}
	dst := image.NewGray(image.Rect(0, 0, ow, oh))
	for yy := 0; yy < oh; yy++ {
		ymin, yn := cv.bounds[2*yy], cv.bounds[2*yy+1]
		k := cv.k[yy*cv.ksize : yy*cv.ksize+yn]
		out := dst.Pix[yy*dst.Stride : yy*dst.Stride+ow]
		for xx := range out {
			ss := int32(1 << (precisionBits - 1))
			for y, kv := range k {
				ss += int32(tmp.Pix[(ymin+y+rowOff)*tmp.Stride+xx]) * kv
			}
			out[xx] = clip8(ss)
		}
	}
	return dst
}
