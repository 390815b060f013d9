package heatmap

import (
	"encoding/binary"
	"fmt"
	"math"
)

// RawContentType is the media type of a raw map.
const RawContentType = "application/x-npy"

// Raw encodes a map as a NumPy .npy file: little-endian float32, shape
// (224, 224), row major, in crop coordinates (row 0 is the top of the
// model's crop). numpy.load reads it; the attachment's crop window says
// where it lies in the film, and its unit what the values are. Unlike the
// overlay it is not rescaled: CAM values are the 0-1 relative activation,
// occlusion values the drop in P(COVID-19), negative where occluding raised it.
func Raw(m *Map) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", Side, Side)
	// Version 1.0: magic, version, header length; header padded with spaces
	// and a newline so the data starts on a 64-byte boundary.
	pre := 10
	pad := 64 - (pre+len(hdr)+1)%64
	if pad == 64 {
		pad = 0
	}
	for range pad {
		hdr += " "
	}
	hdr += "\n"
	b := make([]byte, 0, pre+len(hdr)+4*len(m.V))
	b = append(b, "\x93NUMPY\x01\x00"...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	for _, v := range m.V {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}
