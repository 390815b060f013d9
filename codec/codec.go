// Package codec decodes compressed DICOM frames (and plain JPEG files) to
// samples, using well-kept C libraries through cgo where no pure-Go decoder
// is exact.
package codec

// Frame is one decoded frame: interleaved samples, 8-bit in Data8 or up to
// 16-bit in Data16.
type Frame struct {
	Width, Height, Components int
	// Bits is the sample precision the codec reports (8, 12, 16, ...).
	Bits   int
	Data8  []byte
	Data16 []uint16
}
