#ifndef TRIAGED_J2K_CGO_H
#define TRIAGED_J2K_CGO_H
#include <stddef.h>
int tc_opj_decode(const unsigned char *src, size_t n, int jp2, unsigned short *out, size_t outcap,
                  int want_w, int want_h, int want_c, int reduce, int out_w, int out_h, int threads,
                  int *prec, int *sgnd, char *msg, int msglen);
#endif
