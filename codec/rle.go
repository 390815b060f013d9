package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RLE decodes a DICOM RLE Lossless frame (PS3.5 Annex G): a 64-byte header
// of up to 15 segment offsets, one PackBits segment per byte plane, most
// significant byte first, each component in turn. Pure Go: the format is
// small and a C library would add nothing but attack surface.
func RLE(data []byte, want Want, bitsAllocated int) (*Frame, error) {
	if bitsAllocated != 8 && bitsAllocated != 16 {
		return nil, fmt.Errorf("rle: %d bits allocated (supported: 8, 16)", bitsAllocated)
	}
	bps := bitsAllocated / 8
	nseg := want.Components * bps
	if len(data) < 64 {
		return nil, errors.New("rle: frame shorter than its 64-byte header")
	}
	if got := int(binary.LittleEndian.Uint32(data)); got != nseg {
		return nil, fmt.Errorf("rle: header lists %d segments, %d samples of %d bits need %d", got, want.Components, bitsAllocated, nseg)
	}
	np := want.Width * want.Height
	if np <= 0 {
		return nil, errors.New("rle: empty frame")
	}
	offs := make([]int, nseg+1)
	for i := 0; i < nseg; i++ {
		o := binary.LittleEndian.Uint32(data[4+4*i:])
		if o < 64 || uint64(o) > uint64(len(data)) || (i > 0 && int(o) < offs[i-1]) {
			return nil, fmt.Errorf("rle: segment %d offset %d is out of order or outside the frame", i+1, o)
		}
		offs[i] = int(o)
	}
	offs[nseg] = len(data)
	plane := make([]byte, np)
	f := &Frame{Width: want.Width, Height: want.Height, Components: want.Components, Bits: bitsAllocated}
	if bps == 1 {
		f.Data8 = make([]byte, np*want.Components)
	} else {
		f.Data16 = make([]uint16, np*want.Components)
	}
	for s := 0; s < nseg; s++ {
		if err := packBits(data[offs[s]:offs[s+1]], plane); err != nil {
			return nil, fmt.Errorf("rle: segment %d: %w", s+1, err)
		}
		comp, byteIdx := s/bps, s%bps
		c := want.Components
		if bps == 1 {
			for i, v := range plane {
				f.Data8[i*c+comp] = v
			}
			continue
		}
		shift := uint(8 * (bps - 1 - byteIdx)) // most significant byte first
		for i, v := range plane {
			f.Data16[i*c+comp] |= uint16(v) << shift
		}
	}
	return f, nil
}

// packBits fills out from a PackBits segment. Encoders may pad a segment
// past the plane's end; running short is an error.
func packBits(in, out []byte) error {
	o := 0
	for i := 0; i < len(in) && o < len(out); {
		n := int(int8(in[i]))
		i++
		switch {
		case n >= 0:
			k := n + 1
			if i+k > len(in) {
				return errors.New("literal run past the end of the segment")
			}
			o += copy(out[o:], in[i:i+k])
			i += k
		case n != -128:
			if i >= len(in) {
				return errors.New("repeat run past the end of the segment")
			}
			k := 1 - n
			v := in[i]
			i++
			for e := min(o+k, len(out)); o < e; o++ {
				out[o] = v
			}
		}
	}
	if o < len(out) {
		return fmt.Errorf("decodes to %d bytes, the frame needs %d", o, len(out))
	}
	return nil
}
