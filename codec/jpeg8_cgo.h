#ifndef TRIAGED_JPEG8_CGO_H
#define TRIAGED_JPEG8_CGO_H
#define TJD_MSG_LEN 200
int tjd_jpeg8(const unsigned char *src, unsigned long n, unsigned char *out, unsigned long outcap,
              int dicom_rgb, int *w, int *h, int *comps, int *precision, int header_only, char *msg);
#endif
