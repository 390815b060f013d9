// IJG 16-bit decoder from GDCM's libgdcmjpeg16 (see ijg_tmpl.h).
#include <stdio.h>
#include <gdcm-3.0/gdcmjpeg/16/jpeglib.h>
#define IJG_BITS 16
#define IJG_NAME(x) tc_ijg16_##x
#define IJG_PREFIX "gdcmjpeg16_"
#include "ijg_tmpl.h"
