package decode

import (
	"bytes"

	"image"
	"image/draw"
	"image/png"

	"github.com/triaged/triaged/codec"
)

// ImageFile decodes a plain JPEG or PNG image (the training data's format) to
// 8-bit gray. JPEG goes through libjpeg-turbo, as in PIL, so the pixels
// match the PyTorch reference; color images are reduced with PIL's "L"
// conversion (ITU-R 601-2 luma).
func ImageFile(data []byte, lim Limits) (*image.Gray, error) {
	lim = lim.withDefaults()
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		f, err := codec.JPEG8(data, lim.MaxPixels)
		if err != nil {
			return nil, wrap(CodeCodec, err)
		}
		g := image.NewGray(image.Rect(0, 0, f.Width, f.Height))
		if f.Components == 1 {
			copy(g.Pix, f.Data8)
			return g, nil
		}
		for i := range g.Pix {
			p := f.Data8[3*i:]
			g.Pix[i] = luma(p[0], p[1], p[2])
		}
		return g, nil
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, wrap(CodeCodec, err)
		}
		if int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
			return nil, fail(CodeTooManyPixels, "%dx%d PNG exceeds the pixel limit", cfg.Width, cfg.Height)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, wrap(CodeCodec, err)
		}
		if g, ok := img.(*image.Gray); ok {
			return g, nil
		}
		b := img.Bounds()
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		rgba := image.NewNRGBA(g.Rect)
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
		for i := range g.Pix {
			p := rgba.Pix[4*i:]
			g.Pix[i] = luma(p[0], p[1], p[2])
		}
		return g, nil
	}
	return nil, fail(CodeNotDICOM, "not a JPEG or PNG image")
}

// luma is PIL's RGB -> L conversion (libImaging/Convert.c).
func luma(r, g, b uint8) uint8 {
	return uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
}
