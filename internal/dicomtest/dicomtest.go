// Package dicomtest writes small synthetic DICOM files for tests and fuzz
// seeds: every byte is under the test's control, so hostile variants
// (wrong lengths, missing pixels, odd syntaxes) are easy to make. Real films
// for tests come from the shared data set, never from this repository.
package dicomtest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"sort"
	"strconv"
	"strings"
)

// Transfer syntaxes the writer can encode natively.
const (
	ImplicitLE = "1.2.840.10008.1.2"
	ExplicitLE = "1.2.840.10008.1.2.1"
	ExplicitBE = "1.2.840.10008.1.2.2"
	DeflatedLE = "1.2.840.10008.1.2.1.99"
)

// Tag builds a tag number.
func Tag(group, elem uint16) uint32 { return uint32(group)<<16 | uint32(elem) }

// Elem is one data element. Value is little endian; the writer swaps
// numeric VRs for big endian.
type Elem struct {
	Tag   uint32
	VR    string
	Value []byte
	// Undefined writes an undefined length (encapsulated pixel data).
	Undefined bool
	// Length overrides the written length (to fake hostile files) when >= 0.
	Length int64
}

// Str is a text element padded to even length.
func Str(tag uint32, vr, s string) Elem {
	b := []byte(s)
	if len(b)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" {
			pad = 0
		}
		b = append(b, pad)
	}
	return Elem{Tag: tag, VR: vr, Value: b, Length: -1}
}

// DS is a decimal string element.
func DS(tag uint32, vs ...float64) Elem {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatFloat(v, 'g', 10, 64)
	}
	return Str(tag, "DS", strings.Join(s, "\\"))
}

// US is an unsigned short element.
func US(tag uint32, vs ...uint16) Elem {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return Elem{Tag: tag, VR: "US", Value: b, Length: -1}
}

// Raw is an element with raw bytes.
func Raw(tag uint32, vr string, b []byte) Elem { return Elem{Tag: tag, VR: vr, Value: b, Length: -1} }

// Seq is a sequence of defined length whose items (of defined length) hold
// the given elements, encoded in explicit VR little endian.
func Seq(tag uint32, items ...[]Elem) Elem {
	var b bytes.Buffer
	for _, it := range items {
		var ib bytes.Buffer
		sort.SliceStable(it, func(i, j int) bool { return it[i].Tag < it[j].Tag })
		for _, e := range it {
			writeElem(&ib, e, binary.LittleEndian, false)
		}
		binary.Write(&b, binary.LittleEndian, uint16(0xFFFE))
		binary.Write(&b, binary.LittleEndian, uint16(0xE000))
		binary.Write(&b, binary.LittleEndian, uint32(ib.Len()))
		b.Write(ib.Bytes())
	}
	return Elem{Tag: tag, VR: "SQ", Value: b.Bytes(), Length: -1}
}

// LUTItem is the item of a Modality or VOI LUT Sequence.
func LUTItem(first, bits int, data []uint16) []Elem {
	n := len(data)
	if n == 65536 {
		n = 0
	}
	w := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(w[2*i:], v)
	}
	return []Elem{US(Tag(0x0028, 0x3002), uint16(n), uint16(first), uint16(bits)), Raw(Tag(0x0028, 0x3006), "OW", w)}
}

// AsUN is an element written with VR UN: its value in the byte order
// of the transfer syntax (big endian, if big), as PS3.5 6.2.2 keeps it. A
// sequence's value becomes implicit VR little endian, as a UN sequence's
// must be.
func AsUN(e Elem, big bool) Elem {
	v := e.Value
	switch {
	case e.VR == "SQ":
		v = implicitItems(e.Value)
	case big:
		v = swap(e.VR, v)
	}
	return Elem{Tag: e.Tag, VR: "UN", Value: v, Undefined: e.Undefined, Length: e.Length}
}

// UNSequence is a sequence written as UN of undefined length (CP-246):
// items of undefined length, in implicit VR little endian whatever the
// file's transfer syntax, closed by delimiters.
func UNSequence(tag uint32, items ...[]Elem) Elem {
	var b bytes.Buffer
	for _, it := range items {
		sort.SliceStable(it, func(i, j int) bool { return it[i].Tag < it[j].Tag })
		b.Write([]byte{0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF})
		for _, e := range it {
			writeElem(&b, e, binary.LittleEndian, true)
		}
		b.Write([]byte{0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0})
	}
	b.Write([]byte{0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0})
	return Elem{Tag: tag, VR: "UN", Value: b.Bytes(), Undefined: true, Length: -1}
}

// implicitItems re-encodes the items of a sequence value written by Seq
// (explicit VR little endian, defined lengths) in implicit VR little
// endian.
func implicitItems(v []byte) []byte {
	var out bytes.Buffer
	for len(v) >= 8 {
		n := int(binary.LittleEndian.Uint32(v[4:]))
		item := v[8 : 8+n]
		var ib bytes.Buffer
		for len(item) >= 8 {
			t := uint32(binary.LittleEndian.Uint16(item))<<16 | uint32(binary.LittleEndian.Uint16(item[2:]))
			vr := string(item[4:6])
			hl, vl := 8, int(binary.LittleEndian.Uint16(item[6:]))
			if longVR[vr] {
				hl, vl = 12, int(binary.LittleEndian.Uint32(item[8:]))
			}
			val := item[hl : hl+vl]
			if vr == "SQ" {
				val = implicitItems(val)
			}
			writeElem(&ib, Raw(t, vr, val), binary.LittleEndian, true)
			item = item[hl+vl:]
		}
		binary.Write(&out, binary.LittleEndian, []uint16{0xFFFE, 0xE000})
		binary.Write(&out, binary.LittleEndian, uint32(ib.Len()))
		out.Write(ib.Bytes())
		v = v[8+n:]
	}
	return out.Bytes()
}

// Encapsulated is pixel data split into fragments, with an empty basic
// offset table.
func Encapsulated(frags ...[]byte) Elem {
	var b bytes.Buffer
	item := func(v []byte) {
		binary.Write(&b, binary.LittleEndian, uint16(0xFFFE))
		binary.Write(&b, binary.LittleEndian, uint16(0xE000))
		binary.Write(&b, binary.LittleEndian, uint32(len(v)))
		b.Write(v)
	}
	item(nil)
	for _, f := range frags {
		if len(f)%2 == 1 {
			f = append(append([]byte(nil), f...), 0)
		}
		item(f)
	}
	binary.Write(&b, binary.LittleEndian, uint16(0xFFFE))
	binary.Write(&b, binary.LittleEndian, uint16(0xE0DD))
	binary.Write(&b, binary.LittleEndian, uint32(0))
	return Elem{Tag: Tag(0x7FE0, 0x0010), VR: "OB", Value: b.Bytes(), Undefined: true, Length: -1}
}

var longVR = map[string]bool{"OB": true, "OW": true, "OF": true, "OD": true, "OL": true, "SQ": true, "UT": true, "UN": true, "UC": true, "UR": true}

// File is a DICOM Part 10 file.
type File struct {
	TransferSyntax string
	SOPClassUID    string
	SOPInstanceUID string
	Elems          []Elem
	// NoPreamble drops the preamble and DICM magic.
	NoPreamble bool
	// DataSetSyntax, if set, encodes the data set in this syntax whatever
	// TransferSyntax says (as some writers do).
	DataSetSyntax string
}

// Bytes encodes the file.
func (f File) Bytes() []byte {
	var out bytes.Buffer
	if !f.NoPreamble {
		out.Write(make([]byte, 128))
		out.WriteString("DICM")
	}
	meta := []Elem{
		Raw(Tag(0x0002, 0x0001), "OB", []byte{0, 1}),
		Str(Tag(0x0002, 0x0002), "UI", f.SOPClassUID),
		Str(Tag(0x0002, 0x0003), "UI", f.SOPInstanceUID),
		Str(Tag(0x0002, 0x0010), "UI", f.TransferSyntax),
		Str(Tag(0x0002, 0x0012), "UI", "1.2.826.0.1.3680043.10.1234.1"),
	}
	var mb bytes.Buffer
	for _, e := range meta {
		writeElem(&mb, e, binary.LittleEndian, false)
	}
	gl := Elem{Tag: Tag(0x0002, 0x0000), VR: "UL", Value: binary.LittleEndian.AppendUint32(nil, uint32(mb.Len())), Length: -1}
	writeElem(&out, gl, binary.LittleEndian, false)
	out.Write(mb.Bytes())

	enc := f.TransferSyntax
	if f.DataSetSyntax != "" {
		enc = f.DataSetSyntax
	}
	var bo binary.ByteOrder = binary.LittleEndian
	implicit := enc == ImplicitLE
	if enc == ExplicitBE {
		bo = binary.BigEndian
	}
	els := append([]Elem{
		Str(Tag(0x0008, 0x0016), "UI", f.SOPClassUID),
		Str(Tag(0x0008, 0x0018), "UI", f.SOPInstanceUID),
	}, f.Elems...)
	sort.SliceStable(els, func(i, j int) bool { return els[i].Tag < els[j].Tag })
	var ds bytes.Buffer
	for _, e := range els {
		writeElem(&ds, e, bo, implicit)
	}
	if f.TransferSyntax == DeflatedLE {
		zw, _ := flate.NewWriter(&out, flate.BestCompression)
		zw.Write(ds.Bytes())
		zw.Close()
		return out.Bytes()
	}
	out.Write(ds.Bytes())
	return out.Bytes()
}

func writeElem(w *bytes.Buffer, e Elem, bo binary.ByteOrder, implicit bool) {
	binary.Write(w, bo, uint16(e.Tag>>16))
	binary.Write(w, bo, uint16(e.Tag))
	v := e.Value
	if bo == binary.BigEndian {
		v = swap(e.VR, v)
	}
	n := uint32(len(v))
	if e.Undefined {
		n = 0xFFFFFFFF
	}
	if e.Length >= 0 {
		n = uint32(e.Length)
	}
	if implicit {
		binary.Write(w, bo, n)
	} else {
		w.WriteString(e.VR)
		if longVR[e.VR] {
			w.Write([]byte{0, 0})
			binary.Write(w, bo, n)
		} else {
			binary.Write(w, bo, uint16(n))
		}
	}
	w.Write(v)
}

// swap converts a little-endian value to big endian for numeric VRs.
func swap(vr string, v []byte) []byte {
	size := map[string]int{"US": 2, "SS": 2, "OW": 2, "UL": 4, "SL": 4, "FL": 4, "OF": 4, "FD": 8, "OD": 8}[vr]
	if size == 0 {
		return v
	}
	out := make([]byte, len(v))
	for i := 0; i+size <= len(v); i += size {
		for k := 0; k < size; k++ {
			out[i+k] = v[i+size-1-k]
		}
	}
	return out
}

// Image describes a synthetic gray film.
type Image struct {
	TransferSyntax      string
	Rows, Columns       int
	BitsAllocated       int // 8 or 16
	BitsStored, HighBit int
	PixelRepresentation int
	Photometric         string
	Pixels              []int // stored values, row-major
	Slope, Intercept    float64
	Center, Width       float64 // window, used when Width > 0
	VOIFunction         string
	Modality            string
	BodyPart, View      string
	Priority            string // Requested Procedure Priority
	SOPInstanceUID      string
	Frames              int
	// SamplesPerPixel is 1 (default) or 3; Pixels then holds interleaved
	// samples (or planes, with PlanarConfiguration 1).
	SamplesPerPixel     int
	PlanarConfiguration int
	Extra               []Elem
	// PixelData replaces the encoded pixels (encapsulated data, hostile bytes).
	PixelData *Elem
	// UN lists tags written with VR UN (explicit VR syntaxes), their
	// values as the transfer syntax encodes them: what an archive that
	// does not know a tag, or an old converter, writes.
	UN []uint32
}

// File builds the DICOM file for an image.
func (im Image) File() File {
	if im.TransferSyntax == "" {
		im.TransferSyntax = ExplicitLE
	}
	if im.BitsAllocated == 0 {
		im.BitsAllocated = 16
	}
	if im.BitsStored == 0 {
		im.BitsStored = im.BitsAllocated
	}
	if im.HighBit == 0 {
		im.HighBit = im.BitsStored - 1
	}
	if im.Photometric == "" {
		im.Photometric = "MONOCHROME2"
	}
	if im.Modality == "" {
		im.Modality = "DX"
	}
	if im.SOPInstanceUID == "" {
		im.SOPInstanceUID = "1.2.826.0.1.3680043.10.1234.2.1"
	}
	if im.Frames == 0 {
		im.Frames = 1
	}
	if im.SamplesPerPixel == 0 {
		im.SamplesPerPixel = 1
	}
	els := []Elem{
		Str(Tag(0x0008, 0x0060), "CS", im.Modality),
		Str(Tag(0x0020, 0x000D), "UI", "1.2.826.0.1.3680043.10.1234.3"),
		Str(Tag(0x0020, 0x000E), "UI", "1.2.826.0.1.3680043.10.1234.4"),
		US(Tag(0x0028, 0x0002), uint16(im.SamplesPerPixel)),
		Str(Tag(0x0028, 0x0004), "CS", im.Photometric),
		US(Tag(0x0028, 0x0010), uint16(im.Rows)),
		US(Tag(0x0028, 0x0011), uint16(im.Columns)),
		US(Tag(0x0028, 0x0100), uint16(im.BitsAllocated)),
		US(Tag(0x0028, 0x0101), uint16(im.BitsStored)),
		US(Tag(0x0028, 0x0102), uint16(im.HighBit)),
		US(Tag(0x0028, 0x0103), uint16(im.PixelRepresentation)),
	}
	if im.SamplesPerPixel > 1 {
		els = append(els, US(Tag(0x0028, 0x0006), uint16(im.PlanarConfiguration)))
	}
	if im.Frames > 1 {
		els = append(els, Str(Tag(0x0028, 0x0008), "IS", strconv.Itoa(im.Frames)))
	}
	if im.BodyPart != "" {
		els = append(els, Str(Tag(0x0018, 0x0015), "CS", im.BodyPart))
	}
	if im.View != "" {
		els = append(els, Str(Tag(0x0018, 0x5101), "CS", im.View))
	}
	if im.Priority != "" {
		els = append(els, Str(Tag(0x0040, 0x1003), "SH", im.Priority))
	}
	if im.Slope != 0 {
		els = append(els, DS(Tag(0x0028, 0x1053), im.Slope), DS(Tag(0x0028, 0x1052), im.Intercept))
	}
	if im.Width > 0 {
		els = append(els, DS(Tag(0x0028, 0x1050), im.Center), DS(Tag(0x0028, 0x1051), im.Width))
	}
	if im.VOIFunction != "" {
		els = append(els, Str(Tag(0x0028, 0x1056), "CS", im.VOIFunction))
	}
	if im.PixelData != nil {
		els = append(els, *im.PixelData)
	} else {
		els = append(els, im.nativePixels())
	}
	els = append(els, im.Extra...)
	for i, e := range els {
		for _, t := range im.UN {
			if e.Tag == t {
				els[i] = AsUN(e, im.TransferSyntax == ExplicitBE)
			}
		}
	}
	return File{TransferSyntax: im.TransferSyntax, SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1", SOPInstanceUID: im.SOPInstanceUID, Elems: els}
}

func (im Image) nativePixels() Elem {
	n := im.Rows * im.Columns * im.Frames * im.SamplesPerPixel
	if strings.HasSuffix(im.Photometric, "_422") {
		n = n * 2 / 3
	}
	mask := uint32(1)<<im.BitsStored - 1
	if im.BitsAllocated == 8 {
		b := make([]byte, n)
		for i := range b {
			if i < len(im.Pixels) {
				b[i] = byte(uint32(im.Pixels[i]) & mask)
			}
		}
		if len(b)%2 == 1 {
			b = append(b, 0)
		}
		return Raw(Tag(0x7FE0, 0x0010), "OB", b)
	}
	b := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		if i < len(im.Pixels) {
			binary.LittleEndian.PutUint16(b[2*i:], uint16((uint32(im.Pixels[i])&mask)<<(im.HighBit+1-im.BitsStored)))
		}
	}
	return Raw(Tag(0x7FE0, 0x0010), "OW", b)
}

// Bytes encodes the image's file.
func (im Image) Bytes() []byte { return im.File().Bytes() }
