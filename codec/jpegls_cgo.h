#ifndef TRIAGED_JPEGLS_CGO_H
#define TRIAGED_JPEGLS_CGO_H
#include <stddef.h>
int tc_jls_decode(const void *src, size_t n, void *out, size_t outcap, int want_w, int want_h, int want_c,
                  int *bits, int *planar, char *msg, int msglen);
#endif
