package decode

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"io"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/triaged/triaged/codec"
)

// Film is a decoded film: its header and the display-ready 8-bit image the
// model's preprocessing starts from.
type Film struct {
	Header *Header
	Image  *image.Gray
	// Display says which transforms made Image (modality, VOI, inversion).
	Display string
	// Reduced is the number of JPEG 2000 resolution levels the decode left
	// out (Limits.ReducedMinSide): Image is then about 1/2^Reduced of
	// Rows x Columns on each side. 0: decoded at full size.
	Reduced int
	// Timings says where the decode spent its time (for benchmarks and
	// the bench's stage breakdown).
	Timings Timings
	frame   *frame
}

// Timings split a decode: the pre-scan and header parse, the wait for the
// decode memory budget, the first frame's samples (codec or native), and
// the display pipeline.
type Timings struct {
	Header, Wait, Frame, Render time.Duration
}

// Decode pre-scans a whole DICOM file, parses its attributes and renders its
// first frame.
func Decode(r io.Reader, size int64, lim Limits) (*Film, error) {
	return DecodeContext(context.Background(), r, size, lim)
}

// DecodeContext is Decode that gives up waiting for the memory budget when
// ctx ends.
func DecodeContext(ctx context.Context, r io.Reader, size int64, lim Limits) (film *Film, err error) {
	defer recoverPanic(&err)
	t0 := time.Now()
	lim = lim.withDefaults()
	ra, err := readerAt(r, size, lim)
	if err != nil {
		return nil, err
	}
	l, err := scanFile(ra, size, lim)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(l)
	if err != nil {
		return nil, err
	}
	if err := Check(h, lim); err != nil {
		return nil, err
	}
	var tm Timings
	t1 := time.Now()
	tm.Header = t1.Sub(t0)
	release, err := lim.Budget.acquire(ctx, h.decodeEstimate())
	if err != nil {
		return nil, err
	}
	defer release()
	t2 := time.Now()
	tm.Wait = t2.Sub(t1)
	framesInFlight.Add(1)
	f, err := firstFrame(h, lim)
	framesInFlight.Add(-1)
	if err != nil {
		return nil, err
	}
	t3 := time.Now()
	tm.Frame = t3.Sub(t2)
	img, desc, err := render(h, f)
	if err != nil {
		return nil, err
	}
	tm.Render = time.Since(t3)
	return &Film{Header: h, Image: img, Display: desc, Reduced: f.reduced, Timings: tm, frame: f}, nil
}

// recoverPanic turns a panic anywhere in decoding (a bug this package's
// tests and fuzzing have not found) into a quarantine with internal_error:
// decoding touches no shared state, so the daemon can carry on.
func recoverPanic(err *error) {
	if p := recover(); p != nil {
		*err = panicked(CodeInternal, "decoder", p)
	}
}

// frame is one frame of samples, interleaved, in 8- or 16-bit words.
type frame struct {
	w, h, spp int
	u8        []uint8
	u16       []uint16
	// shift moves the stored bits down to bit 0: High Bit + 1 - Bits
	// Stored for native data; codecs hand back right-aligned samples.
	shift uint
	// rgb: the codec already turned color into R, G, B.
	rgb bool
	// reduced: resolution levels a JPEG 2000 decode left out; w and h are
	// then the reduced size, not the header's.
	reduced int
}

func (f *frame) at(i int) uint32 {
	if f.u8 != nil {
		return uint32(f.u8[i])
	}
	return uint32(f.u16[i])
}

// Check validates a header's image attributes before any pixel buffer is
// sized from them, and that its transfer syntax is decoded here, so that
// the pipeline can refuse a film at admission, from its header alone.
func Check(h *Header, lim Limits) error {
	lim = lim.withDefaults()
	l := h.layout
	if l != nil && l.pixel == nil {
		if l.otherPixels {
			return fail(CodeUnsupportedPixels, "float pixel data is not supported")
		}
		// A file cut short at an element boundary parses cleanly but has
		// no pixel data: that must not look like success.
		return fail(CodeNoPixelData, "no Pixel Data element (file truncated?)")
	}
	if l != nil && !l.syntax.Supported() {
		// First: whatever else is wrong, no film in this syntax decodes.
		return fail(CodeUnsupportedSyntax, "transfer syntax %s is not supported", tsName(l.syntax.UID))
	}
	if h.Rows <= 0 || h.Columns <= 0 || h.Rows > 65535 || h.Columns > 65535 {
		return fail(CodeBadHeader, "rows %d x columns %d", h.Rows, h.Columns)
	}
	if int64(h.Rows)*int64(h.Columns) > lim.MaxPixels {
		return fail(CodeTooManyPixels, "%d x %d pixels exceeds the limit of %d", h.Rows, h.Columns, lim.MaxPixels)
	}
	if h.BitsAllocated != 8 && h.BitsAllocated != 16 {
		return fail(CodeUnsupportedPixels, "bits allocated %d (supported: 8, 16)", h.BitsAllocated)
	}
	if h.BitsStored < 1 || h.BitsStored > h.BitsAllocated {
		return fail(CodeBadHeader, "bits stored %d with bits allocated %d", h.BitsStored, h.BitsAllocated)
	}
	if h.HighBit < h.BitsStored-1 || h.HighBit >= h.BitsAllocated {
		return fail(CodeBadHeader, "high bit %d with bits stored %d and allocated %d", h.HighBit, h.BitsStored, h.BitsAllocated)
	}
	if h.PixelRepresentation != 0 && h.PixelRepresentation != 1 {
		return fail(CodeBadHeader, "pixel representation %d", h.PixelRepresentation)
	}
	if h.NumberOfFrames < 1 {
		return fail(CodeBadHeader, "number of frames %d", h.NumberOfFrames)
	}
	switch h.Photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if h.SamplesPerPixel != 1 {
			return fail(CodeBadHeader, "photometric interpretation %s with %d samples per pixel", EchoCS(h.Photometric), h.SamplesPerPixel)
		}
	case "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_RCT", "YBR_ICT":
		if h.SamplesPerPixel != 3 {
			return fail(CodeBadHeader, "photometric interpretation %s with %d samples per pixel", EchoCS(h.Photometric), h.SamplesPerPixel)
		}
		if h.BitsStored != 8 || (h.BitsAllocated != 8 && (l == nil || !l.syntax.encaps)) {
			return fail(CodeUnsupportedPixels, "color with %d of %d bits (supported: 8 of 8)", h.BitsStored, h.BitsAllocated)
		}
		if h.PlanarConfiguration != 0 && h.PlanarConfiguration != 1 {
			return fail(CodeBadHeader, "planar configuration %d", h.PlanarConfiguration)
		}
	default:
		return fail(CodeUnsupportedPixels, "photometric interpretation %s (supported: MONOCHROME1, MONOCHROME2, RGB, YBR)", EchoCS(h.Photometric))
	}
	if math.IsNaN(h.RescaleSlope) || math.IsInf(h.RescaleSlope, 0) || math.IsNaN(h.RescaleIntercept) || math.IsInf(h.RescaleIntercept, 0) {
		return fail(CodeBadHeader, "rescale slope/intercept not finite")
	}
	return nil
}

// frameBytes is the size of one native frame, in 64 bits (Check has
// bounded rows and columns, so it cannot overflow).
func (h *Header) frameBytes() int64 {
	n := int64(h.Rows) * int64(h.Columns) * int64(h.SamplesPerPixel) * int64(h.BitsAllocated/8)
	if h.Photometric == "YBR_FULL_422" || h.Photometric == "YBR_PARTIAL_422" {
		if h.layout != nil && !h.layout.syntax.encaps {
			n = n * 2 / 3 // two luma and one pair of chroma samples per two pixels
		}
	}
	return n
}

// decodeEstimate is the memory a decode of this film needs beyond its
// header, for the budget.
func (h *Header) decodeEstimate() int64 {
	px := int64(h.Rows) * int64(h.Columns)
	samples := px * int64(h.SamplesPerPixel)
	in := h.frameBytes() // native frame, or at most this much compressed data
	decoded, scratch := samples*2, int64(0)
	if l := h.layout; l != nil && l.pixel != nil && l.pixel.encapsulated {
		in = 0
		for _, f := range l.pixel.frags {
			in += f.n
		}
		switch l.syntax.codec {
		case codecJ2K:
			scratch = 8 * samples // OpenJPEG's 32-bit component planes and tile buffers
		case codecJPEG:
			scratch = 4 * samples // coefficient buffers of multi-scan JPEG
		default:
			scratch = samples
		}
	}
	return in + decoded + scratch + px + 1<<20
}

// firstFrame returns the stored samples of the first frame.
func firstFrame(h *Header, lim Limits) (*frame, error) {
	l := h.layout
	p := l.pixel
	f := &frame{w: h.Columns, h: h.Rows, spp: h.SamplesPerPixel}
	if !p.encapsulated {
		need := h.frameBytes()
		if p.value.n < need {
			return nil, fail(CodePixelDataSize, "Pixel Data holds %d bytes, a %dx%d %d-bit frame needs %d", p.value.n, h.Rows, h.Columns, h.BitsAllocated, need)
		}
		// A big-endian OW is swapped in pairs: read the frame to an even length.
		n := min(need+need%2, p.value.n)
		raw := make([]byte, n)
		if _, err := l.src.ReadAt(raw, p.value.off); err != nil {
			return nil, fail(CodeUnreadable, "read pixel data: %v", err)
		}
		return nativeFrame(h, f, raw[:need], raw, l.syntax.big, p.vr)
	}
	data, err := frameData(h)
	if err != nil {
		return nil, err
	}
	want := h.frameBytes()
	if allowed := max(1<<20, lim.MaxCompressionRatio*int64(len(data))); want > allowed {
		return nil, fail(CodeDecompressedTooLong, "%d compressed bytes would decode to %d (limit %dx, or 1 MiB)", len(data), want, lim.MaxCompressionRatio)
	}
	if l.syntax.codec == codecRaw {
		if int64(len(data)) < want {
			return nil, fail(CodePixelDataSize, "frame fragment holds %d bytes, a %dx%d %d-bit frame needs %d", len(data), h.Rows, h.Columns, h.BitsAllocated, want)
		}
		return nativeFrame(h, f, data[:want], data, false, "OB")
	}
	dec, ok := codecs[l.syntax.codec]
	if !ok {
		return nil, fail(CodeUnsupportedSyntax, "transfer syntax %s is not supported", tsName(l.syntax.UID))
	}
	cf, err := dec(data, codec.Want{Width: h.Columns, Height: h.Rows, Components: h.SamplesPerPixel, Threads: codecThreads(lim),
		PhotometricRGB: h.Photometric == "RGB", MinSide: lim.ReducedMinSide}, h.BitsAllocated)
	if err != nil {
		if codec.IsMissing(err) {
			return nil, wrap(CodeCodecMissing, err)
		}
		return nil, wrap(CodeCodec, err)
	}
	if cf.Bits > h.BitsAllocated {
		return nil, fail(CodeCodec, "codec frame has %d-bit samples, the header allocates %d bits", cf.Bits, h.BitsAllocated)
	}
	if cf.Width != f.w || cf.Height != f.h {
		// Only a reduced JPEG 2000 decode may be smaller, never larger.
		if cf.Reduced == 0 || cf.Width > f.w || cf.Height > f.h || len(cf.Data16)+len(cf.Data8) < cf.Width*cf.Height*f.spp {
			return nil, fail(CodeCodec, "codec frame is %dx%d, the header says %dx%d", cf.Width, cf.Height, f.w, f.h)
		}
		f.w, f.h, f.reduced = cf.Width, cf.Height, cf.Reduced
	}
	f.u8, f.u16, f.rgb = cf.Data8, cf.Data16, cf.RGB
	return f, nil
}

// framesInFlight counts the frames being decoded in this process. A JPEG
// 2000 frame (the slowest codec, hundreds of milliseconds for a full-size
// film) decoded while nothing else is gets the idle cores, which cuts a
// single film's latency; when every core already decodes a film, it gets
// one thread, as extra threads would add only overhead.
var framesInFlight atomic.Int32

func codecThreads(lim Limits) int {
	if lim.CodecThreads > 0 {
		return lim.CodecThreads
	}
	return max(1, runtime.NumCPU()/max(1, int(framesInFlight.Load())))
}

// codecs decode the compressed syntaxes (tests swap them to simulate a
// missing library).
var codecs = map[codecKind]func(data []byte, want codec.Want, bitsAllocated int) (*codec.Frame, error){
	codecJPEG:   func(d []byte, w codec.Want, _ int) (*codec.Frame, error) { return codec.JPEG(d, w) },
	codecJPEGLS: func(d []byte, w codec.Want, _ int) (*codec.Frame, error) { return codec.JPEGLS(d, w) },
	codecJ2K:    func(d []byte, w codec.Want, _ int) (*codec.Frame, error) { return codec.J2K(d, w) },
	codecRLE:    codec.RLE,
}

// nativeFrame interprets uncompressed frame bytes. raw is the buffer the
// frame was read into (possibly one byte longer, for pair swapping).
func nativeFrame(h *Header, f *frame, b, raw []byte, big bool, vr string) (*frame, error) {
	f.shift = uint(h.HighBit + 1 - h.BitsStored)
	if h.BitsAllocated == 8 {
		if big && vr == "OW" {
			// Explicit big endian stores 8-bit samples in OW words, so each
			// byte pair is swapped relative to sample order.
			swapPairs(raw[:len(raw)&^1])
		}
		f.u8 = b
	} else {
		f.u16 = words(b, big)
	}
	if h.SamplesPerPixel == 3 {
		if h.Photometric == "YBR_FULL_422" || h.Photometric == "YBR_PARTIAL_422" {
			if h.Columns%2 != 0 {
				return nil, fail(CodeBadHeader, "%s with an odd number of columns (%d)", EchoCS(h.Photometric), h.Columns)
			}
			f.u8 = expand422(f.u8, h.Columns, h.Rows)
		} else if h.PlanarConfiguration == 1 {
			f.u8 = interleave(f.u8, h.Columns*h.Rows)
		}
	}
	return f, nil
}

// expand422 turns Y1 Y2 Cb Cr per pixel pair into Y Cb Cr per pixel.
func expand422(b []byte, w, h int) []byte {
	out := make([]byte, 3*w*h)
	i := 0
	for y := 0; y < h; y++ {
		for x := 0; x+1 < w; x += 2 {
			p := 3 * (y*w + x)
			out[p], out[p+1], out[p+2] = b[i], b[i+2], b[i+3]
			out[p+3], out[p+4], out[p+5] = b[i+1], b[i+2], b[i+3]
			i += 4
		}
	}
	return out
}

func interleave(b []byte, np int) []byte {
	out := make([]byte, 3*np)
	for k := 0; k < 3; k++ {
		for i := 0; i < np; i++ {
			out[3*i+k] = b[k*np+i]
		}
	}
	return out
}

// frameData returns the compressed bytes of the first frame of
// encapsulated pixel data: all fragments for a single frame; for several,
// the fragments before the basic offset table's second entry, else one
// fragment per frame, else the fragments up to the first end-of-codestream
// marker.
func frameData(h *Header) ([]byte, error) {
	l := h.layout
	p := l.pixel
	frags := p.frags
	if len(frags) == 0 {
		return nil, fail(CodeNoPixelData, "encapsulated Pixel Data has no fragments")
	}
	read := func(fs []span) ([]byte, error) {
		var n int64
		for _, f := range fs {
			n += f.n
		}
		out := make([]byte, n)
		o := int64(0)
		for _, f := range fs {
			if _, err := l.src.ReadAt(out[o:o+f.n], f.off); err != nil {
				return nil, fail(CodeUnreadable, "read fragment: %v", err)
			}
			o += f.n
		}
		return out, nil
	}
	if h.NumberOfFrames <= 1 {
		return read(frags)
	}
	if len(p.offsets) >= 8 {
		second := int64(binary.LittleEndian.Uint32(p.offsets[4:]))
		base := frags[0].off - 8
		k := 0
		for k < len(frags) && frags[k].off-8-base < second {
			k++
		}
		if k > 0 {
			return read(frags[:k])
		}
	}
	if len(frags) == h.NumberOfFrames || l.syntax.codec == codecRLE || l.syntax.codec == codecRaw {
		return read(frags[:1])
	}
	// JPEG, JPEG-LS and JPEG 2000 codestreams all end with FF D9.
	var out []byte
	for _, f := range frags {
		b, err := read([]span{f})
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		if bytes.HasSuffix(bytes.TrimRight(b, "\x00"), []byte{0xFF, 0xD9}) {
			break
		}
	}
	return out, nil
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
