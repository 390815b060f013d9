package preprocess

import (
	"image"
	"math"
)

// Size is the model input side.
const Size = 224

// ImageNet statistics used by the reference Normalize.
var (
	Mean = [3]float32{0.485, 0.456, 0.406}
	Std  = [3]float32{0.229, 0.224, 0.225}
)

// Crop is where the 224x224 model input lies in the film: the resized
// image's size and the crop offset in it. Heatmaps use it to map back.
type Crop struct {
	ResizedW, ResizedH int
	Left, Top          int
}

// CenterCropOffset is torchvision's center_crop offset: int(round((n-224)/2))
// with Python's round-half-to-even.
func CenterCropOffset(n, size int) int {
	return int(math.RoundToEven(float64(n-size) / 2.0))
}

// Input is a preprocessed film: the 8-bit 224x224 crop and where it came from.
type Input struct {
	Gray *image.Gray
	Crop Crop
}

// Prepare runs Resize(224) and CenterCrop(224) on a display-ready film.
func Prepare(img *image.Gray) Input {
	r := ResizeShorter(img, Size)
	w, h := r.Rect.Dx(), r.Rect.Dy()
	c := Crop{ResizedW: w, ResizedH: h, Left: CenterCropOffset(w, Size), Top: CenterCropOffset(h, Size)}
	out := image.NewGray(image.Rect(0, 0, Size, Size))
	for y := 0; y < Size; y++ {
		sy := y + c.Top
		if sy < 0 || sy >= h {
			continue // torchvision pads with 0 when the image is smaller than the crop
		}
		for x := 0; x < Size; x++ {
			sx := x + c.Left
			if sx >= 0 && sx < w {
				out.Pix[y*out.Stride+x] = r.Pix[sy*r.Stride+sx]
			}
		}
	}
	return Input{Gray: out, Crop: c}
}

// TensorLen is the number of float32 values of one NCHW input.
const TensorLen = 3 * Size * Size

// Tensor writes the normalised 3x224x224 tensor of a 224x224 gray crop into
// dst (len TensorLen): ToTensor's x/255, then (x - mean) / std per channel,
// in float32 arithmetic exactly as torch does it.
func Tensor(gray *image.Gray, dst []float32) {
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			x := float32(v) / float32(255)
			lut[c][v] = (x - Mean[c]) / Std[c]
		}
	}
	plane := Size * Size
	for y := 0; y < Size; y++ {
		row := gray.Pix[y*gray.Stride : y*gray.Stride+Size]
		for x, v := range row {
			i := y*Size + x
			dst[i] = lut[0][v]
			dst[plane+i] = lut[1][v]
			dst[2*plane+i] = lut[2][v]
		}
	}
}
