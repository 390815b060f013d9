package codec

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include "jpeg8_cgo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// JPEG8 decodes an 8-bit JPEG (DICOM JPEG Baseline, process 1) with the
// system libjpeg-turbo, the same library PIL uses, so training images and
// films decode to the same pixels in the daemon as in the PyTorch reference.
func JPEG8(data []byte, maxPixels int64) (*Frame, error) {
	return jpeg8(data, maxPixels, false)
}

// jpeg8 is JPEG8 for a DICOM frame: dicomRGB says that its Photometric
// Interpretation is RGB, which decides the colour where the codestream
// does not (see jcolor.h).
func jpeg8(data []byte, maxPixels int64, dicomRGB bool) (*Frame, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("jpeg: empty frame")
	}
	var w, h, comps, prec C.int
	msg := (*C.char)(C.malloc(C.JMSG_LENGTH_MAX))
	defer C.free(unsafe.Pointer(msg))
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	if C.tjd_jpeg8(src, C.ulong(len(data)), nil, 0, cbool(dicomRGB), &w, &h, &comps, &prec, 1, msg) != 0 {
		return nil, fmt.Errorf("jpeg header: %s", C.GoString(msg))
	}
	if prec != 8 {
		return nil, fmt.Errorf("jpeg: %d-bit sample precision needs the 12/16-bit decoder", int(prec))
	}
	n := int64(w) * int64(h) * int64(comps)
	if w <= 0 || h <= 0 || int64(w)*int64(h) > maxPixels {
		return nil, fmt.Errorf("jpeg: %dx%d exceeds the pixel limit %d", int(w), int(h), maxPixels)
	}
	out := make([]byte, n)
	if C.tjd_jpeg8(src, C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&out[0])), C.ulong(n), cbool(dicomRGB), &w, &h, &comps, &prec, 0, msg) != 0 {
		return nil, fmt.Errorf("jpeg: %s", C.GoString(msg))
	}
	return &Frame{Width: int(w), Height: int(h), Components: int(comps), Bits: 8, Data8: out, RGB: comps == 3}, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
