#ifndef TRIAGED_JCOLOR_H
#define TRIAGED_JCOLOR_H
// TC_JPEG_COLOR decides whether a 3-component DCT JPEG holds YCbCr or RGB,
// after jpeg_read_header. The codestream decides where it says anything,
// as libjpeg documents it (jdapimin.c): a JFIF marker means YCbCr, an
// Adobe APP14 marker its transform flag (0 RGB, 1 YCbCr), component IDs
// 1,2,3 YCbCr and 'R','G','B' RGB. Where it says nothing (other IDs, such
// as 0,1,2), libjpeg guesses YCbCr; a DICOM frame has a better witness,
// its Photometric Interpretation (dicom_rgb: it is RGB), and an RGB film
// must not be converted as if it were YCbCr (it would come out magenta).
#define TC_JPEG_COLOR(d, dicom_rgb)                                                          \
	do {                                                                                     \
		if ((d).num_components == 3 && !(d).saw_JFIF_marker && !(d).saw_Adobe_marker) {     \
			int c0_ = (d).comp_info[0].component_id, c1_ = (d).comp_info[1].component_id, \
			    c2_ = (d).comp_info[2].component_id;                                         \
			if (!(c0_ == 1 && c1_ == 2 && c2_ == 3) && !(c0_ == 82 && c1_ == 71 && c2_ == 66)) \
				(d).jpeg_color_space = (dicom_rgb) ? JCS_RGB : JCS_YCbCr;                    \
		}                                                                                    \
	} while (0)
#endif
