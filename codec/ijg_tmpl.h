// IJG libjpeg 6b with the lossless patch, as bundled (symbol-mangled) in
// GDCM's libgdcmjpeg{8,12,16}. This file is the body of ijg8.c, ijg12.c and
// ijg16.c: each includes its own jpeglib.h (whose JSAMPLE is 8, 12 or 16
// bits wide) and then this file, with IJG_BITS, IJG_NAME and IJG_PREFIX
// defined. The library is opened with dlopen; libjpeg's longjmp-based error
// handling never leaves this file, so it never crosses a Go stack frame.
#include <dlfcn.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include "ijg_cgo.h"
#include "jcolor.h"

static struct {
	__typeof__(jpeg_std_error) *std_error;
	__typeof__(jpeg_CreateDecompress) *create;
	__typeof__(jpeg_destroy_decompress) *destroy;
	__typeof__(jpeg_read_header) *read_header;
	__typeof__(jpeg_start_decompress) *start;
	__typeof__(jpeg_read_scanlines) *read_scanlines;
	__typeof__(jpeg_finish_decompress) *finish;
	__typeof__(jpeg_resync_to_restart) *resync;
} F;

int IJG_NAME(load)(const char *soname, char *msg, int msglen) {
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(msg, msglen, "%s", dlerror());
		return -1;
	}
#define IJG_SYM(field, sym)                                                              \
	if (!(*(void **)&F.field = dlsym(h, IJG_PREFIX #sym))) {                         \
		snprintf(msg, msglen, "%s lacks %s", soname, IJG_PREFIX #sym);        \
		return -1;                                                                 \
	}
	IJG_SYM(std_error, jpeg_std_error)
	IJG_SYM(create, jpeg_CreateDecompress)
	IJG_SYM(destroy, jpeg_destroy_decompress)
	IJG_SYM(read_header, jpeg_read_header)
	IJG_SYM(start, jpeg_start_decompress)
	IJG_SYM(read_scanlines, jpeg_read_scanlines)
	IJG_SYM(finish, jpeg_finish_decompress)
	IJG_SYM(resync, jpeg_resync_to_restart)
#undef IJG_SYM
	return 0;
}

struct ijg_err {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char *msg;
	int msglen;
};

struct ijg_src {
	struct jpeg_source_mgr pub;
	int eof; // the decoder asked for bytes past the end of the data
};

static void ijg_on_error(j_common_ptr c) {
	struct ijg_err *e = (struct ijg_err *)c->err;
	char buf[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, buf);
	snprintf(e->msg, e->msglen, "%s", buf);
	longjmp(e->jb, 1);
}

static void ijg_on_message(j_common_ptr c, int level) { (void)c; (void)level; }

static void ijg_init_source(j_decompress_ptr d) { (void)d; }

// The whole codestream is in memory: running out means it is truncated.
// Feed an EOI so libjpeg stops cleanly, and remember it.
static boolean ijg_fill(j_decompress_ptr d) {
	static const JOCTET eoi[2] = {0xFF, JPEG_EOI};
	struct ijg_src *s = (struct ijg_src *)d->src;
	s->eof = 1;
	s->pub.next_input_byte = eoi;
	s->pub.bytes_in_buffer = 2;
	return TRUE;
}

static void ijg_skip(j_decompress_ptr d, long n) {
	struct ijg_src *s = (struct ijg_src *)d->src;
	if (n <= 0) return;
	if ((size_t)n > s->pub.bytes_in_buffer) {
		ijg_fill(d);
		return;
	}
	s->pub.next_input_byte += n;
	s->pub.bytes_in_buffer -= (size_t)n;
}

static void ijg_term(j_decompress_ptr d) { (void)d; }

// decode: header checks against what the DICOM header wants, then the
// samples, interleaved, into out (outcap samples of JSAMPLE). Lossless
// frames are not color converted: their samples are what was stored.
int IJG_NAME(decode)(const unsigned char *src, unsigned long n, void *outv, unsigned long outcap,
                     int want_w, int want_h, int want_c, int dicom_rgb, int *precision, int *lossless, int *rgb,
                     char *msg, int msglen) {
	JSAMPLE *out = outv;
	struct jpeg_decompress_struct d;
	struct ijg_err e;
	struct ijg_src s;
	memset(&d, 0, sizeof d);
	memset(&s, 0, sizeof s);
	d.err = F.std_error(&e.pub);
	e.pub.error_exit = ijg_on_error;
	e.pub.emit_message = ijg_on_message;
	e.msg = msg;
	e.msglen = msglen;
	msg[0] = 0;
	if (setjmp(e.jb)) {
		F.destroy(&d);
		return -1;
	}
	F.create(&d, JPEG_LIB_VERSION, sizeof d);
	s.pub.init_source = ijg_init_source;
	s.pub.fill_input_buffer = ijg_fill;
	s.pub.skip_input_data = ijg_skip;
	s.pub.resync_to_restart = F.resync;
	s.pub.term_source = ijg_term;
	s.pub.next_input_byte = src;
	s.pub.bytes_in_buffer = n;
	d.src = &s.pub;
	F.read_header(&d, TRUE);
	*precision = d.data_precision;
	*lossless = d.process == JPROC_LOSSLESS;
	if ((int)d.image_width != want_w || (int)d.image_height != want_h || d.num_components != want_c) {
		snprintf(msg, msglen, "codestream is %ux%u with %d components, the DICOM header says %dx%d with %d",
		         d.image_width, d.image_height, d.num_components, want_w, want_h, want_c);
		F.destroy(&d);
		return -1;
	}
	if (d.data_precision > IJG_BITS) {
		snprintf(msg, msglen, "%d-bit samples in a %d-bit decoder", d.data_precision, IJG_BITS);
		F.destroy(&d);
		return -1;
	}
	*rgb = 0;
	if (d.num_components == 1) {
		d.out_color_space = JCS_GRAYSCALE;
	} else if (*lossless) {
		d.out_color_space = d.jpeg_color_space;
	} else {
		TC_JPEG_COLOR(d, dicom_rgb);
		d.out_color_space = JCS_RGB;
		*rgb = 1;
	}
	F.start(&d);
	unsigned long stride = (unsigned long)d.output_width * d.output_components;
	if ((int)d.output_width != want_w || (int)d.output_height != want_h || d.output_components != want_c ||
	    stride * d.output_height > outcap) {
		snprintf(msg, msglen, "output %ux%ux%d does not fit the frame", d.output_width, d.output_height, d.output_components);
		F.destroy(&d);
		return -1;
	}
	while (d.output_scanline < d.output_height) {
		JSAMPROW row = out + stride * d.output_scanline;
		if (F.read_scanlines(&d, &row, 1) != 1) {
			snprintf(msg, msglen, "decoder stopped at line %u of %u", d.output_scanline, d.output_height);
			F.destroy(&d);
			return -1;
		}
		if (s.eof) {
			snprintf(msg, msglen, "JPEG data ends at line %u of %u (truncated fragment?)", d.output_scanline, d.output_height);
			F.destroy(&d);
			return -1;
		}
	}
	F.finish(&d);
	F.destroy(&d);
	return 0;
}
