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
// With want.MinSide it decodes a lower resolution level (Frame.Reduced).
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
	r := ReduceLevel(info, want.MinSide)
	f, err := j2kDecode(data, info, want, r)
	if err != nil && r > 0 {
		// A tile's own COD or COC may have fewer levels than the main
		// header's: such a film decodes at full size instead.
		f, err = j2kDecode(data, info, want, 0)
	}
	return f, err
}

// ReduceLevel is the deepest resolution level a decode of this codestream
// may stop at with the image's shorter side still at least minSide pixels
// (0: full size, or minSide <= 0).
func ReduceLevel(info J2KInfo, minSide int) int {
	if minSide <= 0 {
		return 0
	}
	r := 0
	for r < info.MinLevels {
		w, h := reducedSize(info, r+1)
		if min(w, h) < minSide {
			break
		}
		r++
	}
	return r
}

// reducedSize is the image size at r levels below full resolution, as
// OpenJPEG computes it: ceil(x1 / 2^r) - ceil(x0 / 2^r) on each axis.
func reducedSize(info J2KInfo, r int) (w, h int) {
	c := func(v uint32) int64 { return (int64(v) + 1<<r - 1) >> r }
	return int(c(info.Xsiz) - c(info.XOsiz)), int(c(info.Ysiz) - c(info.YOsiz))
}

func j2kDecode(data []byte, info J2KInfo, want Want, r int) (*Frame, error) {
	ow, oh := reducedSize(info, r)
	n := ow * oh * want.Components
	f := &Frame{Width: ow, Height: oh, Components: want.Components, Data16: make([]uint16, n), Reduced: r}
	msg := (*C.char)(C.calloc(1, 256))
	defer C.free(unsafe.Pointer(msg))
	var prec, sgnd C.int
	jp2 := C.int(0)
	if info.JP2 {
		jp2 = 1
	}
	if C.tc_opj_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.size_t(len(data)), jp2,
		(*C.ushort)(unsafe.Pointer(&f.Data16[0])), C.size_t(n),
		C.int(want.Width), C.int(want.Height), C.int(want.Components), C.int(r), C.int(ow), C.int(oh),
		C.int(want.Threads), &prec, &sgnd, msg, 256) != 0 {
		return nil, fmt.Errorf("jpeg 2000: %s", C.GoString(msg))
	}
	f.Bits = int(prec)
	f.Signed = sgnd != 0
	f.RGB = want.Components == 3 && info.MCT // OpenJPEG undid the transform
	return f, nil
}
