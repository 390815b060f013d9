#ifndef TRIAGED_DL_CGO_H
#define TRIAGED_DL_CGO_H
// Codec libraries are opened at run time; every loader fills a table of
// function pointers and returns 0, or -1 with a message.
int tc_opj_load(const char *soname, char *msg, int msglen);
int tc_jls_load(const char *soname, char *msg, int msglen);
int tc_ijg8_load(const char *soname, char *msg, int msglen);
int tc_ijg12_load(const char *soname, char *msg, int msglen);
int tc_ijg16_load(const char *soname, char *msg, int msglen);
#endif
