package dimse

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// FileMeta is the part of a Part 10 file meta group storage needs.
type FileMeta struct {
	SOPClass, SOPInstance, TransferSyntax string
	// SourceAE is the Source Application Entity Title (0002,0016): the
	// calling AE title of the association that delivered the file.
	SourceAE string
}

// maxFileMeta bounds the file meta group a reader accepts.
const maxFileMeta = 64 << 10

func appendMetaElem(b []byte, elem uint16, vr string, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, 0x0002)
	b = binary.LittleEndian.AppendUint16(b, elem)
	b = append(b, vr...)
	if vr == "OB" {
		b = append(b, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	}
	return append(b, v...)
}

func pad(s string, with byte) []byte {
	b := []byte(s)
	if len(b)%2 == 1 {
		b = append(b, with)
	}
	return b
}

// EncodeFileMeta returns the preamble, "DICM" and the file meta group
// (PS3.10 7.1) with its group length, ready to be followed by the data set.
func EncodeFileMeta(m FileMeta) []byte {
	var g []byte
	g = appendMetaElem(g, 0x0001, "OB", []byte{0, 1})
	g = appendMetaElem(g, 0x0002, "UI", pad(m.SOPClass, 0))
	g = appendMetaElem(g, 0x0003, "UI", pad(m.SOPInstance, 0))
	g = appendMetaElem(g, 0x0010, "UI", pad(m.TransferSyntax, 0))
	g = appendMetaElem(g, 0x0012, "UI", pad(ImplementationClassUID, 0))
	g = appendMetaElem(g, 0x0013, "SH", pad(ImplementationVersion, ' '))
	if ae := strings.TrimSpace(m.SourceAE); ae != "" {
		g = appendMetaElem(g, 0x0016, "AE", pad(ae, ' '))
	}
	out := make([]byte, 128, 128+4+12+len(g))
	out = append(out, "DICM"...)
	out = appendMetaElem(out, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(g))))
	return append(out, g...)
}

// ErrNotPart10 marks input that is not a DICOM Part 10 file.
var ErrNotPart10 = errors.New("dimse: not a DICOM Part 10 file")

// ReadFileMeta reads the preamble and file meta group from r, leaving r at
// the first byte of the data set.
func ReadFileMeta(r *bufio.Reader) (FileMeta, error) {
	var m FileMeta
	var h [128 + 4 + 12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return m, fmt.Errorf("%w: %w", ErrNotPart10, err)
	}
	if string(h[128:132]) != "DICM" {
		return m, fmt.Errorf("%w: no DICM prefix", ErrNotPart10)
	}
	gl := h[132:]
	if binary.LittleEndian.Uint16(gl) != 2 || binary.LittleEndian.Uint16(gl[2:]) != 0 || string(gl[4:6]) != "UL" || binary.LittleEndian.Uint16(gl[6:]) != 4 {
		return m, fmt.Errorf("%w: file meta group does not start with its group length (0002,0000)", ErrNotPart10)
	}
	n := binary.LittleEndian.Uint32(gl[8:])
	if n > maxFileMeta {
		return m, fmt.Errorf("%w: file meta group of %d bytes", ErrNotPart10, n)
	}
	g := make([]byte, n)
	if _, err := io.ReadFull(r, g); err != nil {
		return m, fmt.Errorf("%w: file meta group cut short: %w", ErrNotPart10, err)
	}
	for len(g) > 0 {
		if len(g) < 8 {
			return m, fmt.Errorf("%w: file meta element cut short", ErrNotPart10)
		}
		elem, vr := binary.LittleEndian.Uint16(g[2:]), string(g[4:6])
		var vlen, off int
		switch vr {
		case "OB", "OW", "UN", "UT", "SQ", "UC", "UR", "OD", "OF", "OL", "OV":
			if len(g) < 12 {
				return m, fmt.Errorf("%w: file meta element cut short", ErrNotPart10)
			}
			vlen, off = int(binary.LittleEndian.Uint32(g[8:])), 12
		default:
			vlen, off = int(binary.LittleEndian.Uint16(g[6:])), 8
		}
		if vlen < 0 || off+vlen > len(g) {
			return m, fmt.Errorf("%w: file meta element (0002,%04x) overruns the group", ErrNotPart10, elem)
		}
		v := strings.TrimRight(string(g[off:off+vlen]), "\x00 ")
		switch elem {
		case 0x0002:
			m.SOPClass = v
		case 0x0003:
			m.SOPInstance = v
		case 0x0010:
			m.TransferSyntax = v
		case 0x0016:
			m.SourceAE = v
		}
		g = g[off+vlen:]
	}
	if m.SOPClass == "" || m.SOPInstance == "" || m.TransferSyntax == "" {
		return m, fmt.Errorf("%w: file meta lacks SOP class, SOP instance or transfer syntax", ErrNotPart10)
	}
	return m, nil
}
