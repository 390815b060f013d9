#ifndef TRIAGED_DL_CGO_H
#define TRIAGED_DL_CGO_H
// Codec libraries are opened at run time; every loader fills a table of
// function pointers and returns 0, or -1 with a message.
int tc_opj_load(char *msg, int msglen);
int tc_jls_load(char *msg, int msglen);
int tc_ijg8_load(char *msg, int msglen);
int tc_ijg12_load(char *msg, int msglen);
int tc_ijg16_load(char *msg, int msglen);
#endif
