// Package codec decodes compressed DICOM frames (and plain JPEG files) to
// samples, using well-kept C libraries through cgo where no pure-Go decoder
// is exact.
//
// libjpeg-turbo (8-bit JPEG, the library PIL uses) is linked: without it the
// daemon cannot score training-style images at all. The other codecs are
// loaded with dlopen the first time a film needs them, so the binary starts
// on a machine that lacks one and only films in that syntax fail, with a
// MissingError naming the Debian package to install.
package codec

import (
	"errors"
	"fmt"
)

// Frame is one decoded frame: interleaved samples, 8-bit in Data8 or up to
// 16-bit in Data16.
type Frame struct {
	Width, Height, Components int
	// Bits is the sample precision the codec reports (8, 12, 16, ...).
	Bits   int
	Data8  []byte
	Data16 []uint16
	// RGB is true when the codec has already converted color samples to
	// R, G, B (baseline JPEG's YCbCr); false means the samples are as stored
	// and the DICOM Photometric Interpretation says what they are.
	RGB bool
	// Signed is true when the codec reported signed samples; Data16 then
	// holds their two's complement bit patterns.
	Signed bool
	// Reduced is the number of resolution levels a JPEG 2000 decode left
	// out (Want.MinSide): Width and Height are then about 1/2^Reduced of
	// the stored image's. 0: full size.
	Reduced int
}

// Want is what the DICOM header says the frame must be. A codec checks its
// own header against it before allocating anything, so a codestream cannot
// make it allocate more than the DICOM header (already checked against the
// limits) allows.
type Want struct {
	Width, Height, Components int
	// Threads a codec may use for this frame (JPEG 2000 only; 0 or 1: one).
	// The samples do not depend on it.
	Threads int
	// PhotometricRGB: the DICOM Photometric Interpretation is RGB. It
	// decides whether a 3-component DCT JPEG whose codestream says nothing
	// of its colour (no JFIF or Adobe marker, component IDs neither 1,2,3
	// nor 'R','G','B') holds RGB or YCbCr.
	PhotometricRGB bool
	// MinSide, if positive, lets a JPEG 2000 decode stop at the deepest
	// wavelet resolution level whose shorter side is still at least
	// MinSide pixels (Frame.Reduced says which); 0 decodes the full image.
	// Other codecs ignore it.
	MinSide int
}

func (w Want) check(name string, width, height, comps int) error {
	if width != w.Width || height != w.Height {
		return fmt.Errorf("%s: codestream is %dx%d, the DICOM header says %dx%d", name, width, height, w.Width, w.Height)
	}
	if comps != w.Components {
		return fmt.Errorf("%s: codestream has %d components, the DICOM header says %d samples per pixel", name, comps, w.Components)
	}
	return nil
}

// MissingError says that the shared library a codec needs is not installed.
type MissingError struct {
	Codec   string // what the library decodes
	Library string // the soname dlopen looked for
	Package string // the Debian package that ships it
	Err     error
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s needs %s, which is not installed (Debian package %s: apt-get install %s): %v", e.Codec, e.Library, e.Package, e.Package, e.Err)
}

func (e *MissingError) Unwrap() error { return e.Err }

// IsMissing reports whether err is (or wraps) a MissingError.
func IsMissing(err error) bool {
	var m *MissingError
	return errors.As(err, &m)
}
