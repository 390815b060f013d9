package decode

import (
	"bytes"
	"encoding/binary"
	"image"
	"io"
	"math"
	"unsafe"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"

	"github.com/triaged/triaged/codec"
)

// Film is a decoded film: its header and the display-ready 8-bit image the
// model's preprocessing starts from.
type Film struct {
	Header *Header
	Image  *image.Gray
}

// Decode parses a whole DICOM file and renders its first frame.
func Decode(r io.Reader, size int64, lim Limits) (*Film, error) {
	ds, err := parse(r, size, lim, true)
	if err != nil {
		return nil, err
	}
	h, err := headerOf(&ds)
	if err != nil {
		return nil, err
	}
	if err := h.checkImage(lim); err != nil {
		return nil, err
	}
	s, err := firstFrame(h, &ds, lim)
	if err != nil {
		return nil, err
	}
	return &Film{Header: h, Image: render(h, s)}, nil
}

// samples is one frame of stored values, in 8- or 16-bit words.
type samples struct {
	u8  []uint8
	u16 []uint16
}

func firstFrame(h *Header, ds *dicom.Dataset, lim Limits) (samples, error) {
	pe := elem(ds, tag.PixelData)
	if pe == nil {
		// A file cut short at an element boundary parses cleanly but has
		// no pixel data: that must not look like success.
		return samples{}, fail(CodeNoPixelData, "no Pixel Data element (file truncated?)")
	}
	info, ok := pe.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		return samples{}, fail(CodeNoPixelData, "Pixel Data element has no pixel value")
	}
	if info.IsEncapsulated {
		return encapsulated(h, info, lim)
	}
	if !info.IntentionallyUnprocessed {
		return samples{}, fail(CodeNoPixelData, "native Pixel Data was not read")
	}
	bo, _, err := uid.ParseTransferSyntaxUID(h.TransferSyntax)
	if err != nil {
		return samples{}, fail(CodeUnsupportedSyntax, "transfer syntax %q: %v", h.TransferSyntax, err)
	}
	raw := info.UnprocessedValueData
	n := h.Rows * h.Columns * h.SamplesPerPixel
	need := n * h.BitsAllocated / 8
	if len(raw) < need {
		return samples{}, fail(CodePixelDataSize, "Pixel Data holds %d bytes, a %dx%d %d-bit frame needs %d", len(raw), h.Rows, h.Columns, h.BitsAllocated, need)
	}
	big := bo == binary.BigEndian
	if h.BitsAllocated == 8 {
		u8 := raw[:n]
		if big && pe.RawValueRepresentation == "OW" {
			// Explicit big endian stores 8-bit samples in OW words, so each
			// byte pair is swapped relative to sample order.
			swapPairs(u8)
		}
		return samples{u8: u8}, nil
	}
	return samples{u16: words(raw[:need], big)}, nil
}

// words reinterprets little-endian 16-bit pixel bytes in place rather than
// copying a full-size buffer; big-endian data is swapped in place first.
func words(b []byte, big bool) []uint16 {
	if big {
		swapPairs(b)
	}
	if len(b) < 2 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%2 != 0 || !hostLittleEndian {
		w := make([]uint16, len(b)/2)
		for i := range w {
			w[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return w
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func swapPairs(b []byte) {
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
}

// frameFragments returns the bytes of the first frame of encapsulated pixel
// data. The parser hands back every fragment (it skips the offset table), so
// a single-frame image is all fragments joined.
func frameFragments(frags [][]byte, frames int) []byte {
	if len(frags) == 0 {
		return nil
	}
	if frames <= 1 || len(frags) == frames {
		if frames > 1 || len(frags) == 1 {
			return frags[0]
		}
		return bytes.Join(frags, nil)
	}
	// Several frames over more fragments than frames: the first frame ends
	// with the fragment holding its end-of-image marker.
	var out []byte
	for _, f := range frags {
		out = append(out, f...)
		t := bytes.TrimRight(f, "\x00")
		if bytes.HasSuffix(t, []byte{0xFF, 0xD9}) {
			break
		}
	}
	return out
}

func encapsulated(h *Header, info dicom.PixelDataInfo, lim Limits) (samples, error) {
	frags := make([][]byte, 0, len(info.Frames))
	for _, f := range info.Frames {
		if f != nil && f.Encapsulated {
			frags = append(frags, f.EncapsulatedData.Data)
		}
	}
	data := frameFragments(frags, h.NumberOfFrames)
	if len(data) == 0 {
		return samples{}, fail(CodeNoPixelData, "encapsulated Pixel Data has no fragments")
	}
	dec, ok := decoders[h.TransferSyntax]
	if !ok {
		return samples{}, fail(CodeUnsupportedSyntax, "transfer syntax %s is not supported", tsName(h.TransferSyntax))
	}
	f, err := dec(data, lim.MaxPixels)
	if err != nil {
		return samples{}, wrap(CodeCodec, err)
	}
	if f.Width != h.Columns || f.Height != h.Rows {
		return samples{}, fail(CodeCodec, "codec frame is %dx%d, header says %dx%d", f.Width, f.Height, h.Columns, h.Rows)
	}
	if f.Components != h.SamplesPerPixel {
		return samples{}, fail(CodeCodec, "codec frame has %d components, header says %d samples per pixel", f.Components, h.SamplesPerPixel)
	}
	if f.Data16 != nil {
		return samples{u16: f.Data16}, nil
	}
	return samples{u8: f.Data8}, nil
}

// decoders maps encapsulated transfer syntaxes to codecs.
var decoders = map[string]func([]byte, int64) (*codec.Frame, error){
	TSJPEGBaseline: codec.JPEG8,
}

func tsName(ts string) string {
	if info, err := uid.Lookup(ts); err == nil {
		return ts + " (" + info.Name + ")"
	}
	return ts
}

// render maps stored values to a display-ready 8-bit image through a lookup
// table covering every possible stored value: Modality LUT (rescale), VOI
// LUT (window, or min-max when the film has none) and MONOCHROME1 inversion.
func render(h *Header, s samples) *image.Gray {
	bs := h.BitsStored
	shift := uint(h.HighBit + 1 - bs)
	mask := uint32(1)<<bs - 1
	var flip uint32 // XOR with the sign bit maps two's complement to an offset index
	lo := 0
	if h.PixelRepresentation == 1 {
		flip = 1 << (bs - 1)
		lo = -int(flip)
	}
	index := func(w uint32) uint32 { return ((w >> shift) & mask) ^ flip }
	n := h.Rows * h.Columns

	var vmin, vmax int
	if !h.HasWindow {
		imin, imax := uint32(math.MaxUint32), uint32(0)
		if s.u8 != nil {
			for _, w := range s.u8[:n] {
				i := index(uint32(w))
				imin, imax = min(imin, i), max(imax, i)
			}
		} else {
			for _, w := range s.u16[:n] {
				i := index(uint32(w))
				imin, imax = min(imin, i), max(imax, i)
			}
		}
		vmin, vmax = int(imin)+lo, int(imax)+lo
	}
	voi := voiFunc(h, vmin, vmax)
	invert := h.Photometric == "MONOCHROME1" || h.PresentationLUTShape == "INVERSE"
	lut := make([]uint8, 1<<bs)
	for i := range lut {
		x := float64(i+lo)*h.RescaleSlope + h.RescaleIntercept
		y := math.Floor(voi(x) + 0.5)
		v := uint8(max(0, min(255, y)))
		if invert {
			v = 255 - v
		}
		lut[i] = v
	}
	img := image.NewGray(image.Rect(0, 0, h.Columns, h.Rows))
	out := img.Pix
	if s.u8 != nil {
		for i, w := range s.u8[:n] {
			out[i] = lut[index(uint32(w))]
		}
	} else {
		for i, w := range s.u16[:n] {
			out[i] = lut[index(uint32(w))]
		}
	}
	return img
}

// voiFunc returns the VOI transform to 0..255 (before rounding) for the
// film's window, or a min-max stretch of the modality values.
func voiFunc(h *Header, vmin, vmax int) func(float64) float64 {
	if h.HasWindow {
		c, w := h.WindowCenter, h.WindowWidth
		switch h.VOILUTFunction {
		case "LINEAR_EXACT":
			return func(x float64) float64 {
				return clamp255(((x-c)/w + 0.5) * 255)
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
	a := float64(vmin)*h.RescaleSlope + h.RescaleIntercept
	b := float64(vmax)*h.RescaleSlope + h.RescaleIntercept
	if a > b {
		a, b = b, a
	}
	if b == a {
		return func(float64) float64 { return 0 }
	}
	return func(x float64) float64 { return clamp255((x - a) / (b - a) * 255) }
}

func clamp255(y float64) float64 { return max(0, min(255, y)) }
