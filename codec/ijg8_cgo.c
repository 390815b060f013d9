// IJG 8-bit decoder from GDCM's libgdcmjpeg8 (see ijg_tmpl.h).
#include <stdio.h>
#include <gdcm-3.0/gdcmjpeg/8/jpeglib.h>
#define IJG_BITS 8
#define IJG_NAME(x) tc_ijg8_##x
#define IJG_PREFIX "gdcmjpeg8_"
#include "ijg_tmpl.h"
