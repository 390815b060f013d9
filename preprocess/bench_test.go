package preprocess

import (
	"image"
	"testing"
)

// film is a synthetic display-ready film of w x h with some texture.
func film(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g.Pix[y*g.Stride+x] = uint8((x*7 + y*13 + (x*y)>>5) & 0xFF)
		}
	}
	return g
}

// BenchmarkPrepare is Resize(224) + CenterCrop(224) of a full-size film
// (2000 x 2406, the bench's films) and of a 1024 x 1024 one.
func BenchmarkPrepare(b *testing.B) {
	for _, sz := range [][2]int{{2406, 2000}, {1024, 1024}} {
		g := film(sz[0], sz[1])
		b.Run(fmtSize(sz), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Prepare(g)
			}
		})
	}
}

// BenchmarkTensor is ToTensor + Normalize of a 224 x 224 crop.
func BenchmarkTensor(b *testing.B) {
	in := Prepare(film(300, 224))
	x := make([]float32, TensorLen)
	for i := 0; i < b.N; i++ {
		Tensor(in.Gray, x)
	}
}

func fmtSize(sz [2]int) string {
	return itoa(sz[0]) + "x" + itoa(sz[1])
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
