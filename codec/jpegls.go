package codec

/*
#include <stdlib.h>
#include "jpegls_cgo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// JPEGLS decodes a JPEG-LS frame (lossless or near-lossless) with CharLS.
func JPEGLS(data []byte, want Want) (*Frame, error) {
	sof, err := ReadSOF(data)
	if err != nil {
		return nil, fmt.Errorf("jpeg-ls: %w", err)
	}
	if sof.Marker != 0xF7 {
		return nil, fmt.Errorf("jpeg-ls: frame header FF%02X is not JPEG-LS (SOF55)", sof.Marker)
	}
	if err := want.check("jpeg-ls", sof.Width, sof.Height, sof.Comps); err != nil {
		return nil, err
	}
	if sof.Precision < 2 || sof.Precision > 16 {
		return nil, fmt.Errorf("jpeg-ls: %d-bit samples", sof.Precision)
	}
	if err := libCharLS.open(); err != nil {
		return nil, err
	}
	n := want.Width * want.Height * want.Components
	f := &Frame{Width: want.Width, Height: want.Height, Components: want.Components, Bits: sof.Precision}
	var out unsafe.Pointer
	size := n
	if sof.Precision <= 8 {
		f.Data8 = make([]byte, n)
		out = unsafe.Pointer(&f.Data8[0])
	} else {
		f.Data16 = make([]uint16, n)
		out = unsafe.Pointer(&f.Data16[0])
		size = 2 * n
	}
	msg := (*C.char)(C.calloc(1, 256))
	defer C.free(unsafe.Pointer(msg))
	var bits, planar C.int
	if C.tc_jls_decode(unsafe.Pointer(&data[0]), C.size_t(len(data)), out, C.size_t(size),
		C.int(want.Width), C.int(want.Height), C.int(want.Components), &bits, &planar, msg, 256) != 0 {
		return nil, fmt.Errorf("jpeg-ls: %s", C.GoString(msg))
	}
	if planar != 0 {
		f.interleave()
	}
	return f, nil
}

// interleave turns planar samples (all of R, then G, then B) into pixel
// order.
func (f *Frame) interleave() {
	np, c := f.Width*f.Height, f.Components
	if f.Data8 != nil {
		out := make([]byte, len(f.Data8))
		for k := 0; k < c; k++ {
			for i := 0; i < np; i++ {
				out[i*c+k] = f.Data8[k*np+i]
			}
		}
		f.Data8 = out
		return
	}
	out := make([]uint16, len(f.Data16))
	for k := 0; k < c; k++ {
		for i := 0; i < np; i++ {
			out[i*c+k] = f.Data16[k*np+i]
		}
	}
	f.Data16 = out
}
