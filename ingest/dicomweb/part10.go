package dicomweb

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Instance is what the intake learned about one received part: the UIDs
// a STOW-RS response names it by. They identify a study, never a patient,
// but stay out of logs all the same.
type Instance struct {
	SOPClassUID      string
	SOPInstanceUID   string
	TransferSyntax   string
	StudyInstanceUID string
}

// formatError is a part that is not a complete, well-formed DICOM Part 10
// file: the sender is told "cannot understand" (C000).
type formatError struct{ msg string }

func (e *formatError) Error() string { return "not a valid DICOM Part 10 file: " + e.msg }

func bad(format string, args ...any) error { return &formatError{msg: fmt.Sprintf(format, args...)} }

// partLimits bound what checking one part may cost. Nothing a part claims
// is allocated: values are skipped as they stream past, and only the few
// UIDs the response needs (64 bytes each) are kept.
type partLimits struct {
	maxMeta     int   // bytes of the file meta group
	maxDepth    int   // sequence nesting
	maxInflated int64 // bytes of a deflated data set once inflated
}

var defaultPartLimits = partLimits{maxMeta: 64 << 10, maxDepth: 16, maxInflated: 4 << 30}

const (
	tagItem        = 0xFFFEE000
	tagItemDelim   = 0xFFFEE00D
	tagSeqDelim    = 0xFFFEE0DD
	tagPixelData   = 0x7FE00010
	tagStudyUID    = 0x0020000D
	tagSOPClass    = 0x00080016
	tagSOPInst     = 0x00080018
	tagMetaSOPCls  = 0x00020002
	tagMetaSOPInst = 0x00020003
	tagMetaTS      = 0x00020010
	undefinedLen   = 0xFFFFFFFF
	maxUIDValue    = 128 // a UID is at most 64 characters; leave room for odd padding
)

// checkPart reads one part to its end and checks, as it streams past, that
// it is a complete DICOM Part 10 file: the preamble and "DICM", a file meta
// group naming the SOP class, SOP instance and transfer syntax, then a data
// set whose every element fits (walked in the transfer syntax's encoding,
// sequences and encapsulated pixel data included, a deflated data set
// inflated on the way) up to the end of the part. A file cut short, a
// forged length or trailing garbage fails with a *formatError. Errors of r
// itself (the network, the sink behind a tee) are returned wrapped.
func checkPart(r io.Reader, lim partLimits) (Instance, error) {
	var inst Instance
	br := bufio.NewReaderSize(r, 64<<10)
	w := &walker{r: br, bo: binary.LittleEndian, lim: lim, inst: &inst}
	if err := w.meta(); err != nil {
		return inst, err
	}
	implicit := false
	switch inst.TransferSyntax {
	case "1.2.840.10008.1.2":
		implicit = true
	case "1.2.840.10008.1.2.2":
		w.bo = binary.BigEndian
	case "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95": // deflated data sets
		fr := flate.NewReader(br)
		defer fr.Close()
		lr := &inflateLimit{r: fr, left: lim.maxInflated}
		w.r = bufio.NewReaderSize(lr, 64<<10)
		w.pos = 0
	}
	if err := w.elems(0, implicit, toEOF); err != nil {
		return inst, err
	}
	if w.r != br {
		// The deflate stream ended; writers pad after it (seen: 8 bytes),
		// which the decoder ignores too. Read it so it reaches the spool.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return inst, w.readErr(err)
		}
	}
	// PS3.10 wants the SOP UIDs in the file meta group; some writers leave
	// them to the data set, which the decoder accepts.
	if inst.SOPClassUID == "" {
		inst.SOPClassUID = w.dsClass
	}
	if inst.SOPInstanceUID == "" {
		inst.SOPInstanceUID = w.dsInst
	}
	if !validUID(inst.SOPClassUID) || !validUID(inst.SOPInstanceUID) {
		return inst, bad("no valid SOP Class and SOP Instance UID in the file meta group or the data set")
	}
	return inst, nil
}

type inflateLimit struct {
	r    io.Reader
	left int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, bad("deflated data set inflates beyond the limit")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return n, bad("corrupt deflated data set: %v", err)
	}
	return n, err
}

type walker struct {
	r    *bufio.Reader
	pos  int64
	bo   binary.ByteOrder
	lim  partLimits
	inst *Instance
	buf  [12]byte
	// the data set's own SOP Class and Instance UIDs
	dsClass, dsInst string
}

// readErr turns the end of the part inside an element into a format
// error; errors of the transport (marked by the caller) pass through.
func (w *walker) readErr(err error) error {
	var te *transportError
	if errors.As(err, &te) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return bad("the part ends inside an element at byte %d", w.pos)
	}
	return err
}

// transportError marks errors of the reader feeding checkPart, so that a
// connection cut mid-part (io.ErrUnexpectedEOF from the multipart reader)
// is not mistaken for a file cut short.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (w *walker) full(n int) ([]byte, error) {
	b := w.buf[:n]
	k, err := io.ReadFull(w.r, b)
	w.pos += int64(k)
	if err != nil {
		return nil, w.readErr(err)
	}
	return b, nil
}

func (w *walker) skip(n int64) error {
	for n > 0 {
		d, err := w.r.Discard(int(min(n, 1<<30)))
		w.pos += int64(d)
		n -= int64(d)
		if err != nil {
			return w.readErr(err)
		}
	}
	return nil
}

// value reads a short value (a UID) that is kept.
func (w *walker) value(n uint32) (string, error) {
	if n > maxUIDValue {
		return "", bad("a UID at byte %d claims %d bytes", w.pos, n)
	}
	b := make([]byte, n)
	k, err := io.ReadFull(w.r, b)
	w.pos += int64(k)
	if err != nil {
		return "", w.readErr(err)
	}
	return strings.TrimRight(string(b), "\x00 "), nil
}

type header struct {
	tag    uint32
	vr     string
	length uint32
}

// longVR: explicit VRs with a reserved field and a 4-byte length.
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

func (w *walker) header(implicit bool) (header, error) {
	b, err := w.full(4)
	if err != nil {
		return header{}, err
	}
	h := header{tag: uint32(w.bo.Uint16(b))<<16 | uint32(w.bo.Uint16(b[2:]))}
	if implicit || h.tag>>16 == 0xFFFE {
		if b, err = w.full(4); err != nil {
			return h, err
		}
		h.length = w.bo.Uint32(b)
		return h, nil
	}
	if b, err = w.full(2); err != nil {
		return h, err
	}
	if b[0] < 'A' || b[0] > 'Z' || b[1] < 'A' || b[1] > 'Z' {
		return h, bad("element (%04X,%04X) at byte %d has no explicit VR", h.tag>>16, h.tag&0xFFFF, w.pos-6)
	}
	h.vr = string(b)
	if longVR(h.vr) {
		if b, err = w.full(6); err != nil {
			return h, err
		}
		h.length = w.bo.Uint32(b[2:])
	} else {
		if b, err = w.full(2); err != nil {
			return h, err
		}
		h.length = uint32(w.bo.Uint16(b))
	}
	return h, nil
}

// meta checks the preamble and reads the file meta group (always explicit
// VR little endian), keeping the SOP class, SOP instance and transfer syntax.
func (w *walker) meta() error {
	b, err := w.r.Peek(132)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
			return bad("%d bytes, shorter than the 128-byte preamble and DICM prefix", len(b))
		}
		return err
	}
	if string(b[128:132]) != "DICM" {
		return bad("no DICM prefix after the 128-byte preamble")
	}
	_ = w.skip(132)
	start := w.pos
	for {
		p, err := w.r.Peek(2)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return bad("the part ends after the file meta group: no data set")
			}
			return err
		}
		if binary.LittleEndian.Uint16(p) != 0x0002 {
			break
		}
		h, err := w.header(false)
		if err != nil {
			return err
		}
		if h.length == undefinedLen || w.pos-start+int64(h.length) > int64(w.lim.maxMeta) {
			return bad("file meta group larger than %d bytes", w.lim.maxMeta)
		}
		if dst := w.kept(h.tag); dst != nil {
			if *dst, err = w.value(h.length); err != nil {
				return err
			}
			continue
		}
		if err := w.skip(int64(h.length)); err != nil {
			return err
		}
	}
	if !validUID(w.inst.TransferSyntax) {
		return bad("the file meta group has no valid Transfer Syntax UID (0002,0010)")
	}
	return nil
}

// Bounds of elems and items besides a position: the end of the part, or
// a delimiter.
const (
	toEOF   = -1
	toDelim = -2
)

// elems walks the elements of the top-level data set (end toEOF), of an
// item of undefined length (toDelim) or of defined length (end: the
// position where it ends).
func (w *walker) elems(depth int, implicit bool, end int64) error {
	top := end == toEOF
	for {
		switch {
		case top:
			if _, err := w.r.Peek(1); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return w.readErr(err)
			}
		case end >= 0 && w.pos == end:
			return nil
		}
		at := w.pos
		h, err := w.header(implicit)
		if err != nil {
			return err
		}
		if h.tag == tagItemDelim && end == toDelim {
			return nil
		}
		if h.tag>>16 == 0xFFFE {
			return bad("unexpected delimiter (%04X,%04X) at byte %d", h.tag>>16, h.tag&0xFFFF, at)
		}
		if top && h.tag>>16 == 0x0002 {
			return bad("file meta element (0002,%04X) inside the data set at byte %d", h.tag&0xFFFF, at)
		}
		if h.length == undefinedLen {
			switch {
			case h.tag == tagPixelData && (h.vr == "OB" || h.vr == "OW" || implicit):
				err = w.fragments(at)
			case implicit || h.vr == "SQ" || h.vr == "UN":
				// UN of undefined length holds implicit VR little endian items.
				err = w.items(depth+1, implicit || h.vr == "UN", toDelim)
			default:
				err = bad("element (%04X,%04X) at byte %d has VR %s and an undefined length", h.tag>>16, h.tag&0xFFFF, at, h.vr)
			}
			if err == nil && end >= 0 && w.pos > end {
				err = bad("element (%04X,%04X) at byte %d runs past the end of its item", h.tag>>16, h.tag&0xFFFF, at)
			}
			if err != nil {
				return err
			}
			continue
		}
		if end >= 0 && w.pos+int64(h.length) > end {
			return bad("element (%04X,%04X) at byte %d claims %d bytes, past the end of its item", h.tag>>16, h.tag&0xFFFF, at, h.length)
		}
		switch {
		case top && w.kept(h.tag) != nil:
			if *w.kept(h.tag), err = w.value(h.length); err != nil {
				return err
			}
		case h.vr == "SQ" && h.length > 0:
			if err := w.items(depth+1, implicit, w.pos+int64(h.length)); err != nil {
				return err
			}
		default:
			if err := w.skip(int64(h.length)); err != nil {
				return err
			}
		}
	}
}

// items walks the items of a sequence, up to its delimiter (end toDelim)
// or its defined end.
func (w *walker) items(depth int, implicit bool, end int64) error {
	if depth > w.lim.maxDepth {
		return bad("sequences nested deeper than %d at byte %d", w.lim.maxDepth, w.pos)
	}
	for {
		if end >= 0 && w.pos == end {
			return nil
		}
		at := w.pos
		if end >= 0 && at+8 > end {
			return bad("item header at byte %d crosses the end of its sequence", at)
		}
		tag, n, err := w.item()
		if err != nil {
			return err
		}
		switch {
		case tag == tagSeqDelim && end == toDelim:
			return nil
		case tag != tagItem:
			return bad("sequence holds (%04X,%04X) instead of an item at byte %d", tag>>16, tag&0xFFFF, at)
		case n == undefinedLen:
			if err := w.elems(depth, implicit, toDelim); err != nil {
				return err
			}
			if end >= 0 && w.pos > end {
				return bad("item at byte %d runs past the end of its sequence", at)
			}
		default:
			if end >= 0 && w.pos+int64(n) > end {
				return bad("item at byte %d claims %d bytes, past the end of its sequence", at, n)
			}
			if err := w.elems(depth, implicit, w.pos+int64(n)); err != nil {
				return err
			}
		}
	}
}

// fragments walks encapsulated pixel data: items of defined length (the
// offset table, then the fragments) up to the sequence delimiter.
func (w *walker) fragments(at int64) error {
	for {
		tag, n, err := w.item()
		if err != nil {
			return err
		}
		switch {
		case tag == tagSeqDelim:
			return nil
		case tag != tagItem || n == undefinedLen:
			return bad("encapsulated pixel data at byte %d holds a malformed fragment", at)
		}
		if err := w.skip(int64(n)); err != nil {
			return err
		}
	}
}

// kept is where the value of an element the walker keeps goes (file meta
// group, or top level of the data set), or nil for the rest.
func (w *walker) kept(tag uint32) *string {
	switch tag {
	case tagMetaSOPCls:
		return &w.inst.SOPClassUID
	case tagMetaSOPInst:
		return &w.inst.SOPInstanceUID
	case tagMetaTS:
		return &w.inst.TransferSyntax
	case tagStudyUID:
		return &w.inst.StudyInstanceUID
	case tagSOPClass:
		return &w.dsClass
	case tagSOPInst:
		return &w.dsInst
	}
	return nil
}

// item reads an item or delimiter header: tag and length.
func (w *walker) item() (tag, n uint32, err error) {
	b, err := w.full(8)
	if err != nil {
		return 0, 0, err
	}
	return uint32(w.bo.Uint16(b))<<16 | uint32(w.bo.Uint16(b[2:])), w.bo.Uint32(b[4:]), nil
}

// validUID: 1-64 characters, digits in dot-separated components.
func validUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= '0' && c <= '9':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot
}

// isTransport reports an error that came from below the walker (the
// multipart reader, the network, the spool behind a tee) rather than from
// the file's content.
func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}
