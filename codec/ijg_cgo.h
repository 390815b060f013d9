#ifndef TRIAGED_IJG_CGO_H
#define TRIAGED_IJG_CGO_H
// out holds outcap samples of the decoder's JSAMPLE: 8-bit for ijg8,
// 16-bit words for ijg12 and ijg16.
#define TC_IJG_DECL(b)                                                                              \
	int tc_ijg##b##_decode(const unsigned char *src, unsigned long n, void *out, unsigned long outcap, \
	                       int want_w, int want_h, int want_c, int dicom_rgb, int *precision, int *lossless, int *rgb, \
	                       char *msg, int msglen);
TC_IJG_DECL(8)
TC_IJG_DECL(12)
TC_IJG_DECL(16)
#endif
