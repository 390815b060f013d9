package decode

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Limits bound what a single file may make the decoder do.
type Limits struct {
	MaxFileSize int64 // bytes; larger files are refused before parsing
	MaxPixels   int64 // rows x columns of one frame
}

// DefaultLimits suit chest radiographs with ample margin.
var DefaultLimits = Limits{MaxFileSize: 512 << 20, MaxPixels: 100_000_000}

// Header is what the pipeline needs from a film's attributes. It carries
// identifiers (UIDs) that belong in result messages, never in logs.
type Header struct {
	TransferSyntax    string `json:"transfer_syntax"`
	SOPClassUID       string `json:"sop_class_uid"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	StudyInstanceUID  string `json:"study_instance_uid"`
	SeriesInstanceUID string `json:"series_instance_uid"`
	Modality          string `json:"modality"`
	BodyPart          string `json:"body_part"`
	ViewPosition      string `json:"view_position"`
	// Priority is the requested procedure (or study) priority in upper
	// case: STAT, HIGH, ROUTINE, MEDIUM, LOW, or empty.
	Priority string `json:"priority,omitempty"`

	Rows                 int     `json:"rows"`
	Columns              int     `json:"columns"`
	SamplesPerPixel      int     `json:"samples_per_pixel"`
	BitsAllocated        int     `json:"bits_allocated"`
	BitsStored           int     `json:"bits_stored"`
	HighBit              int     `json:"high_bit"`
	PixelRepresentation  int     `json:"pixel_representation"`
	NumberOfFrames       int     `json:"number_of_frames"`
	PlanarConfiguration  int     `json:"planar_configuration"`
	Photometric          string  `json:"photometric"`
	RescaleSlope         float64 `json:"rescale_slope"`
	RescaleIntercept     float64 `json:"rescale_intercept"`
	WindowCenter         float64 `json:"window_center,omitempty"`
	WindowWidth          float64 `json:"window_width,omitempty"`
	HasWindow            bool    `json:"has_window"`
	VOILUTFunction       string  `json:"voi_lut_function,omitempty"`
	PresentationLUTShape string  `json:"presentation_lut_shape,omitempty"`
}

// parse runs the DICOM parser over r (size bytes) after checking the
// preamble. withPixels=false skips the pixel data entirely.
func parse(r io.Reader, size int64, lim Limits, withPixels bool) (ds dicom.Dataset, err error) {
	if size == 0 {
		return ds, fail(CodeEmptyFile, "file is empty")
	}
	if lim.MaxFileSize > 0 && size > lim.MaxFileSize {
		return ds, fail(CodeTooLarge, "file is %d bytes, above the %d byte limit", size, lim.MaxFileSize)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	pre, perr := br.Peek(132)
	if perr != nil || !bytes.Equal(pre[128:132], []byte("DICM")) {
		return ds, fail(CodeNotDICOM, "no DICM magic at offset 128 (not a DICOM Part 10 file)")
	}
	opts := []dicom.ParseOption{dicom.AllowMismatchPixelDataLength(), dicom.AllowUnknownSpecificCharacterSet()}
	if withPixels {
		opts = append(opts, dicom.SkipProcessingPixelDataValue())
	} else {
		opts = append(opts, dicom.SkipPixelData())
	}
	defer func() {
		// The parser is third-party code fed untrusted bytes: a panic in it
		// must quarantine the file, not take the daemon down.
		if p := recover(); p != nil {
			err = fail(CodeParse, "DICOM parser panicked: %v", p)
		}
	}()
	ds, err = dicom.Parse(br, size, nil, opts...)
	if err != nil {
		if truncation(err) {
			return ds, fail(CodeTruncated, "file ends inside an element: %v", err)
		}
		return ds, fail(CodeParse, "%v", err)
	}
	return ds, nil
}

// ReadHeader parses the attributes of a film without its pixel data: cheap
// enough to route and prioritise a film before paying for pixel decode.
func ReadHeader(r io.Reader, size int64, lim Limits) (*Header, error) {
	ds, err := parse(r, size, lim, false)
	if err != nil {
		return nil, err
	}
	return headerOf(&ds)
}

func headerOf(ds *dicom.Dataset) (*Header, error) {
	h := &Header{
		TransferSyntax:       str(ds, tag.TransferSyntaxUID),
		SOPClassUID:          str(ds, tag.SOPClassUID),
		SOPInstanceUID:       str(ds, tag.SOPInstanceUID),
		StudyInstanceUID:     str(ds, tag.StudyInstanceUID),
		SeriesInstanceUID:    str(ds, tag.SeriesInstanceUID),
		Modality:             strings.ToUpper(str(ds, tag.Modality)),
		BodyPart:             strings.ToUpper(str(ds, tag.BodyPartExamined)),
		ViewPosition:         strings.ToUpper(str(ds, tag.ViewPosition)),
		Photometric:          strings.ToUpper(str(ds, tag.PhotometricInterpretation)),
		VOILUTFunction:       strings.ToUpper(str(ds, tag.VOILUTFunction)),
		PresentationLUTShape: strings.ToUpper(str(ds, tag.PresentationLUTShape)),
		RescaleSlope:         1,
	}
	h.Priority = strings.ToUpper(str(ds, tag.RequestedProcedurePriority))
	if h.Priority == "" {
		h.Priority = strings.ToUpper(str(ds, tag.StudyPriorityID))
	}
	h.Rows, _ = intv(ds, tag.Rows)
	h.Columns, _ = intv(ds, tag.Columns)
	h.SamplesPerPixel = intOr(ds, tag.SamplesPerPixel, 1)
	h.BitsAllocated, _ = intv(ds, tag.BitsAllocated)
	h.BitsStored = intOr(ds, tag.BitsStored, h.BitsAllocated)
	h.HighBit = intOr(ds, tag.HighBit, h.BitsStored-1)
	h.PixelRepresentation = intOr(ds, tag.PixelRepresentation, 0)
	h.PlanarConfiguration = intOr(ds, tag.PlanarConfiguration, 0)
	h.NumberOfFrames = intOr(ds, tag.NumberOfFrames, 1)
	if s, ok := floatv(ds, tag.RescaleSlope); ok && s != 0 {
		h.RescaleSlope = s
	}
	if i, ok := floatv(ds, tag.RescaleIntercept); ok {
		h.RescaleIntercept = i
	}
	c, okc := floatv(ds, tag.WindowCenter)
	w, okw := floatv(ds, tag.WindowWidth)
	if okc && okw && w >= 1 {
		h.WindowCenter, h.WindowWidth, h.HasWindow = c, w, true
	}
	return h, nil
}

// checkImage validates the image attributes before any pixel buffer is
// sized from them.
func (h *Header) checkImage(lim Limits) error {
	if h.Rows <= 0 || h.Columns <= 0 {
		return fail(CodeBadHeader, "rows %d x columns %d", h.Rows, h.Columns)
	}
	if lim.MaxPixels > 0 && int64(h.Rows)*int64(h.Columns) > lim.MaxPixels {
		return fail(CodeTooManyPixels, "%d x %d pixels exceeds the limit of %d", h.Rows, h.Columns, lim.MaxPixels)
	}
	if h.BitsAllocated != 8 && h.BitsAllocated != 16 {
		return fail(CodeUnsupportedPixels, "bits allocated %d (supported: 8, 16)", h.BitsAllocated)
	}
	if h.BitsStored < 1 || h.BitsStored > h.BitsAllocated {
		return fail(CodeBadHeader, "bits stored %d with bits allocated %d", h.BitsStored, h.BitsAllocated)
	}
	if h.HighBit < h.BitsStored-1 || h.HighBit >= h.BitsAllocated {
		return fail(CodeBadHeader, "high bit %d with bits stored %d and allocated %d", h.HighBit, h.BitsStored, h.BitsAllocated)
	}
	if h.NumberOfFrames < 1 {
		return fail(CodeBadHeader, "number of frames %d", h.NumberOfFrames)
	}
	switch h.Photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if h.SamplesPerPixel != 1 {
			return fail(CodeBadHeader, "%s with %d samples per pixel", h.Photometric, h.SamplesPerPixel)
		}
	default:
		return fail(CodeUnsupportedPixels, "photometric interpretation %q", h.Photometric)
	}
	if math.IsNaN(h.RescaleSlope) || math.IsInf(h.RescaleSlope, 0) || math.IsNaN(h.RescaleIntercept) || math.IsInf(h.RescaleIntercept, 0) {
		return fail(CodeBadHeader, "rescale slope/intercept not finite")
	}
	return nil
}

func elem(ds *dicom.Dataset, t tag.Tag) *dicom.Element {
	e, err := ds.FindElementByTag(t)
	if err != nil || e == nil || e.Value == nil {
		return nil
	}
	return e
}

func str(ds *dicom.Dataset, t tag.Tag) string {
	e := elem(ds, t)
	if e == nil {
		return ""
	}
	if ss, ok := e.Value.GetValue().([]string); ok && len(ss) > 0 {
		return strings.Trim(ss[0], " \x00")
	}
	return ""
}

func intv(ds *dicom.Dataset, t tag.Tag) (int, bool) {
	e := elem(ds, t)
	if e == nil {
		return 0, false
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0], true
		}
	case []string: // IS
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(v[0]))
			return n, err == nil
		}
	}
	return 0, false
}

func intOr(ds *dicom.Dataset, t tag.Tag, def int) int {
	if v, ok := intv(ds, t); ok {
		return v
	}
	return def
}

// floatv reads the first value of a DS (or FL/FD) element.
func floatv(ds *dicom.Dataset, t tag.Tag) (float64, bool) {
	e := elem(ds, t)
	if e == nil {
		return 0, false
	}
	switch v := e.Value.GetValue().(type) {
	case []float64:
		if len(v) > 0 {
			return v[0], true
		}
	case []string:
		if len(v) > 0 {
			s := strings.TrimSpace(strings.SplitN(v[0], "\\", 2)[0])
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return 0, false
			}
			return f, true
		}
	}
	return 0, false
}

// truncation recognises the parser's ways of saying the file ended early.
func truncation(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "EOF") || strings.Contains(m, "not enough bytes left")
}
