// JPEG 2000 through OpenJPEG 2 (libopenjp2.so.7), opened with dlopen.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <openjpeg.h>
#include "j2k_cgo.h"

static struct {
	__typeof__(opj_create_decompress) *create;
	__typeof__(opj_set_default_decoder_parameters) *defaults;
	__typeof__(opj_setup_decoder) *setup;
	__typeof__(opj_set_error_handler) *on_error;
	__typeof__(opj_set_warning_handler) *on_warning;
	__typeof__(opj_set_info_handler) *on_info;
	__typeof__(opj_stream_create) *stream_create;
	__typeof__(opj_stream_set_read_function) *set_read;
	__typeof__(opj_stream_set_skip_function) *set_skip;
	__typeof__(opj_stream_set_seek_function) *set_seek;
	__typeof__(opj_stream_set_user_data) *set_user_data;
	__typeof__(opj_stream_set_user_data_length) *set_length;
	__typeof__(opj_read_header) *read_header;
	__typeof__(opj_decode) *decode;
	__typeof__(opj_end_decompress) *end;
	__typeof__(opj_image_destroy) *image_destroy;
	__typeof__(opj_stream_destroy) *stream_destroy;
	__typeof__(opj_destroy_codec) *destroy;
	// Optional (OpenJPEG >= 2.3): decode code-blocks on several threads.
	__typeof__(opj_codec_set_threads) *set_threads;
} F;

int tc_opj_load(const char *soname, char *msg, int msglen) {
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(msg, msglen, "%s", dlerror());
		return -1;
	}
#define OPJ_SYM(field, sym)                                                   \
	if (!(*(void **)&F.field = dlsym(h, #sym))) {                          \
		snprintf(msg, msglen, "%s lacks %s", soname, #sym);         \
		return -1;                                                       \
	}
	OPJ_SYM(create, opj_create_decompress)
	OPJ_SYM(defaults, opj_set_default_decoder_parameters)
	OPJ_SYM(setup, opj_setup_decoder)
	OPJ_SYM(on_error, opj_set_error_handler)
	OPJ_SYM(on_warning, opj_set_warning_handler)
	OPJ_SYM(on_info, opj_set_info_handler)
	OPJ_SYM(stream_create, opj_stream_create)
	OPJ_SYM(set_read, opj_stream_set_read_function)
	OPJ_SYM(set_skip, opj_stream_set_skip_function)
	OPJ_SYM(set_seek, opj_stream_set_seek_function)
	OPJ_SYM(set_user_data, opj_stream_set_user_data)
	OPJ_SYM(set_length, opj_stream_set_user_data_length)
	OPJ_SYM(read_header, opj_read_header)
	OPJ_SYM(decode, opj_decode)
	OPJ_SYM(end, opj_end_decompress)
	OPJ_SYM(image_destroy, opj_image_destroy)
	OPJ_SYM(stream_destroy, opj_stream_destroy)
	OPJ_SYM(destroy, opj_destroy_codec)
#undef OPJ_SYM
	*(void **)&F.set_threads = dlsym(h, "opj_codec_set_threads");
	return 0;
}

struct mem {
	const unsigned char *p;
	size_t n, off;
};

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *u) {
	struct mem *m = u;
	if (m->off >= m->n) return (OPJ_SIZE_T)-1;
	if (n > m->n - m->off) n = m->n - m->off;
	memcpy(buf, m->p + m->off, n);
	m->off += n;
	return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *u) {
	struct mem *m = u;
	if (n < 0) {
		if ((size_t)(-n) > m->off) n = -(OPJ_OFF_T)m->off;
	} else if ((size_t)n > m->n - m->off) {
		n = (OPJ_OFF_T)(m->n - m->off);
	}
	m->off += n;
	return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T n, void *u) {
	struct mem *m = u;
	if (n < 0 || (size_t)n > m->n) return OPJ_FALSE;
	m->off = (size_t)n;
	return OPJ_TRUE;
}

struct msgbuf {
	char *msg;
	int len;
};

static void on_error(const char *s, void *u) {
	struct msgbuf *b = u;
	if (b->msg[0] == 0) { // the first error is the cause
		snprintf(b->msg, b->len, "%s", s);
		size_t l = strlen(b->msg);
		if (l > 0 && b->msg[l - 1] == '\n') b->msg[l - 1] = 0;
	}
}

static void on_quiet(const char *s, void *u) { (void)s; (void)u; }

static int opj_fail(opj_codec_t *c, opj_stream_t *s, opj_image_t *im, const char *what, char *msg, int msglen) {
	if (msg[0] == 0) snprintf(msg, msglen, "%s failed", what);
	if (im) F.image_destroy(im);
	if (s) F.stream_destroy(s);
	if (c) F.destroy(c);
	return -1;
}

// tc_opj_decode decodes a codestream (or JP2 file) whose size the DICOM
// header predicts, at full size (reduce 0) or with the reduce finest
// resolution levels left out, to out_w x out_h; samples come out interleaved as 16-bit words, clamped
// to the component's range (lossy decoding can overshoot), signed ones as
// two's complement.
int tc_opj_decode(const unsigned char *src, size_t n, int jp2, unsigned short *out, size_t outcap,
                  int want_w, int want_h, int want_c, int reduce, int out_w, int out_h, int threads,
                  int *prec, int *sgnd, char *msg, int msglen) {
	struct mem m = {src, n, 0};
	struct msgbuf mb = {msg, msglen};
	opj_image_t *im = NULL;
	msg[0] = 0;
	opj_codec_t *c = F.create(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
	if (!c) return opj_fail(NULL, NULL, NULL, "create decoder", msg, msglen);
	F.on_error(c, on_error, &mb);
	F.on_warning(c, on_quiet, NULL);
	F.on_info(c, on_quiet, NULL);
	opj_dparameters_t p;
	F.defaults(&p);
	// Discard the reduce finest wavelet levels: each halves both sides
	// (OpenJPEG checks the count against every COD and COC it reads).
	p.cp_reduce = (OPJ_UINT32)reduce;
	if (!F.setup(c, &p)) return opj_fail(c, NULL, NULL, "setup decoder", msg, msglen);
	// The output does not depend on the thread count (each code-block and
	// DWT line is computed the same way); a failure leaves one thread.
	if (threads > 1 && F.set_threads) F.set_threads(c, threads);
	opj_stream_t *s = F.stream_create(64 << 10, OPJ_TRUE);
	if (!s) return opj_fail(c, NULL, NULL, "create stream", msg, msglen);
	F.set_user_data(s, &m, NULL);
	F.set_length(s, n);
	F.set_read(s, mem_read);
	F.set_skip(s, mem_skip);
	F.set_seek(s, mem_seek);
	if (!F.read_header(s, c, &im)) return opj_fail(c, s, im, "read header", msg, msglen);
	if ((int)im->numcomps != want_c) {
		snprintf(msg, msglen, "codestream has %u components, the DICOM header says %d", im->numcomps, want_c);
		return opj_fail(c, s, im, "", msg, msglen);
	}
	if ((int)(im->x1 - im->x0) != want_w || (int)(im->y1 - im->y0) != want_h) {
		snprintf(msg, msglen, "codestream is %ux%u, the DICOM header says %dx%d", im->x1 - im->x0, im->y1 - im->y0, want_w, want_h);
		return opj_fail(c, s, im, "", msg, msglen);
	}
	for (int i = 0; i < want_c; i++) {
		opj_image_comp_t *k = &im->comps[i];
		if (k->dx != 1 || k->dy != 1 || k->prec < 1 || k->prec > 16 || k->prec != im->comps[0].prec) {
			snprintf(msg, msglen, "component %d: subsampling %ux%u, precision %u (supported: no subsampling, 1 to 16 bits, equal for all)", i, k->dx, k->dy, k->prec);
			return opj_fail(c, s, im, "", msg, msglen);
		}
	}
	if (out_w < 1 || out_h < 1 || out_w > want_w || out_h > want_h || (size_t)out_w * out_h * want_c > outcap) {
		snprintf(msg, msglen, "frame does not fit the output");
		return opj_fail(c, s, im, "", msg, msglen);
	}
	if (!F.decode(c, s, im)) return opj_fail(c, s, im, "decode", msg, msglen);
	if (!F.end(c, s)) return opj_fail(c, s, im, "end of codestream", msg, msglen);
	*prec = im->comps[0].prec;
	*sgnd = im->comps[0].sgnd;
	for (int i = 0; i < want_c; i++) {
		opj_image_comp_t *k = &im->comps[i];
		if (!k->data || (int)k->w != out_w || (int)k->h != out_h) {
			snprintf(msg, msglen, "component %d decoded to %ux%u", i, k->w, k->h);
			return opj_fail(c, s, im, "", msg, msglen);
		}
		int lo = k->sgnd ? -(1 << (k->prec - 1)) : 0;
		int hi = k->sgnd ? (1 << (k->prec - 1)) - 1 : (1 << k->prec) - 1;
		size_t np = (size_t)out_w * out_h;
		for (size_t j = 0; j < np; j++) {
			int v = k->data[j];
			if (v < lo) v = lo;
			if (v > hi) v = hi;
			out[j * want_c + i] = (unsigned short)v;
		}
	}
	F.image_destroy(im);
	F.stream_destroy(s);
	F.destroy(c);
	return 0;
}
