package codec

/*
#include <stdlib.h>
#include "ijg_cgo.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ijg decodes what libjpeg-turbo 2.1 cannot: lossless JPEG (process 14, any
// predictor) and 12-bit DCT, through the IJG 6b + lossless patch libraries
// GDCM bundles, one per sample width. The decoder is picked by the
// codestream's own precision.
func ijg(data []byte, sof SOF, want Want) (*Frame, error) {
	if sof.Arithmetic() {
		return nil, fmt.Errorf("jpeg: arithmetic-coded %d-bit JPEG is not supported", sof.Precision)
	}
	if sof.Precision < 2 || sof.Precision > 16 || (!sof.Lossless() && sof.Precision != 12) {
		return nil, fmt.Errorf("jpeg: %d-bit samples are not valid for this JPEG process", sof.Precision)
	}
	lib, bits := libIJG16, 16
	switch {
	case sof.Precision <= 8:
		lib, bits = libIJG8, 8
	case sof.Precision <= 12:
		lib, bits = libIJG12, 12
	}
	if err := lib.open(); err != nil {
		return nil, err
	}
	n := want.Width * want.Height * want.Components
	if n <= 0 {
		return nil, errors.New("jpeg: empty frame")
	}
	f := &Frame{Width: want.Width, Height: want.Height, Components: want.Components, Bits: sof.Precision}
	var out unsafe.Pointer
	if bits == 8 {
		f.Data8 = make([]byte, n)
		out = unsafe.Pointer(&f.Data8[0])
	} else {
		f.Data16 = make([]uint16, n)
		out = unsafe.Pointer(&f.Data16[0])
	}
	msg := (*C.char)(C.calloc(1, 256))
	defer C.free(unsafe.Pointer(msg))
	var prec, lossless, rgb C.int
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	sn, on := C.ulong(len(data)), C.ulong(n)
	w, h, c := C.int(want.Width), C.int(want.Height), C.int(want.Components)
	var rc C.int
	switch bits {
	case 8:
		rc = C.tc_ijg8_decode(src, sn, out, on, w, h, c, cbool(want.PhotometricRGB), &prec, &lossless, &rgb, msg, 256)
	case 12:
		rc = C.tc_ijg12_decode(src, sn, out, on, w, h, c, cbool(want.PhotometricRGB), &prec, &lossless, &rgb, msg, 256)
	default:
		rc = C.tc_ijg16_decode(src, sn, out, on, w, h, c, cbool(want.PhotometricRGB), &prec, &lossless, &rgb, msg, 256)
	}
	if rc != 0 {
		return nil, fmt.Errorf("jpeg (%d-bit %s): %s", sof.Precision, processName(sof), C.GoString(msg))
	}
	f.RGB = rgb != 0
	return f, nil
}

func processName(s SOF) string {
	switch {
	case s.Lossless():
		return "lossless"
	case s.Marker == 0xC2 || s.Marker == 0xCA:
		return "progressive"
	case s.Marker == 0xC0:
		return "baseline"
	default:
		return "extended"
	}
}

// JPEG decodes a DICOM JPEG frame (baseline, extended, progressive or
// lossless), choosing the decoder from the codestream's frame header: 8-bit
// DCT through libjpeg-turbo (as PIL decodes the training images), lossless
// and 12-bit through IJG.
func JPEG(data []byte, want Want) (*Frame, error) {
	sof, err := ReadSOF(data)
	if err != nil {
		return nil, fmt.Errorf("jpeg: %w", err)
	}
	if sof.Marker == 0xF7 {
		return JPEGLS(data, want)
	}
	if err := want.check("jpeg", sof.Width, sof.Height, sof.Comps); err != nil {
		return nil, err
	}
	if sof.Hierarchical() {
		return nil, errors.New("jpeg: hierarchical JPEG is not supported")
	}
	if !sof.Lossless() && sof.Precision == 8 {
		return jpeg8(data, int64(want.Width)*int64(want.Height), want.PhotometricRGB)
	}
	return ijg(data, sof, want)
}
