package codec

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "dl_cgo.h"
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

// library is a codec library opened with dlopen on first use.
type library struct {
	codec, soname, pkg string
	load               func(*C.char, *C.char, C.int) C.int
	once               sync.Once
	err                error
}

func (l *library) open() error {
	l.once.Do(func() {
		msg := (*C.char)(C.calloc(1, 512))
		defer C.free(unsafe.Pointer(msg))
		name := C.CString(l.soname)
		defer C.free(unsafe.Pointer(name))
		if l.load(name, msg, 512) != 0 {
			l.err = &MissingError{Codec: l.codec, Library: l.soname, Package: l.pkg, Err: errors.New(C.GoString(msg))}
		}
	})
	return l.err
}

// The libraries, with the Debian (bookworm) package that ships each.
var (
	libOpenJPEG = &library{codec: "JPEG 2000", soname: "libopenjp2.so.7", pkg: "libopenjp2-7",
		load: func(s, m *C.char, n C.int) C.int { return C.tc_opj_load(s, m, n) }}
	libCharLS = &library{codec: "JPEG-LS", soname: "libcharls.so.2", pkg: "libcharls2",
		load: func(s, m *C.char, n C.int) C.int { return C.tc_jls_load(s, m, n) }}
	libIJG8 = &library{codec: "JPEG lossless (8-bit)", soname: "libgdcmjpeg8.so.3.0", pkg: "libgdcm3.0",
		load: func(s, m *C.char, n C.int) C.int { return C.tc_ijg8_load(s, m, n) }}
	libIJG12 = &library{codec: "JPEG 12-bit (extended and lossless)", soname: "libgdcmjpeg12.so.3.0", pkg: "libgdcm3.0",
		load: func(s, m *C.char, n C.int) C.int { return C.tc_ijg12_load(s, m, n) }}
	libIJG16 = &library{codec: "JPEG lossless (13 to 16-bit)", soname: "libgdcmjpeg16.so.3.0", pkg: "libgdcm3.0",
		load: func(s, m *C.char, n C.int) C.int { return C.tc_ijg16_load(s, m, n) }}
)

// Library is the state of one run-time codec library, for diagnostics.
type Library struct {
	Codec, Soname, Package string
	Err                    error // nil when it loaded
}

// Libraries tries to load every run-time codec library and reports each.
func Libraries() []Library {
	var out []Library
	for _, l := range []*library{libOpenJPEG, libCharLS, libIJG8, libIJG12, libIJG16} {
		out = append(out, Library{Codec: l.codec, Soname: l.soname, Package: l.pkg, Err: l.open()})
	}
	return out
}
