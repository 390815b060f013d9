// JPEG-LS through CharLS 2 (libcharls.so.2), opened with dlopen.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <charls/charls.h>
#include "jpegls_cgo.h"

static struct {
	__typeof__(charls_jpegls_decoder_create) *create;
	__typeof__(charls_jpegls_decoder_destroy) *destroy;
	__typeof__(charls_jpegls_decoder_set_source_buffer) *set_source;
	__typeof__(charls_jpegls_decoder_read_header) *read_header;
	__typeof__(charls_jpegls_decoder_get_frame_info) *frame_info;
	__typeof__(charls_jpegls_decoder_get_destination_size) *dest_size;
	__typeof__(charls_jpegls_decoder_get_interleave_mode) *interleave;
	__typeof__(charls_jpegls_decoder_decode_to_buffer) *decode;
	__typeof__(charls_get_error_message) *error_message;
} F;

int tc_jls_load(const char *soname, char *msg, int msglen) {
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(msg, msglen, "%s", dlerror());
		return -1;
	}
#define JLS_SYM(field, sym)                                                   \
	if (!(*(void **)&F.field = dlsym(h, #sym))) {                          \
		snprintf(msg, msglen, "%s lacks %s", soname, #sym);          \
		return -1;                                                       \
	}
	JLS_SYM(create, charls_jpegls_decoder_create)
	JLS_SYM(destroy, charls_jpegls_decoder_destroy)
	JLS_SYM(set_source, charls_jpegls_decoder_set_source_buffer)
	JLS_SYM(read_header, charls_jpegls_decoder_read_header)
	JLS_SYM(frame_info, charls_jpegls_decoder_get_frame_info)
	JLS_SYM(dest_size, charls_jpegls_decoder_get_destination_size)
	JLS_SYM(interleave, charls_jpegls_decoder_get_interleave_mode)
	JLS_SYM(decode, charls_jpegls_decoder_decode_to_buffer)
	JLS_SYM(error_message, charls_get_error_message)
#undef JLS_SYM
	return 0;
}

static int jls_fail(charls_jpegls_decoder *d, charls_jpegls_errc rc, const char *what, char *msg, int msglen) {
	snprintf(msg, msglen, "%s: %s", what, F.error_message(rc));
	F.destroy(d);
	return -1;
}

int tc_jls_decode(const void *src, size_t n, void *out, size_t outcap, int want_w, int want_h, int want_c,
                  int *bits, int *planar, char *msg, int msglen) {
	msg[0] = 0;
	charls_jpegls_decoder *d = F.create();
	if (!d) {
		snprintf(msg, msglen, "cannot create a JPEG-LS decoder");
		return -1;
	}
	charls_jpegls_errc rc = F.set_source(d, src, n);
	if (rc) return jls_fail(d, rc, "source", msg, msglen);
	rc = F.read_header(d);
	if (rc) return jls_fail(d, rc, "header", msg, msglen);
	charls_frame_info fi;
	rc = F.frame_info(d, &fi);
	if (rc) return jls_fail(d, rc, "frame info", msg, msglen);
	*bits = fi.bits_per_sample;
	if ((int)fi.width != want_w || (int)fi.height != want_h || fi.component_count != want_c) {
		snprintf(msg, msglen, "codestream is %ux%u with %d components, the DICOM header says %dx%d with %d",
		         fi.width, fi.height, fi.component_count, want_w, want_h, want_c);
		F.destroy(d);
		return -1;
	}
	size_t need = 0;
	rc = F.dest_size(d, 0, &need);
	if (rc) return jls_fail(d, rc, "destination size", msg, msglen);
	if (need != outcap) {
		snprintf(msg, msglen, "decoded frame needs %zu bytes, expected %zu", need, outcap);
		F.destroy(d);
		return -1;
	}
	charls_interleave_mode im;
	rc = F.interleave(d, &im);
	if (rc) return jls_fail(d, rc, "interleave mode", msg, msglen);
	*planar = im == CHARLS_INTERLEAVE_MODE_NONE && want_c > 1;
	rc = F.decode(d, out, outcap, 0);
	if (rc) return jls_fail(d, rc, "decode", msg, msglen);
	F.destroy(d);
	return 0;
}
