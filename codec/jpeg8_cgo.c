// libjpeg(-turbo) 8-bit decoding for triaged. Kept in C so that libjpeg's
// longjmp-based error handling never crosses a Go stack frame.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>
#include "jpeg8_cgo.h"
#include "jcolor.h"

struct errmgr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char *msg;
	int msglen;
	int eof; // the data ran out: jpeg_mem_src fed a fake EOI
};

static void on_error(j_common_ptr c) {
	struct errmgr *e = (struct errmgr *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

static void on_message(j_common_ptr c) { (void)c; } // warnings are not errors here

// A truncated codestream is only a warning to libjpeg (it pads the image
// with gray); here, as in PIL, it is an error.
static void on_emit(j_common_ptr c, int level) {
	struct errmgr *e = (struct errmgr *)c->err;
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->eof = 1;
}

int tjd_jpeg8(const unsigned char *src, unsigned long n, unsigned char *out, unsigned long outcap,
              int dicom_rgb, int *w, int *h, int *comps, int *precision, int header_only, char *msg) {
	struct jpeg_decompress_struct d;
	struct errmgr e;
	memset(&d, 0, sizeof d);
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = on_error;
	e.pub.output_message = on_message;
	e.pub.emit_message = on_emit;
	e.eof = 0;
	e.msg = msg;
	msg[0] = 0;
	if (setjmp(e.jb)) {
		jpeg_destroy_decompress(&d);
		return -1;
	}
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, (unsigned char *)src, n);
	jpeg_read_header(&d, TRUE);
	*precision = d.data_precision;
	*comps = d.num_components;
	// A gray film stays gray; anything else comes out as RGB (libjpeg's
	// YCbCr->RGB where the samples are YCbCr), the same as PIL would give.
	TC_JPEG_COLOR(d, dicom_rgb);
	d.out_color_space = d.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_calc_output_dimensions(&d);
	*w = d.output_width;
	*h = d.output_height;
	*comps = d.output_components;
	if (header_only) {
		jpeg_destroy_decompress(&d);
		return 0;
	}
	unsigned long stride = (unsigned long)d.output_width * d.output_components;
	if (stride * d.output_height > outcap) {
		snprintf(msg, JMSG_LENGTH_MAX, "output buffer too small");
		jpeg_destroy_decompress(&d);
		return -1;
	}
	jpeg_start_decompress(&d);
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out + stride * d.output_scanline;
		jpeg_read_scanlines(&d, &row, 1);
		if (e.eof) {
			snprintf(msg, JMSG_LENGTH_MAX, "JPEG data ends at line %u of %u (truncated)", d.output_scanline, d.output_height);
			jpeg_destroy_decompress(&d);
			return -1;
		}
	}
	jpeg_finish_decompress(&d);
	jpeg_destroy_decompress(&d);
	return 0;
}
