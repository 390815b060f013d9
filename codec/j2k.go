package codec

/*
#cgo CFLAGS: -I/usr/include/openjpeg-2.5
#include <stdlib.h>
#include "j2k_cgo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// J2K decodes a JPEG 2000 frame (lossless or lossy; a bare codestream, or
// a JP2 file as some writers wrongly store) with OpenJPEG. Its main header
// is checked in Go first (see ReadJ2K). Samples come out as 16-bit words,
// clamped to the component's range; the inverse multi-component transform,
// if the codestream uses one, is applied, so such color comes out as RGB.
func J2K(data []byte, want Want) (*Frame, error) {
	info, err := ReadJ2K(data)
	if err != nil {
		return nil, fmt.Errorf("jpeg 2000: %w", err)
	}
	if err := want.check("jpeg 2000", info.Width, info.Height, info.Comps); err != nil {
		return nil, err
	}
	if err := libOpenJPEG.open(); err != nil {
		return nil, err
	}
	n := want.Width * want.Height * want.Components
	f := &Frame{Width: want.Width, Height: want.Height, Components: want.Components, Data16: make([]uint16, n)}
	msg := (*C.char)(C.calloc(1, 256))
	defer C.free(unsafe.Pointer(msg))
	var prec, sgnd C.int
	jp2 := C.int(0)
	if info.JP2 {
		jp2 = 1
	}
	if C.tc_opj_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.size_t(len(data)), jp2,
		(*C.ushort)(unsafe.Pointer(&f.Data16[0])), C.size_t(n),
		C.int(want.Width), C.int(want.Height), C.int(want.Components), C.int(want.Threads), &prec, &sgnd, msg, 256) != 0 {
		return nil, fmt.Errorf("jpeg 2000: %s", C.GoString(msg))
	}
	f.Bits = int(prec)
	f.Signed = sgnd != 0
	f.RGB = want.Components == 3 && info.MCT // OpenJPEG undid the transform
	return f, nil
}
