package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SOF is what a JPEG (or JPEG-LS) frame header says, read in Go before any
// C decoder sees the codestream: it picks the decoder (by process and
// precision, not by the transfer syntax the file claims) and lets the frame
// size be checked before anything is allocated.
type SOF struct {
	Marker    byte // 0xC0..0xCF (JPEG), 0xF7 (JPEG-LS)
	Precision int
	Height    int
	Width     int
	Comps     int
}

// Lossless is JPEG process 14 (SOF3; SOF11 is its arithmetic-coded form).
func (s SOF) Lossless() bool { return s.Marker == 0xC3 || s.Marker == 0xCB }

// Arithmetic coding (SOF9..SOF11).
func (s SOF) Arithmetic() bool { return s.Marker >= 0xC9 && s.Marker <= 0xCB }

// Hierarchical processes (SOF5..7, SOF13..15) are not used in DICOM.
func (s SOF) Hierarchical() bool {
	return (s.Marker >= 0xC5 && s.Marker <= 0xC7) || (s.Marker >= 0xCD && s.Marker <= 0xCF)
}

var errNoSOI = errors.New("not a JPEG codestream (no SOI marker)")

// ReadSOF walks the markers of a JPEG or JPEG-LS codestream up to its
// frame header.
func ReadSOF(b []byte) (SOF, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return SOF{}, errNoSOI
	}
	i := 2
	for {
		for i < len(b) && b[i] == 0xFF && i+1 < len(b) && b[i+1] == 0xFF {
			i++ // fill bytes
		}
		if i+4 > len(b) {
			return SOF{}, errors.New("JPEG data ends before the frame header")
		}
		if b[i] != 0xFF {
			return SOF{}, fmt.Errorf("JPEG marker expected at byte %d", i)
		}
		m := b[i+1]
		if m == 0xD8 || m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			return SOF{}, fmt.Errorf("JPEG marker FF%02X before the frame header", m)
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return SOF{}, fmt.Errorf("JPEG marker FF%02X has a bad length %d", m, n)
		}
		seg := b[i+4 : i+2+n]
		isSOF := (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7
		if isSOF {
			if len(seg) < 6 {
				return SOF{}, errors.New("JPEG frame header too short")
			}
			s := SOF{Marker: m, Precision: int(seg[0]), Height: int(binary.BigEndian.Uint16(seg[1:])),
				Width: int(binary.BigEndian.Uint16(seg[3:])), Comps: int(seg[5])}
			if len(seg) < 6+3*s.Comps {
				return SOF{}, errors.New("JPEG frame header too short for its components")
			}
			if s.Height == 0 {
				return SOF{}, errors.New("JPEG frame height 0 (DNL marker) is not supported")
			}
			return s, nil
		}
		i += 2 + n
	}
}

// J2KInfo is the main header of a JPEG 2000 codestream.
type J2KInfo struct {
	JP2                  bool // wrapped in a JP2 file, not a bare codestream
	Width, Height, Comps int
	Precision            int
	Tiles                int
	Layers, Levels       int
	MCT                  bool // color is coded with a multi-component transform
	// HT: a High-Throughput JPEG 2000 (Part 15) codestream (Rsiz bit 14),
	// which must carry a CAP marker.
	HT bool

	PrecinctPackets          int64 // layers x components x precincts of the main COD
	Xsiz, Ysiz, XOsiz, YOsiz uint32

	// MinLevels is the fewest decomposition levels of the main header's
	// COD and COC markers: the most resolution levels a decode may leave
	// out (a tile's own COD or COC may still allow fewer).
	MinLevels int
	cocLevels int // fewest levels of the main header's COCs (32 if none)
}

// Limits on a JPEG 2000 main header: OpenJPEG sizes per-tile and per-packet
// structures from these fields before it decodes a byte, so a few hundred
// bytes of header could otherwise make it allocate gigabytes.
const (
	maxJ2KTiles   = 4096
	maxJ2KLayers  = 256
	maxJ2KPackets = 1 << 24
)

// ReadJ2K reads a JPEG 2000 main header (SIZ, COD) and checks it against
// the limits above.
func ReadJ2K(b []byte) (J2KInfo, error) {
	info := J2KInfo{cocLevels: 32}
	cs := b
	if len(b) >= 12 && string(b[4:8]) == "jP  " {
		info.JP2 = true
		var err error
		if cs, err = jp2Codestream(b); err != nil {
			return info, err
		}
	}
	if len(cs) < 4 || cs[0] != 0xFF || cs[1] != 0x4F || cs[2] != 0xFF || cs[3] != 0x51 {
		return info, errors.New("not a JPEG 2000 codestream (no SOC and SIZ markers)")
	}
	if len(cs) < 4+2+38 {
		return info, errors.New("JPEG 2000 SIZ marker truncated")
	}
	lsiz := int(binary.BigEndian.Uint16(cs[4:]))
	s := cs[6:]
	u32 := func(o int) uint32 { return binary.BigEndian.Uint32(s[o:]) }
	info.Xsiz, info.Ysiz, info.XOsiz, info.YOsiz = u32(2), u32(6), u32(10), u32(14)
	xt, yt, xto, yto := u32(18), u32(22), u32(26), u32(30)
	info.Comps = int(binary.BigEndian.Uint16(s[34:]))
	if lsiz != 38+3*info.Comps || len(cs) < 4+lsiz {
		return info, fmt.Errorf("JPEG 2000 SIZ length %d does not match %d components", lsiz, info.Comps)
	}
	if info.Xsiz <= info.XOsiz || info.Ysiz <= info.YOsiz || xt == 0 || yt == 0 || xto > info.XOsiz || yto > info.YOsiz ||
		uint64(xto)+uint64(xt) <= uint64(info.XOsiz) || uint64(yto)+uint64(yt) <= uint64(info.YOsiz) {
		return info, errors.New("JPEG 2000 SIZ has an impossible image or tile geometry")
	}
	info.HT = binary.BigEndian.Uint16(s[0:])&0x4000 != 0
	info.Width, info.Height = int(info.Xsiz-info.XOsiz), int(info.Ysiz-info.YOsiz)
	tx := (uint64(info.Xsiz-xto) + uint64(xt) - 1) / uint64(xt)
	ty := (uint64(info.Ysiz-yto) + uint64(yt) - 1) / uint64(yt)
	if tx*ty > maxJ2KTiles {
		return info, fmt.Errorf("JPEG 2000 codestream has %d tiles (limit %d)", tx*ty, maxJ2KTiles)
	}
	info.Tiles = int(tx * ty)
	if info.Comps < 1 || info.Comps > 4 {
		return info, fmt.Errorf("JPEG 2000 codestream has %d components (supported: 1 to 4)", info.Comps)
	}
	for c := 0; c < info.Comps; c++ {
		p := int(s[36+3*c]&0x7F) + 1
		if c == 0 {
			info.Precision = p
		}
		if p > 16 || p != info.Precision || s[37+3*c] != 1 || s[38+3*c] != 1 {
			return info, fmt.Errorf("JPEG 2000 component %d: %d bits, subsampling %dx%d (supported: up to 16 bits, equal for all, no subsampling)", c, p, s[37+3*c], s[38+3*c])
		}
	}
	// Main header markers up to the first tile.
	i := 4 + lsiz
	sawCAP := false
	for i+4 <= len(cs) {
		if cs[i] != 0xFF {
			return info, fmt.Errorf("JPEG 2000 marker expected at byte %d", i)
		}
		m := cs[i+1]
		if m == 0x90 { // SOT: the main header ends
			break
		}
		n := int(binary.BigEndian.Uint16(cs[i+2:]))
		if n < 2 || i+2+n > len(cs) {
			return info, fmt.Errorf("JPEG 2000 marker FF%02X has a bad length %d", m, n)
		}
		switch m {
		case 0x52: // COD
			if err := info.cod(cs[i+4 : i+2+n]); err != nil {
				return info, err
			}
		case 0x53: // COC: a component's own decomposition and code-blocks
			if err := info.coc(cs[i+4 : i+2+n]); err != nil {
				return info, err
			}
		case 0x50: // CAP (Part 15 and later capabilities)
			sawCAP = true
		}
		i += 2 + n
	}
	if info.Layers == 0 {
		return info, errors.New("JPEG 2000 main header has no COD marker")
	}
	info.MinLevels = min(info.Levels, info.cocLevels)
	if info.HT && !sawCAP {
		// OpenJPEG 2.5.0's HT decoder predates upstream hardening (its
		// fixes #1426, #1436, #1492): an HT codestream that does not
		// even carry the capabilities marker Part 15 requires is not
		// handed to it.
		return info, errors.New("HTJ2K codestream without the CAP marker Part 15 requires")
	}
	return info, nil
}

// codeBlock checks code-block size exponents (SPcod/SPcoc bytes xcb, ycb,
// each stored minus 2): each at most 10 and together at most 12, as
// Part 1 (and Part 15) require; OpenJPEG sizes its code-block buffers
// from them.
func codeBlock(xcb, ycb byte) error {
	x, y := int(xcb&0x0F)+2, int(ycb&0x0F)+2
	if xcb > 8 || ycb > 8 || x+y > 12 {
		return fmt.Errorf("JPEG 2000 code-block size 2^%d x 2^%d (at most 2^10 each, 2^12 in all)", x, y)
	}
	return nil
}

func (info *J2KInfo) coc(c []byte) error {
	k := 1 // Ccoc is one byte below 257 components (ReadJ2K allows 4)
	if len(c) < k+6 {
		return errors.New("JPEG 2000 COC marker too short")
	}
	if int(c[0]) >= info.Comps {
		return fmt.Errorf("JPEG 2000 COC for component %d of %d", c[0], info.Comps)
	}
	levels := c[k+1]
	if levels > 32 {
		return fmt.Errorf("JPEG 2000 COC: %d decomposition levels (limit 32)", levels)
	}
	info.cocLevels = min(info.cocLevels, int(levels))
	return codeBlock(c[k+2], c[k+3])
}

func (info *J2KInfo) cod(c []byte) error {
	if len(c) < 10 {
		return errors.New("JPEG 2000 COD marker too short")
	}
	scod := c[0]
	info.Layers = int(binary.BigEndian.Uint16(c[2:]))
	info.MCT = c[4] != 0
	info.Levels = int(c[5])
	if info.Layers < 1 || info.Layers > maxJ2KLayers || info.Levels > 32 {
		return fmt.Errorf("JPEG 2000 COD: %d layers, %d decomposition levels (limits %d, 32)", info.Layers, info.Levels, maxJ2KLayers)
	}
	if err := codeBlock(c[6], c[7]); err != nil {
		return err
	}
	pp := make([]byte, info.Levels+1)
	for r := range pp {
		pp[r] = 0xFF // default: one 2^15 precinct per resolution
	}
	if scod&1 != 0 {
		if len(c) < 10+info.Levels+1 {
			return errors.New("JPEG 2000 COD marker too short for its precinct sizes")
		}
		copy(pp, c[10:])
	}
	var packets int64
	for r := 0; r <= info.Levels; r++ {
		shift := uint(info.Levels - r)
		rw := (int64(info.Width) + 1<<shift - 1) >> shift
		rh := (int64(info.Height) + 1<<shift - 1) >> shift
		px, py := uint(pp[r]&0xF), uint(pp[r]>>4)
		packets += ((rw + 1<<px - 1) >> px) * ((rh + 1<<py - 1) >> py)
	}
	packets *= int64(info.Layers) * int64(info.Comps)
	info.PrecinctPackets = packets
	if packets > maxJ2KPackets {
		return fmt.Errorf("JPEG 2000 COD declares %d packets (limit %d)", packets, maxJ2KPackets)
	}
	return nil
}

// jp2Codestream finds the contiguous codestream box of a JP2 file.
func jp2Codestream(b []byte) ([]byte, error) {
	for i := 0; i+8 <= len(b); {
		n := uint64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		hdr := uint64(8)
		switch n {
		case 0:
			n = uint64(len(b) - i)
		case 1:
			if i+16 > len(b) {
				return nil, errors.New("JP2 box header truncated")
			}
			n, hdr = binary.BigEndian.Uint64(b[i+8:]), 16
		}
		if n < hdr || n > uint64(len(b)-i) {
			return nil, fmt.Errorf("JP2 box %q has a bad length", typ)
		}
		if typ == "jp2c" {
			return b[i+int(hdr) : i+int(n)], nil
		}
		i += int(n)
	}
	return nil, errors.New("JP2 file has no codestream box")
}
