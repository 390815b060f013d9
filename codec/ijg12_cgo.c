// IJG 12-bit decoder from GDCM's libgdcmjpeg12 (see ijg_tmpl.h).
#include <stdio.h>
#include <gdcm-3.0/gdcmjpeg/12/jpeglib.h>
#define IJG_BITS 12
#define IJG_NAME(x) tc_ijg12_##x
#define IJG_PREFIX "gdcmjpeg12_"
#include "ijg_tmpl.h"
