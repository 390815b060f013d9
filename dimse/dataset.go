package dimse

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrDataSet marks a data set that cannot be parsed: truncated, or with
// lengths that contradict each other.
var ErrDataSet = errors.New("dimse: data set cannot be parsed")

// DataSetInfo is what CheckDataSet learnt of a data set.
type DataSetInfo struct {
	SOPClass, SOPInstance string
	Elements              int
}

// DataSetLimits bound CheckDataSet.
type DataSetLimits struct {
	MaxElements int   // default 1,000,000
	MaxDepth    int   // sequence nesting, default 32
	MaxInflated int64 // deflated syntaxes: bytes after inflation, default 4 GiB
}

const (
	tsImplicitLE = "1.2.840.10008.1.2"
	tsExplicitBE = "1.2.840.10008.1.2.2"
	tsDeflatedLE = "1.2.840.10008.1.2.1.99"
)

// CheckDataSet reads a data set to its end and checks its structure: every
// element's length fits, every sequence and item is closed, nothing is
// cut short. Values are skipped, not held: memory stays small whatever the
// size. It does not interpret pixel data; the decoder does that later.
// Structural problems are ErrDataSet; an error of r itself is returned
// unchanged.
func CheckDataSet(r io.Reader, ts string, lim DataSetLimits) (DataSetInfo, error) {
	if lim.MaxElements == 0 {
		lim.MaxElements = 1_000_000
	}
	if lim.MaxDepth == 0 {
		lim.MaxDepth = 32
	}
	if lim.MaxInflated == 0 {
		lim.MaxInflated = 4 << 30
	}
	br := bufio.NewReaderSize(r, 256<<10)
	w := &walker{bo: binary.LittleEndian, implicit: ts == tsImplicitLE, lim: lim}
	w.r = br
	if ts == tsExplicitBE {
		w.bo = binary.BigEndian
	}
	var zr io.ReadCloser
	if ts == tsDeflatedLE {
		zr = flate.NewReader(br)
		w.r = bufio.NewReaderSize(io.LimitReader(zr, lim.MaxInflated), 32<<10)
	}
	err := w.dataset(0, false)
	if err == nil && zr != nil {
		// The deflate stream may end after padding; the rest is not ours.
		_, _ = io.Copy(io.Discard, br)
	}
	if err != nil {
		var ce flate.CorruptInputError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			err = fmt.Errorf("%w: truncated after %d elements: %w", ErrDataSet, w.info.Elements, io.ErrUnexpectedEOF)
		case errors.As(err, &ce):
			err = fmt.Errorf("%w: deflate stream: %w", ErrDataSet, err)
		}
		// Any other error is the reader's (the association failing), not
		// the data set's, and is returned as it is.
		// Read the rest so a caller tee-ing the stream sees all of it.
		_, _ = io.Copy(io.Discard, br)
		return w.info, err
	}
	return w.info, nil
}

type walker struct {
	r        *bufio.Reader
	bo       binary.ByteOrder
	implicit bool
	lim      DataSetLimits
	info     DataSetInfo
}

const undefined = 0xFFFFFFFF

type elemHeader struct {
	group, elem uint16
	vr          string
	length      uint32
}

func (w *walker) header() (elemHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(w.r, b[:]); err != nil {
		return elemHeader{}, err
	}
	h := elemHeader{group: w.bo.Uint16(b[:]), elem: w.bo.Uint16(b[2:])}
	if h.group == 0xFFFE || w.implicit {
		h.length = w.bo.Uint32(b[4:])
		return h, nil
	}
	h.vr = string(b[4:6])
	switch h.vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		var l [4]byte
		if _, err := io.ReadFull(w.r, l[:]); err != nil {
			return h, err
		}
		h.length = w.bo.Uint32(l[:])
	default:
		if h.vr[0] < 'A' || h.vr[0] > 'Z' || h.vr[1] < 'A' || h.vr[1] > 'Z' {
			return h, fmt.Errorf("%w: element (%04x,%04x) has no valid VR", ErrDataSet, h.group, h.elem)
		}
		h.length = uint32(w.bo.Uint16(b[6:]))
	}
	return h, nil
}

// dataset walks elements until EOF (top level) or an item delimiter.
func (w *walker) dataset(depth int, inItem bool) error {
	for {
		if !inItem {
			if _, err := w.r.Peek(1); err == io.EOF {
				return nil
			}
		}
		h, err := w.header()
		if err != nil {
			return err
		}
		if h.group == 0xFFFE {
			if inItem && h.elem == 0xE00D {
				return nil
			}
			return fmt.Errorf("%w: unexpected (fffe,%04x) in a data set", ErrDataSet, h.elem)
		}
		w.info.Elements++
		if w.info.Elements > w.lim.MaxElements {
			return fmt.Errorf("%w: more than %d elements", ErrDataSet, w.lim.MaxElements)
		}
		if h.length == undefined {
			if !w.implicit && h.vr != "SQ" && h.vr != "OB" && h.vr != "OW" && h.vr != "UN" {
				return fmt.Errorf("%w: element (%04x,%04x) VR %s with undefined length", ErrDataSet, h.group, h.elem, h.vr)
			}
			// A UN element of undefined length holds a sequence encoded
			// in implicit VR little endian (PS3.5 6.2.2).
			saved := w.implicit
			if h.vr == "UN" {
				w.implicit = true
			}
			err := w.items(depth + 1)
			w.implicit = saved
			if err != nil {
				return err
			}
			continue
		}
		if h.group == 0x0008 && (h.elem == 0x0016 || h.elem == 0x0018) && h.length <= 64 && depth == 0 {
			v := make([]byte, h.length)
			if _, err := io.ReadFull(w.r, v); err != nil {
				return err
			}
			s := strings.TrimRight(string(v), "\x00 ")
			if h.elem == 0x0016 {
				w.info.SOPClass = s
			} else {
				w.info.SOPInstance = s
			}
			continue
		}
		if err := w.skip(int64(h.length)); err != nil {
			return err
		}
	}
}

func (w *walker) skip(n int64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := w.r.Discard(k)
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// items walks the items of an undefined-length element (a sequence or
// encapsulated pixel data) up to its sequence delimiter.
func (w *walker) items(depth int) error {
	if depth > w.lim.MaxDepth {
		return fmt.Errorf("%w: sequences nested deeper than %d", ErrDataSet, w.lim.MaxDepth)
	}
	for {
		h, err := w.header()
		if err != nil {
			return err
		}
		switch {
		case h.group == 0xFFFE && h.elem == 0xE0DD:
			return nil
		case h.group == 0xFFFE && h.elem == 0xE000:
			if h.length == undefined {
				if err := w.dataset(depth, true); err != nil {
					return err
				}
			} else if err := w.skip(int64(h.length)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: (%04x,%04x) where an item was expected", ErrDataSet, h.group, h.elem)
		}
	}
}
