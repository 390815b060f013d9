package resultobj

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// This file is a small Part 10 writer: explicit VR little endian, elements
// sorted by tag, every value padded to even length as its VR requires,
// sequences and items of defined length, and a file meta group with a
// correct group length. The output is a pure function of the data set, so
// the same result always encodes to the same bytes.
//
// suyashkumar/dicom's writer (v1.1.0) is not used: it writes elements in
// the order given rather than sorting them, pads UC and UR with NUL instead
// of a space, always writes sequences with undefined length, and needs
// every value typed through its dictionary; the objects here need none of
// that machinery, and its parser still reads every object back in the
// tests.

const (
	tsExplicitLE = "1.2.840.10008.1.2.1"
	itemTag      = 0xFFFEE000
)

// elem is one attribute: a value of a VR, or (SQ) items.
type elem struct {
	tag   uint32
	vr    string
	val   []byte
	items []dataset
}

// dataset is a list of attributes, in any order; encoding sorts it.
type dataset []elem

func (d *dataset) add(tag uint32, vr string, val []byte) {
	*d = append(*d, elem{tag: tag, vr: vr, val: val})
}

// str adds a text value (possibly empty: a type 2 attribute present
// without a value).
func (d *dataset) str(tag uint32, vr, s string) { d.add(tag, vr, []byte(s)) }

func (d *dataset) us(tag uint32, v uint16) {
	d.add(tag, "US", binary.LittleEndian.AppendUint16(nil, v))
}

func (d *dataset) ul(tag uint32, v uint32) {
	d.add(tag, "UL", binary.LittleEndian.AppendUint32(nil, v))
}

// seq adds a sequence; no items is an empty (type 2) sequence.
func (d *dataset) seq(tag uint32, items ...dataset) {
	*d = append(*d, elem{tag: tag, vr: "SQ", items: items})
}

// longVR reports the VRs with a 2-byte reserved field and a 4-byte length
// in explicit VR (PS3.5 7.1.2).
func longVR(vr string) bool {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		return true
	}
	return false
}

// padByte is what makes an odd-length value even: NUL for UI and the
// binary VRs, a space for text (PS3.5 6.2).
func padByte(vr string) byte {
	switch vr {
	case "UI", "OB", "UN":
		return 0
	}
	return ' '
}

// encode writes d in explicit VR little endian.
func (d dataset) encode(w *bytes.Buffer) error {
	sorted := slices.Clone(d)
	slices.SortStableFunc(sorted, func(a, b elem) int {
		switch {
		case a.tag < b.tag:
			return -1
		case a.tag > b.tag:
			return 1
		}
		return 0
	})
	for i, e := range sorted {
		if i > 0 && sorted[i-1].tag == e.tag {
			return fmt.Errorf("attribute %s appears twice", tagString(e.tag))
		}
		if err := e.encode(w); err != nil {
			return err
		}
	}
	return nil
}

func (e elem) encode(w *bytes.Buffer) error {
	if len(e.vr) != 2 {
		return fmt.Errorf("attribute %s: bad VR %q", tagString(e.tag), e.vr)
	}
	val := e.val
	if e.vr == "SQ" {
		var b bytes.Buffer
		for i, it := range e.items {
			var ib bytes.Buffer
			if err := it.encode(&ib); err != nil {
				return fmt.Errorf("%s item %d: %w", tagString(e.tag), i+1, err)
			}
			writeTag(&b, itemTag)
			b.Write(binary.LittleEndian.AppendUint32(nil, uint32(ib.Len())))
			b.Write(ib.Bytes())
		}
		val = b.Bytes()
	} else if len(val)%2 == 1 {
		val = append(val[:len(val):len(val)], padByte(e.vr))
	}
	writeTag(w, e.tag)
	w.WriteString(e.vr)
	if longVR(e.vr) {
		if int64(len(val)) >= 0xFFFFFFFF {
			return fmt.Errorf("attribute %s: %d bytes do not fit a 32-bit length", tagString(e.tag), len(val))
		}
		w.Write([]byte{0, 0})
		w.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(val))))
	} else {
		if len(val) > 0xFFFE {
			return fmt.Errorf("attribute %s (%s): %d bytes do not fit a 16-bit length", tagString(e.tag), e.vr, len(val))
		}
		w.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(val))))
	}
	w.Write(val)
	return nil
}

func writeTag(w *bytes.Buffer, t uint32) {
	w.Write(binary.LittleEndian.AppendUint16(nil, uint16(t>>16)))
	w.Write(binary.LittleEndian.AppendUint16(nil, uint16(t)))
}

func tagString(t uint32) string { return fmt.Sprintf("(%04X,%04X)", t>>16, t&0xFFFF) }

// part10 wraps a data set (without group 0002) in a DICOM file: preamble,
// "DICM", the file meta information group, then the data set.
func part10(sopClass, sopInstance string, ds dataset) ([]byte, error) {
	var meta dataset
	meta.add(0x00020001, "OB", []byte{0, 1})
	meta.str(0x00020002, "UI", sopClass)
	meta.str(0x00020003, "UI", sopInstance)
	meta.str(0x00020010, "UI", tsExplicitLE)
	meta.str(0x00020012, "UI", ImplementationClassUID)
	meta.str(0x00020013, "SH", ImplementationVersionName)
	var mb bytes.Buffer
	if err := meta.encode(&mb); err != nil {
		return nil, fmt.Errorf("file meta: %w", err)
	}
	var out bytes.Buffer
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	var gl dataset
	gl.ul(0x00020000, uint32(mb.Len()))
	if err := gl.encode(&out); err != nil {
		return nil, err
	}
	out.Write(mb.Bytes())
	if err := ds.encode(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
