package decode

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// The pre-scan walks a file's element structure before the DICOM parser
// sees a byte of it, and refuses what would make the parser misbehave.
//
// suyashkumar/dicom v1.1.0 allocates a value's declared length before
// reading it (make([]byte, vl) for OB/UN/strings, []int with capacity vl/2
// for numbers: 4 x vl bytes), so one element claiming 4 GB in a 300-byte
// file costs 4 GB (its issue #349); it panics on a non-item inside a
// defined-length sequence, logs to the standard logger on malformed items,
// and inflates a deflated data set without bound. The pre-scan mirrors how
// the parser reads (the same VR dictionary for implicit VR, the same
// long/short length forms) and checks every declared length against the
// bytes that remain in its file, sequence or item, and against the limits.
// The parser is then given only the attributes before the top-level Pixel
// Data, already validated, with a file meta group whose transfer syntax it
// understands; the pixel data is located by the pre-scan and never goes
// through the parser at all.

// layout is what the pre-scan learned about a file.
type layout struct {
	syntax    Syntax
	meta      []metaElem
	dataStart int64     // first byte of the data set, after the file meta group
	pixelAt   int64     // offset of the top-level Pixel Data element (the header ends there), or the end
	pixel     *pixelLoc // nil if the file has no Pixel Data
	elements  int
	src       io.ReaderAt // the bytes the offsets refer to (inflated for deflate)
	size      int64
	// otherPixels notes Float/Double Float Pixel Data, which is not decoded.
	otherPixels bool
	// header is the data set before the top-level Pixel Data as the
	// parser gets it: the bytes the pre-scan validated, in the data set's
	// own encoding, with UN elements re-encoded (see elems).
	header []byte
}

type metaElem struct {
	tag   uint32
	vr    string
	value []byte
}

type span struct{ off, n int64 }

// pixelLoc is the top-level Pixel Data element.
type pixelLoc struct {
	vr           string
	encapsulated bool
	value        span   // native pixel data
	offsets      []byte // basic offset table (encapsulated)
	frags        []span // fragments (encapsulated)
}

type scanner struct {
	r    io.ReaderAt
	size int64
	// bo and implicit are the encoding being read: the data set's, or
	// implicit VR little endian inside a UN of undefined length (CP-246).
	bo       binary.ByteOrder
	implicit bool
	// out receives the data set for the parser, always in the data set's
	// own encoding (outBO, outImplicit).
	out         bytes.Buffer
	outBO       binary.ByteOrder
	outImplicit bool
	lim         Limits
	elements    int
	buf         [16]byte
	layout      *layout
}

// scanFile runs the pre-scan over a whole file (size bytes of r).
func scanFile(r io.ReaderAt, size int64, lim Limits) (*layout, error) {
	lim = lim.withDefaults()
	if size == 0 {
		return nil, fail(CodeEmptyFile, "file is empty")
	}
	if size > lim.MaxFileSize {
		return nil, fail(CodeTooLarge, "file is %d bytes, above the %d byte limit", size, lim.MaxFileSize)
	}
	s := &scanner{r: r, size: size, bo: binary.LittleEndian, lim: lim, layout: &layout{src: r, size: size}}
	if err := s.preamble(); err != nil {
		return nil, err
	}
	if err := s.metaGroup(); err != nil {
		return nil, err
	}
	l := s.layout
	if l.syntax.deflated {
		if err := s.inflate(); err != nil {
			return nil, err
		}
	}
	s.bo, s.implicit = binary.ByteOrder(binary.LittleEndian), l.syntax.implicit
	if l.syntax.big {
		s.bo = binary.BigEndian
	}
	if !s.implicit && !l.syntax.big && l.dataStart+8 <= s.size {
		// Some writers encode the data set in implicit VR whatever the
		// transfer syntax says (pydicom's SC_rgb_jpeg.dcm, a JPEG film).
		// The first element tells: its VR bytes are no VR. pydicom reads
		// such files the same way; dcmtk refuses them.
		b, _ := s.at(l.dataStart, 8, s.size)
		if !validVR(string(b[4:6])) && binary.LittleEndian.Uint16(b) == 0x0008 {
			s.implicit, l.syntax.implicit = true, true
		}
	}
	s.outBO, s.outImplicit = s.bo, s.implicit
	l.pixelAt = s.size
	if _, err := s.elems(l.dataStart, s.size, 0, true, false); err != nil {
		return nil, err
	}
	l.elements = s.elements
	l.header = s.out.Bytes()
	if l.pixelAt > lim.MaxHeaderSize {
		return nil, fail(CodeHeaderTooLarge, "the attributes before the pixel data take %d bytes (limit %d)", l.pixelAt, lim.MaxHeaderSize)
	}
	return l, nil
}

// at reads n bytes at off, which must end by end (the end of the enclosing
// file, sequence or item).
func (s *scanner) at(off, n, end int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > end {
		if end >= s.size {
			return nil, fail(CodeTruncated, "file ends inside an element header at byte %d", off)
		}
		return nil, fail(CodeElementLength, "element header at byte %d crosses the end of its sequence item", off)
	}
	b := s.buf[:n]
	if _, err := s.r.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(CodeTruncated, "file ends at byte %d", off)
		}
		return nil, fail(CodeUnreadable, "read at byte %d: %v", off, err)
	}
	return b, nil
}

// fits checks a value of n bytes at off against its container and a cap.
func (s *scanner) fits(what string, off int64, n uint32, end, cap int64) error {
	if int64(n) > cap {
		return fail(CodeElementLength, "%s at byte %d claims %d bytes (limit %d)", what, off, n, cap)
	}
	if off+int64(n) > end {
		if end >= s.size {
			// A plausible length running past the end of the file is a
			// file cut short in transfer, not a forged length.
			if s.layout.syntax.deflated {
				return fail(CodeElementLength, "%s at byte %d of the inflated data set claims %d bytes, %d remain", what, off, n, end-off)
			}
			return fail(CodeTruncated, "%s at byte %d claims %d bytes, the file ends after %d", what, off, n, end-off)
		}
		return fail(CodeElementLength, "%s at byte %d claims %d bytes, its sequence item has %d left", what, off, n, end-off)
	}
	return nil
}

func (s *scanner) count() error {
	s.elements++
	if s.elements > s.lim.MaxElements {
		return fail(CodeHeaderTooLarge, "more than %d elements", s.lim.MaxElements)
	}
	return nil
}

func (s *scanner) preamble() error {
	var b [132]byte
	n, _ := s.r.ReadAt(b[:], 0)
	if n < 132 || string(b[128:132]) != "DICM" {
		return fail(CodeNotDICOM, "no DICM magic at offset 128: %s", sniff(b[:n]))
	}
	return nil
}

// sniff names what a non-DICOM file looks like, for the reason text.
func sniff(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0x1F && b[1] == 0x8B:
		return "gzip-compressed data (decompress it first)"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "a PNG image"
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "a JPEG image"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "a ZIP archive"
	case bytes.HasPrefix(b, []byte("%PDF")):
		return "a PDF document"
	case bytes.HasPrefix(b, []byte("DICM")):
		return "DICOM magic without the 128-byte preamble"
	case len(b) >= 8 && (b[0] == 0x08 || b[0] == 0x02) && b[1] == 0x00:
		return "a bare DICOM data set without the Part 10 preamble and file meta"
	case len(b) < 132:
		return fmt.Sprintf("only %d bytes", len(b))
	}
	text := true
	for _, c := range b {
		if c < 0x09 || (c > 0x0D && c < 0x20) || c == 0x7F {
			text = false
			break
		}
	}
	if text {
		return "text"
	}
	return "unrecognised binary data"
}

// metaGroup checks the file meta information strictly: it must start with
// its group length, every element must be group 0002 in explicit VR little
// endian and lie inside that length, nothing of group 0002 may follow it,
// and it must name a transfer syntax whose encoding is known.
func (s *scanner) metaGroup() error {
	const start = 132
	b, err := s.at(start, 12, s.size)
	if err != nil {
		return fail(CodeBadMeta, "file meta information missing after the DICM magic")
	}
	if binary.LittleEndian.Uint32(b) != 0x00000002 || string(b[4:6]) != "UL" || binary.LittleEndian.Uint16(b[6:]) != 4 {
		return fail(CodeBadMeta, "file meta information does not start with its group length (0002,0000) UL")
	}
	glen := int64(binary.LittleEndian.Uint32(b[8:]))
	if glen < 8 || glen > 64<<10 {
		return fail(CodeBadMeta, "file meta group length %d is implausible", glen)
	}
	end := start + 12 + glen
	if end > s.size {
		return fail(CodeTruncated, "file ends inside the file meta group (group length %d)", glen)
	}
	var ts string
	for off := int64(start + 12); off < end; {
		h, err := s.at(off, 8, end)
		if err != nil {
			return fail(CodeBadMeta, "file meta element at byte %d crosses the group length", off)
		}
		t := binary.LittleEndian.Uint32(h)
		t = t<<16 | t>>16 // group in the high half
		vr := string(h[4:6])
		if t>>16 != 0x0002 {
			return fail(CodeBadMeta, "element (%04X,%04X) inside the file meta group", t>>16, t&0xFFFF)
		}
		if !validVR(vr) {
			return fail(CodeBadMeta, "file meta element (0002,%04X) has an invalid VR", t&0xFFFF)
		}
		hl, n := int64(8), uint32(binary.LittleEndian.Uint16(h[6:]))
		if longVR(vr) {
			h, err = s.at(off, 12, end)
			if err != nil {
				return fail(CodeBadMeta, "file meta element (0002,%04X) crosses the group length", t&0xFFFF)
			}
			hl, n = 12, binary.LittleEndian.Uint32(h[8:])
		}
		if off+hl+int64(n) > end {
			return fail(CodeBadMeta, "file meta element (0002,%04X) claims %d bytes past the group length", t&0xFFFF, n)
		}
		v := make([]byte, n)
		if _, err := s.r.ReadAt(v, off+hl); err != nil {
			return fail(CodeBadMeta, "read file meta: %v", err)
		}
		s.layout.meta = append(s.layout.meta, metaElem{tag: t, vr: vr, value: v})
		if t == 0x00020010 {
			ts = strings.TrimRight(string(v), "\x00 ")
		}
		off += hl + int64(n)
	}
	if end+2 <= s.size {
		g, _ := s.at(end, 2, s.size)
		if binary.LittleEndian.Uint16(g) == 0x0002 {
			return fail(CodeBadMeta, "file meta elements continue past the declared group length")
		}
	}
	if ts == "" {
		return fail(CodeBadMeta, "file meta information has no transfer syntax (0002,0010)")
	}
	if !validUID(ts) {
		return fail(CodeBadMeta, "transfer syntax UID is not a valid UID")
	}
	syn, ok := lookupSyntax(ts)
	if !ok {
		return fail(CodeUnsupportedSyntax, "transfer syntax %s is not a known transfer syntax; its encoding is unknown", EchoUI(ts))
	}
	s.layout.syntax = syn
	s.layout.dataStart = end
	return nil
}

func validUID(u string) bool {
	if len(u) > 64 {
		return false
	}
	for _, c := range u {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// inflate replaces the deflated data set by its inflated bytes, never more
// than the file size limit: a deflate stream expands up to 1032:1, so a
// small file could otherwise inflate to gigabytes.
func (s *scanner) inflate() error {
	l := s.layout
	deflated := func() io.ReadCloser {
		return flate.NewReader(io.NewSectionReader(s.r, l.dataStart, s.size-l.dataStart))
	}
	// Measure first, then allocate exactly: a growing buffer would
	// allocate about four times the limit on the way to refusing a bomb.
	zr := deflated()
	n, err := io.Copy(io.Discard, io.LimitReader(zr, s.lim.MaxFileSize+1))
	zr.Close()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fail(CodeTruncated, "deflated data set ends early")
	}
	if err != nil {
		return fail(CodeParse, "deflated data set is corrupt: %v", err)
	}
	if n > s.lim.MaxFileSize {
		return fail(CodeDecompressedTooLong, "deflated data set inflates to more than %d bytes", s.lim.MaxFileSize)
	}
	// The offsets of the inflated data set start where the deflated one did.
	data := make([]byte, l.dataStart+n)
	zr = deflated()
	defer zr.Close()
	if _, err := io.ReadFull(zr, data[l.dataStart:]); err != nil {
		return fail(CodeParse, "deflated data set: %v", err)
	}
	s.r, s.size = bytes.NewReader(data), int64(len(data))
	l.src, l.size = s.r, s.size
	return nil
}

var vrs = map[string]bool{}

func init() {
	for _, v := range strings.Fields("AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OW PN SH SL SQ SS ST TM UC UI UL UN UR US UT") {
		vrs[v] = true
	}
}

// validVR accepts the VRs the parser reads correctly. OV, SV and UV (added
// to the standard in 2019) are refused: the parser reads their lengths in
// the short form and would lose its place.
func validVR(vr string) bool { return vrs[vr] }

// longVR: VRs with a reserved field and a 32-bit length in explicit VR.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OW", "SQ", "UN", "UC", "UR", "UT":
		return true
	}
	return false
}

// implicitVR is the VR the parser assumes for a tag in implicit VR: the
// dictionary's first, OW for pixel and overlay data, UN if unknown.
func implicitVR(t tag.Tag) string {
	if t == tag.PixelData || t == tag.OverlayData {
		return "OW"
	}
	if info, err := tag.Find(t); err == nil && len(info.VRs) > 0 {
		return info.VRs[0]
	}
	return "UN"
}

const undefined = 0xFFFFFFFF

var (
	tagItem     = tag.Item
	tagItemEnd  = tag.ItemDelimitationItem
	tagSeqEnd   = tag.SequenceDelimitationItem
	tagPixels   = tag.PixelData
	tagFloatPix = tag.Tag{Group: 0x7FE0, Element: 0x0008}
	tagDblPix   = tag.Tag{Group: 0x7FE0, Element: 0x0009}
)

// header reads an element header at off the way the parser does: items
// and delimiters always with a 32-bit length, others by the transfer
// syntax. It returns the tag, the VR, the value length and the header size.
func (s *scanner) header(off, end int64) (tag.Tag, string, uint32, int64, error) {
	b, err := s.at(off, 8, end)
	if err != nil {
		return tag.Tag{}, "", 0, 0, err
	}
	t := tag.Tag{Group: s.bo.Uint16(b), Element: s.bo.Uint16(b[2:])}
	if t.Group == 0xFFFE {
		// Items are read with an implicit VR header; delimiters with the
		// data set's, which agrees only when their four length bytes are
		// zero, as the standard requires.
		n := s.bo.Uint32(b[4:])
		if t != tagItem && n != 0 {
			return t, "", 0, 0, fail(CodeParse, "delimiter (%04X,%04X) at byte %d has a non-zero length", t.Group, t.Element, off)
		}
		if t != tagItem && t != tagItemEnd && t != tagSeqEnd {
			return t, "", 0, 0, fail(CodeParse, "unknown item tag (%04X,%04X) at byte %d", t.Group, t.Element, off)
		}
		return t, "NA", n, 8, nil
	}
	if s.implicit {
		return t, implicitVR(t), s.bo.Uint32(b[4:]), 8, nil
	}
	vr := string(b[4:6])
	if !validVR(vr) {
		return t, "", 0, 0, fail(CodeParse, "element (%04X,%04X) at byte %d has an invalid or unsupported VR %q", t.Group, t.Element, off, strings.ToValidUTF8(vr, "?"))
	}
	if !longVR(vr) {
		n := uint32(s.bo.Uint16(b[6:]))
		if n == 0xFFFF {
			return t, "", 0, 0, fail(CodeParse, "element (%04X,%04X) at byte %d: undefined length on a short VR", t.Group, t.Element, off)
		}
		return t, vr, n, 8, nil
	}
	b, err = s.at(off, 12, end)
	if err != nil {
		return t, "", 0, 0, err
	}
	return t, vr, s.bo.Uint32(b[8:]), 12, nil
}

// elems walks elements from off to end (a defined length), or, with
// untilItemEnd, up to and including an item delimiter, and writes them to
// s.out. At the top level it stops at Pixel Data, which it records. It
// returns the offset after the last byte it consumed.
//
// UN elements are read as PS3.5 6.2.2 says, rather than as the parser
// would (as opaque bytes, or, for an undefined length, as a sequence in
// the data set's encoding, which is wrong): a UN of undefined length is a
// sequence encoded in implicit VR little endian (CP-246), and so is the
// value of a UN whose tag the dictionary knows as SQ; a UN whose tag the
// dictionary knows otherwise takes its dictionary VR, its value staying in
// the transfer syntax's byte order. The parser gets them re-encoded, so
// that a film whose Modality, Rescale Intercept or window a converting
// archive wrote as UN routes and displays as it should.
func (s *scanner) elems(off, end int64, depth int, top, untilItemEnd bool) (int64, error) {
	for off < end {
		if top && off > s.lim.MaxHeaderSize {
			return off, fail(CodeHeaderTooLarge, "no pixel data in the first %d bytes", s.lim.MaxHeaderSize)
		}
		t, vr, n, hl, err := s.header(off, end)
		if err != nil {
			return off, err
		}
		if err := s.count(); err != nil {
			return off, err
		}
		if t.Group == 0xFFFE {
			if t == tagItemEnd && untilItemEnd {
				s.emitHeader(t, "", 0)
				return off + hl, nil
			}
			return off, fail(CodeParse, "unexpected (%04X,%04X) at byte %d", t.Group, t.Element, off)
		}
		val := off + hl
		if t == tagPixels {
			if top {
				return s.pixelData(off, val, vr, n)
			}
			// Icon images and the like: checked here, not given to the
			// parser, which would skip them anyway.
			if n == undefined {
				off, err = s.items(val, end, nil)
			} else {
				err = s.fits("nested Pixel Data", val, n, end, s.lim.MaxHeaderSize)
				off = val + int64(n)
			}
			if err != nil {
				return off, err
			}
			continue
		}
		if top && (t == tagFloatPix || t == tagDblPix) {
			s.layout.otherPixels = true
		}
		if vr == "UN" && !s.implicit {
			dict := dictVR(t)
			switch {
			case n == undefined:
				if off, err = s.unSequence(t, val, n, end, depth+1); err != nil {
					return off, err
				}
				continue
			case dict == "SQ":
				// A defined length lets a value that is not the implicit
				// VR items it should be stay opaque bytes, as before.
				mark, count := s.out.Len(), s.elements
				if next, err := s.unSequence(t, val, n, end, depth+1); err == nil {
					off = next
					continue
				}
				s.out.Truncate(mark)
				s.elements = count
			case dict != "" && dict != "UN" && (longVR(dict) || n <= 0xFFFF) && numericLength(t, dict, n) == nil:
				vr = dict
			}
		}
		if top && t == tag.SpecificCharacterSet && !stringVR(vr) {
			// The parser takes this element's value for strings and
			// panics on anything else: it gets text, or nothing.
			vr = "CS"
			if n > 0xFFFF && n != undefined {
				if err := s.fits("Specific Character Set", val, n, end, s.lim.MaxHeaderSize); err != nil {
					return off, err
				}
				off = val + int64(n)
				continue
			}
		}
		kind := tag.GetVRKind(t, vr)
		switch {
		case kind == tag.VRSequence || (kind == tag.VRUnknown && n == undefined):
			lenAt := s.emitHeader(t, "SQ", n)
			start := s.out.Len()
			off, err = s.sequence(val, n, end, depth+1)
			s.patchLength(lenAt, start, n)
		case kind == tag.VRBytes && n == undefined:
			// OB/OW of undefined length outside Pixel Data: the parser
			// reads its items and joins them. Copied as they are, when
			// they are in the encoding the parser reads.
			var next int64
			next, err = s.items(val, end, nil)
			if err == nil && s.bo == s.outBO && s.implicit == s.outImplicit {
				err = s.copyRaw(off, next-off)
			}
			off = next
		case n == undefined:
			err = fail(CodeParse, "element (%04X,%04X) at byte %d: undefined length on VR %s", t.Group, t.Element, off, vr)
		default:
			if err = s.fits(fmt.Sprintf("element (%04X,%04X)", t.Group, t.Element), val, n, end, s.lim.MaxHeaderSize); err == nil {
				err = numericLength(t, vr, n)
			}
			if err == nil {
				err = s.emitValue(t, vr, val, n)
			}
			off = val + int64(n)
		}
		if err != nil {
			return off, err
		}
	}
	if untilItemEnd {
		if end >= s.size {
			return off, fail(CodeTruncated, "file ends inside a sequence item")
		}
		return off, fail(CodeElementLength, "item without a delimiter runs past the end of its sequence")
	}
	return off, nil
}

// unSequence walks a UN value that holds a sequence (CP-246), which is
// encoded in implicit VR little endian whatever the data set's encoding,
// and writes it out as a sequence in the data set's encoding.
func (s *scanner) unSequence(t tag.Tag, val int64, n uint32, end int64, depth int) (int64, error) {
	bo, implicit := s.bo, s.implicit
	s.bo, s.implicit = binary.LittleEndian, true
	defer func() { s.bo, s.implicit = bo, implicit }()
	lenAt := s.emitHeader(t, "SQ", n)
	start := s.out.Len()
	off, err := s.sequence(val, n, end, depth)
	s.patchLength(lenAt, start, n)
	return off, err
}

// dictVR is a tag's VR in the dictionary ("" for a private or unknown
// tag); for tags with several ("US or SS", "OB or OW"), the first.
func dictVR(t tag.Tag) string {
	if t.Group%2 == 1 {
		return ""
	}
	if info, err := tag.Find(t); err == nil && len(info.VRs) > 0 && validVR(info.VRs[0]) {
		return info.VRs[0]
	}
	return ""
}

// stringVR: the parser hands the value over as strings.
func stringVR(vr string) bool {
	switch tag.GetVRKind(tag.Tag{}, vr) {
	case tag.VRStringList, tag.VRString, tag.VRDate:
		return true
	}
	return false
}

// emitHeader writes an element header in the output encoding and returns
// where its length field is. A value too long for a short VR's length
// field goes out as UN (the parser then keeps its bytes).
func (s *scanner) emitHeader(t tag.Tag, vr string, n uint32) int {
	var b [12]byte
	s.outBO.PutUint16(b[0:], t.Group)
	s.outBO.PutUint16(b[2:], t.Element)
	if s.outImplicit || t.Group == 0xFFFE {
		s.outBO.PutUint32(b[4:], n)
		s.out.Write(b[:8])
		return s.out.Len() - 4
	}
	if !longVR(vr) && n > 0xFFFF {
		vr = "UN"
	}
	copy(b[4:6], vr)
	if longVR(vr) {
		s.outBO.PutUint32(b[8:], n)
		s.out.Write(b[:12])
		return s.out.Len() - 4
	}
	s.outBO.PutUint16(b[6:], uint16(n))
	s.out.Write(b[:8])
	return s.out.Len() - 2
}

// patchLength sets a defined length, written at lenAt, to what was
// written since start (re-encoding may have changed it).
func (s *scanner) patchLength(lenAt, start int, n uint32) {
	if n == undefined {
		return // it ends with a delimiter, which sequence and elems write
	}
	s.outBO.PutUint32(s.out.Bytes()[lenAt:], uint32(s.out.Len()-start))
}

// emitValue writes an element with a defined length, its value swapped
// into the output byte order where the two differ (in a CP-246 sequence
// of a big endian data set).
func (s *scanner) emitValue(t tag.Tag, vr string, val int64, n uint32) error {
	s.emitHeader(t, vr, n)
	start := s.out.Len()
	if err := s.copyRaw(val, int64(n)); err != nil {
		return err
	}
	if s.bo != s.outBO {
		size := map[string]int{"US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4, "FD": 8, "OD": 8}[vr]
		b := s.out.Bytes()[start:]
		for i := 0; size > 1 && i+size <= len(b); i += size {
			for j := 0; j < size/2; j++ {
				b[i+j], b[i+size-1-j] = b[i+size-1-j], b[i+j]
			}
		}
	}
	return nil
}

// copyRaw appends n bytes of the file at off to s.out (n has been checked
// against the file and the header limit).
func (s *scanner) copyRaw(off, n int64) error {
	if n == 0 {
		return nil // a bytes.Reader answers io.EOF to an empty read at its end
	}
	s.out.Grow(int(n))
	b := s.out.AvailableBuffer()[:n]
	if _, err := s.r.ReadAt(b, off); err != nil {
		return fail(CodeUnreadable, "read at byte %d: %v", off, err)
	}
	s.out.Write(b)
	return nil
}

// numericLength: the parser reads numbers until the length is used up, so
// a length that is not a whole number of values makes it read past it.
func numericLength(t tag.Tag, vr string, n uint32) error {
	size := map[string]uint32{"US": 2, "SS": 2, "AT": 4, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "OW": 2}[vr]
	if size != 0 && n%size != 0 {
		return fail(CodeParse, "element (%04X,%04X) %s has length %d, not a multiple of %d", t.Group, t.Element, vr, n, size)
	}
	return nil
}

// sequence walks a sequence's items, writing them to s.out (its header
// is the caller's).
func (s *scanner) sequence(off int64, n uint32, end int64, depth int) (int64, error) {
	if depth > s.lim.MaxDepth {
		return off, fail(CodeHeaderTooLarge, "sequences nested deeper than %d", s.lim.MaxDepth)
	}
	seqEnd := end
	if n != undefined {
		if err := s.fits("sequence", off, n, end, s.lim.MaxHeaderSize); err != nil {
			return off, err
		}
		seqEnd = off + int64(n)
	}
	for {
		if n != undefined && off == seqEnd {
			return off, nil
		}
		t, _, in, hl, err := s.header(off, seqEnd)
		if err != nil {
			return off, err
		}
		if err := s.count(); err != nil {
			return off, err
		}
		switch {
		case t == tagSeqEnd && n == undefined:
			s.emitHeader(t, "", 0)
			return off + hl, nil
		case t != tagItem:
			return off, fail(CodeParse, "(%04X,%04X) at byte %d where a sequence item belongs", t.Group, t.Element, off)
		}
		val := off + hl
		lenAt := s.emitHeader(t, "", in)
		start := s.out.Len()
		if in == undefined {
			off, err = s.elems(val, seqEnd, depth, false, true)
		} else {
			if err := s.fits("sequence item", val, in, seqEnd, s.lim.MaxHeaderSize); err != nil {
				return off, err
			}
			off, err = s.elems(val, val+int64(in), depth, false, false)
		}
		if err != nil {
			return off, err
		}
		s.patchLength(lenAt, start, in)
	}
}

// items walks a list of raw items (encapsulated pixel data, or an OB/OW of
// undefined length) up to its sequence delimiter; keep receives each
// item's value.
func (s *scanner) items(off, end int64, keep func(span) error) (int64, error) {
	for {
		b, err := s.at(off, 8, end)
		if err != nil {
			if CodeOf(err) == CodeTruncated {
				return off, fail(CodeTruncated, "file ends inside encapsulated data (no sequence delimiter)")
			}
			return off, err
		}
		t := tag.Tag{Group: s.bo.Uint16(b), Element: s.bo.Uint16(b[2:])}
		n := s.bo.Uint32(b[4:])
		if err := s.count(); err != nil {
			return off, err
		}
		switch {
		case t == tagSeqEnd:
			if n != 0 {
				return off, fail(CodeParse, "sequence delimiter at byte %d has a non-zero length", off)
			}
			return off + 8, nil
		case t != tagItem:
			return off, fail(CodeParse, "(%04X,%04X) at byte %d where an item of encapsulated data belongs", t.Group, t.Element, off)
		case n == undefined:
			return off, fail(CodeParse, "item of encapsulated data at byte %d has an undefined length", off)
		}
		if err := s.fits("fragment", off+8, n, end, s.lim.MaxFileSize); err != nil {
			return off, err
		}
		if keep != nil {
			if err := keep(span{off + 8, int64(n)}); err != nil {
				return off, err
			}
		}
		off += 8 + int64(n)
	}
}

// pixelData records the top-level Pixel Data element and checks it.
func (s *scanner) pixelData(elemAt, val int64, vr string, n uint32) (int64, error) {
	l := s.layout
	l.pixelAt = elemAt
	p := &pixelLoc{vr: vr}
	l.pixel = p
	if !l.syntax.Supported() {
		// Refused for its syntax anyway (Check): the encapsulation its
		// syntax implies is not held against it, only its lengths.
		if n != undefined {
			if err := s.fits("Pixel Data", val, n, s.size, s.lim.MaxFileSize); err != nil {
				return val, err
			}
			p.value = span{val, int64(n)}
			return val + int64(n), nil
		}
		p.encapsulated = true
		return s.items(val, s.size, func(sp span) error { p.frags = append(p.frags, sp); return nil })
	}
	if n != undefined {
		if l.syntax.encaps {
			return val, fail(CodeParse, "transfer syntax %s needs encapsulated Pixel Data, it has a defined length", l.syntax.UID)
		}
		if err := s.fits("Pixel Data", val, n, s.size, s.lim.MaxFileSize); err != nil {
			return val, err
		}
		p.value = span{val, int64(n)}
		return val + int64(n), nil
	}
	if !l.syntax.encaps {
		return val, fail(CodeParse, "encapsulated Pixel Data in a native transfer syntax (%s)", l.syntax.UID)
	}
	first := true
	end, err := s.items(val, s.size, func(sp span) error {
		if first {
			first = false
			if sp.n%4 != 0 {
				return fail(CodeParse, "basic offset table length %d is not a multiple of 4", sp.n)
			}
			p.offsets = make([]byte, sp.n)
			if _, err := s.r.ReadAt(p.offsets, sp.off); err != nil {
				return fail(CodeUnreadable, "read basic offset table: %v", err)
			}
			return nil
		}
		p.frags = append(p.frags, sp)
		return nil
	})
	if err != nil {
		return end, err
	}
	if first {
		return end, fail(CodeParse, "encapsulated Pixel Data has no basic offset table item")
	}
	p.encapsulated = true
	return end, nil
}
