package decode

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Limits bound what a single file may make the decoder do. Zero fields
// take their value from DefaultLimits.
type Limits struct {
	MaxFileSize int64 // bytes; larger files are refused before parsing
	MaxPixels   int64 // rows x columns of one frame
	// MaxHeaderSize bounds the attributes before the pixel data: the part
	// the DICOM parser reads (and allocates up to about 4x of).
	MaxHeaderSize int64
	MaxElements   int // elements and items in the whole file
	MaxDepth      int // sequence nesting
	// MaxCompressionRatio bounds a compressed frame's decoded size: at most
	// this many times its compressed bytes (frames up to 1 MiB always
	// pass), so a small file cannot claim a huge image.
	MaxCompressionRatio int64
	// Budget, if set, is shared by every decode in the process: a decode
	// waits until its estimated memory fits.
	Budget *Budget
	// CodecThreads is the threads a JPEG 2000 frame may use: 0 gives it
	// the cores no other decode is using (see codecThreads).
	CodecThreads int
	// ReducedMinSide, if positive, decodes JPEG 2000 and HTJ2K films at
	// the deepest wavelet resolution level whose shorter side is still at
	// least this many pixels (config decode.resolution); 0 decodes every
	// film at full size, bit for bit as the reference does.
	ReducedMinSide int
}

// DefaultLimits suit chest radiographs with ample margin.
var DefaultLimits = Limits{
	MaxFileSize:         512 << 20,
	MaxPixels:           100_000_000,
	MaxHeaderSize:       16 << 20,
	MaxElements:         100_000,
	MaxDepth:            16,
	MaxCompressionRatio: 1000,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = d.MaxPixels
	}
	if l.MaxHeaderSize <= 0 {
		l.MaxHeaderSize = d.MaxHeaderSize
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxCompressionRatio <= 0 {
		l.MaxCompressionRatio = d.MaxCompressionRatio
	}
	return l
}

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
	// ModalityLUT and VOILUT are the first items of the Modality LUT and
	// VOI LUT Sequences, when present.
	ModalityLUT *LUT `json:"modality_lut,omitempty"`
	VOILUT      *LUT `json:"voi_lut,omitempty"`

	// Equipment and geometry, for the drift watch: Manufacturer and
	// Manufacturer's Model Name (free text: callers bound them before they
	// become labels), and the row pixel spacing in mm (Pixel Spacing, else
	// Imager Pixel Spacing; 0: none).
	Manufacturer string  `json:"manufacturer,omitempty"`
	ModelName    string  `json:"model_name,omitempty"`
	PixelSpacing float64 `json:"pixel_spacing,omitempty"`

	layout *layout
}

// LUT is a lookup table from a Modality or VOI LUT Sequence item.
type LUT struct {
	First int      `json:"first_mapped"` // input value of the first entry
	Bits  int      `json:"bits"`         // bits per entry
	Data  []uint16 `json:"-"`
}

// ReadHeader pre-scans a file and parses the attributes of a film without
// its pixel data: cheap enough to route and prioritise a film before paying
// for pixel decode. A file that the pre-scan refuses (malformed, truncated,
// hostile) fails here already.
func ReadHeader(r io.Reader, size int64, lim Limits) (h *Header, err error) {
	defer recoverPanic(&err)
	ra, err := readerAt(r, size, lim)
	if err != nil {
		return nil, err
	}
	l, err := scanFile(ra, size, lim)
	if err != nil {
		return nil, err
	}
	return parseHeader(l)
}

// readerAt gives random access to a file: files and byte readers have it;
// anything else is read into memory, which the size limit bounds.
func readerAt(r io.Reader, size int64, lim Limits) (io.ReaderAt, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		return ra, nil
	}
	lim = lim.withDefaults()
	if size > lim.MaxFileSize {
		return nil, fail(CodeTooLarge, "file is %d bytes, above the %d byte limit", size, lim.MaxFileSize)
	}
	b := make([]byte, max(size, 0))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fail(CodeTruncated, "file shorter than its size: %v", err)
	}
	return bytes.NewReader(b), nil
}

// parseHeader parses the validated attributes before the pixel data. The
// parser gets a rebuilt file meta group naming the plain syntax that
// encodes the data set (deflate is already undone, and syntaxes newer than
// the parser's dictionary would make it fall back to a nil byte order).
func parseHeader(l *layout) (h *Header, err error) {
	var buf bytes.Buffer
	buf.Grow(len(l.header) + 512)
	buf.Write(make([]byte, 128))
	buf.WriteString("DICM")
	var meta bytes.Buffer
	for _, e := range l.meta {
		if e.tag == 0x00020010 {
			e.value = []byte(plainSyntax(l.syntax))
		}
		writeMeta(&meta, e)
	}
	writeMeta(&buf, metaElem{tag: 0x00020000, vr: "UL", value: binary.LittleEndian.AppendUint32(nil, uint32(meta.Len()))})
	buf.Write(meta.Bytes())
	buf.Write(l.header)
	defer func() {
		// Third-party code fed bytes from outside: whatever the pre-scan
		// missed must quarantine the file, not take the daemon down.
		if p := recover(); p != nil {
			h, err = nil, panicked(CodeParse, "DICOM parser", p)
		}
	}()
	ds, err := dicom.Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil,
		dicom.AllowUnknownSpecificCharacterSet(), dicom.SkipPixelData())
	if err != nil {
		return nil, fail(CodeParse, "%v", err)
	}
	h = headerOf(&ds)
	h.TransferSyntax = l.syntax.UID
	h.layout = l
	return h, nil
}

// plainSyntax is the uncompressed syntax with the data set's encoding.
func plainSyntax(s Syntax) string {
	switch {
	case s.implicit:
		return TSImplicitLE + "\x00"
	case s.big:
		return TSExplicitBE
	default:
		return TSExplicitLE + "\x00"
	}
}

func writeMeta(w *bytes.Buffer, e metaElem) {
	v := e.value
	if len(v)%2 == 1 {
		v = append(v[:len(v):len(v)], 0)
	}
	binary.Write(w, binary.LittleEndian, uint16(e.tag>>16))
	binary.Write(w, binary.LittleEndian, uint16(e.tag))
	w.WriteString(e.vr)
	if longVR(e.vr) {
		w.Write([]byte{0, 0})
		binary.Write(w, binary.LittleEndian, uint32(len(v)))
	} else {
		binary.Write(w, binary.LittleEndian, uint16(len(v)))
	}
	w.Write(v)
}

func headerOf(ds *dicom.Dataset) *Header {
	h := &Header{
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
	if okc && okw && w > 0 {
		h.WindowCenter, h.WindowWidth, h.HasWindow = c, w, true
	}
	h.Manufacturer = strings.TrimSpace(str(ds, tag.Manufacturer))
	h.ModelName = strings.TrimSpace(str(ds, tag.ManufacturerModelName))
	for _, t := range []tag.Tag{tag.PixelSpacing, tag.ImagerPixelSpacing} {
		if v, ok := floatv(ds, t); ok && v > 0 && v < 100 {
			h.PixelSpacing = v
			break
		}
	}
	h.ModalityLUT = lutOf(ds, tag.ModalityLUTSequence)
	h.VOILUT = lutOf(ds, tag.VOILUTSequence)
	return h
}

// lutOf reads the first item of a LUT sequence: LUT Descriptor (entries,
// first mapped value, bits per entry) and LUT Data. A table whose data is
// shorter than its descriptor says is ignored (nil).
func lutOf(ds *dicom.Dataset, seq tag.Tag) *LUT {
	e := elem(ds, seq)
	if e == nil {
		return nil
	}
	items, ok := e.Value.GetValue().([]*dicom.SequenceItemValue)
	if !ok || len(items) == 0 {
		return nil
	}
	sub := &dicom.Dataset{Elements: items[0].GetValue().([]*dicom.Element)}
	desc := elem(sub, tag.LUTDescriptor)
	data := elem(sub, tag.LUTData)
	if desc == nil || data == nil {
		return nil
	}
	var d []int
	switch v := desc.Value.GetValue().(type) {
	case []int:
		d = v
	case []byte:
		for i := 0; i+1 < len(v); i += 2 {
			d = append(d, int(binary.LittleEndian.Uint16(v[i:])))
		}
	}
	if len(d) < 3 {
		return nil
	}
	n := d[0] & 0xFFFF
	if n == 0 {
		n = 65536
	}
	l := &LUT{First: d[1] & 0xFFFF, Bits: d[2]}
	if l.Bits < 1 || l.Bits > 16 {
		return nil
	}
	switch v := data.Value.GetValue().(type) {
	case []int:
		if len(v) < n {
			return nil
		}
		l.Data = make([]uint16, n)
		for i := range l.Data {
			l.Data[i] = uint16(v[i])
		}
	case []byte: // OW, which the parser hands over as little-endian words
		if len(v) < 2*n {
			return nil
		}
		l.Data = make([]uint16, n)
		for i := range l.Data {
			l.Data[i] = binary.LittleEndian.Uint16(v[2*i:])
		}
	default:
		return nil
	}
	return l
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
		if len(v) > 0 && !math.IsNaN(v[0]) && !math.IsInf(v[0], 0) {
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
