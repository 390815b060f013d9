package dicomtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/jpeg"
	"image/png"
	"math/rand"
	"strings"
)

// HostileMaxFileSize is the file size limit the hostile files assume
// (ingest.max_file_size / decode.Limits.MaxFileSize): small, so that the
// "too large" and "deflate bomb" cases stay cheap to build and test.
const HostileMaxFileSize = 2 << 20

// HostileFile is a malformed or malicious file and the reason code the
// decoder must quarantine it with.
type HostileFile struct {
	Name string
	Data []byte
	Code string
}

// Good is a small valid film (12-bit, windowed) that hostile files are
// derived from.
func Good() Image {
	px := make([]int, 64*64)
	for i := range px {
		px[i] = (i * 37) % 4096
	}
	return Image{Rows: 64, Columns: 64, BitsStored: 12, Pixels: px, Center: 2048, Width: 4096, Modality: "CR", BodyPart: "CHEST", View: "PA"}
}

// Hostile returns the hostile corpus, every file built here from synthetic
// data.
func Hostile() []HostileFile {
	good := Good().Bytes()
	rnd := rand.New(rand.NewSource(4))
	random := make([]byte, 4096)
	rnd.Read(random)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	var pngb bytes.Buffer
	png.Encode(&pngb, image.NewGray(image.Rect(0, 0, 32, 32)))

	huge := uint32(0xFFFFFFF0) // "4 GB"
	withPixels := func(pd Elem, ts string) []byte {
		im := Good()
		im.TransferSyntax = ts
		im.PixelData = &pd
		return im.Bytes()
	}
	withExtra := func(e ...Elem) []byte {
		im := Good()
		im.Extra = e
		return im.Bytes()
	}
	private := func(el uint16) uint32 { return Tag(0x0009, el) }

	// An element whose declared length exceeds everything, before the pixel data.
	claimOB := withExtra(Elem{Tag: private(0x1010), VR: "OB", Value: make([]byte, 16), Length: int64(huge)})
	// A fragment of encapsulated pixel data claiming 4 GB.
	frag := Encapsulated([]byte{1, 2, 3, 4})
	fb := append([]byte(nil), frag.Value...)
	binary.LittleEndian.PutUint32(fb[12:], huge) // the first fragment's length, after an empty offset table
	frag.Value = fb
	claimFrag := withPixels(frag, "1.2.840.10008.1.2.5")
	claimNative := withPixels(Elem{Tag: Tag(0x7FE0, 0x0010), VR: "OW", Value: make([]byte, 64), Length: int64(huge)}, "")
	// A sequence item claiming 4 GB.
	item := Seq(private(0x1020), []Elem{Str(private(0x1021), "LO", "x")})
	ib := append([]byte(nil), item.Value...)
	binary.LittleEndian.PutUint32(ib[4:], huge)
	item.Value = ib
	claimItem := withExtra(item)
	// An element running past the end of its (defined-length) item.
	over := Seq(private(0x1020), []Elem{Str(private(0x1021), "LO", "abcd")})
	ob := append([]byte(nil), over.Value...)
	binary.LittleEndian.PutUint16(ob[14:], 200) // the LO's length, inside a 12-byte item
	over.Value = ob
	overrun := withExtra(over)

	// Sequences nested 40 deep.
	deep := Str(private(0x1030), "LO", "leaf")
	for i := 0; i < 40; i++ {
		deep = Seq(private(0x1020), []Elem{deep})
	}
	// 100 001 empty private elements.
	var many bytes.Buffer
	for i := 0; i <= 100_000; i++ {
		writeElem(&many, Elem{Tag: Tag(0x0011, 0x1000+uint16(i%0xEFFF)), VR: "LO", Length: -1}, binary.LittleEndian, false)
	}
	manyElems := withExtra(Raw(Tag(0x0010, 0xFFFF), "UN", many.Bytes()))
	manyElems = flattenUN(manyElems)

	badMeta := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(badMeta[140:], 1<<30) // group length
	noTS := File{SOPClassUID: "1.2.840.10008.5.1.4.1.1.1", SOPInstanceUID: "1.2.3"}.Bytes()
	unknownTS := Good()
	unknownTS.TransferSyntax = "1.2.826.0.1.3680043.99.1"

	// Deflated data set that inflates to 4 MiB: twice the file size limit.
	bomb := Good()
	bomb.TransferSyntax = DeflatedLE
	bomb.Extra = []Elem{Raw(private(0x1040), "OB", make([]byte, 4<<20))}

	hugeDims := Image{Rows: 65535, Columns: 65535, BitsAllocated: 8, Modality: "CR",
		PixelData: &Elem{Tag: Tag(0x7FE0, 0x0010), VR: "OB", Value: make([]byte, 64), Length: -1}}
	rleHeader := make([]byte, 64+4)
	binary.LittleEndian.PutUint32(rleHeader, 1)
	binary.LittleEndian.PutUint32(rleHeader[4:], 64)
	rleHeader[64], rleHeader[65] = 0x81, 0 // repeat 0 128 times
	rp := Encapsulated(rleHeader)
	tinyHuge := Image{Rows: 8000, Columns: 8000, BitsAllocated: 8, TransferSyntax: "1.2.840.10008.1.2.5", Modality: "CR", PixelData: &rp}

	// JPEG 2000: a 4096x4096 image in 65536 tiles of 16x16.
	var cs bytes.Buffer
	cs.Write([]byte{0xFF, 0x4F, 0xFF, 0x51})
	binary.Write(&cs, binary.BigEndian, uint16(41))
	binary.Write(&cs, binary.BigEndian, uint16(0))
	for _, v := range []uint32{4096, 4096, 0, 0, 16, 16, 0, 0} {
		binary.Write(&cs, binary.BigEndian, v)
	}
	binary.Write(&cs, binary.BigEndian, uint16(1))
	cs.Write([]byte{11, 1, 1})
	cs.Write(make([]byte, 40_000)) // enough data to pass the compression ratio check
	tp := Encapsulated(cs.Bytes())
	tileBomb := Image{Rows: 4096, Columns: 4096, BitsStored: 12, TransferSyntax: "1.2.840.10008.1.2.4.91", Modality: "CR", PixelData: &tp}

	short := Good()
	short.PixelData = &Elem{Tag: Tag(0x7FE0, 0x0010), VR: "OW", Value: make([]byte, 100), Length: -1}

	// A non-item inside a defined-length sequence makes the parser panic.
	nonItem := Elem{Tag: private(0x1020), VR: "SQ", Length: -1}
	var nb bytes.Buffer
	writeElem(&nb, Str(private(0x1021), "LO", "not an item"), binary.LittleEndian, false)
	nonItem.Value = nb.Bytes()

	invalidVR := withExtra(Elem{Tag: private(0x1050), VR: "ZZ", Value: []byte("ab"), Length: -1})

	big := Good()
	big.Extra = []Elem{Raw(private(0x1060), "OB", make([]byte, HostileMaxFileSize))}

	var jb bytes.Buffer
	src := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range src.Pix {
		src.Pix[i] = byte(rnd.Intn(256))
	}
	jpeg.Encode(&jb, src, &jpeg.Options{Quality: 90})
	tj := Encapsulated(jb.Bytes()[:jb.Len()/2])
	truncJPEG := Image{Rows: 64, Columns: 64, BitsAllocated: 8, TransferSyntax: "1.2.840.10008.1.2.4.50", Modality: "CR", PixelData: &tj}
	lj := Encapsulated(jb.Bytes())
	lieJPEG := Image{Rows: 32, Columns: 32, BitsAllocated: 8, TransferSyntax: "1.2.840.10008.1.2.4.50", Modality: "CR", PixelData: &lj}

	badRLE := make([]byte, 64+8)
	binary.LittleEndian.PutUint32(badRLE, 1)
	binary.LittleEndian.PutUint32(badRLE[4:], 5000) // segment offset past the fragment
	br := Encapsulated(badRLE)
	rleBad := Image{Rows: 8, Columns: 8, BitsAllocated: 8, TransferSyntax: "1.2.840.10008.1.2.5", PixelData: &br, Modality: "CR"}

	cut := len(good) - 64*64*2 - 12 // exactly before the Pixel Data element

	return []HostileFile{
		{"empty.dcm", nil, "empty_file"},
		{"random.dcm", random, "not_dicom"},
		{"film.dcm.gz", gz.Bytes(), "not_dicom"},
		{"screenshot.png", pngb.Bytes(), "not_dicom"},
		{"notes.txt", []byte("Patient called, please re-send the chest film.\n"), "not_dicom"},
		{"no-preamble.dcm", good[128:], "not_dicom"},
		{"truncated-pixels.dcm", good[:len(good)-1000], "truncated"},
		{"truncated-header.dcm", good[:200], "truncated"},
		{"no-pixel-data.dcm", good[:cut], "no_pixel_data"},
		{"claims-4gb-element.dcm", claimOB, "element_length"},
		{"claims-4gb-fragment.dcm", claimFrag, "element_length"},
		{"claims-4gb-native-pixels.dcm", claimNative, "element_length"},
		{"claims-4gb-item.dcm", claimItem, "element_length"},
		{"item-overrun.dcm", overrun, "element_length"},
		{"deep-sequences.dcm", withExtra(deep), "header_too_large"},
		{"many-elements.dcm", manyElems, "header_too_large"},
		{"bad-meta-length.dcm", badMeta, "bad_file_meta"},
		{"no-transfer-syntax.dcm", noTS, "bad_file_meta"},
		{"unknown-syntax.dcm", unknownTS.Bytes(), "unsupported_transfer_syntax"},
		{"deflate-bomb.dcm", bomb.Bytes(), "decompressed_too_large"},
		{"huge-dimensions.dcm", hugeDims.Bytes(), "too_many_pixels"},
		{"tiny-file-huge-frame.dcm", tinyHuge.Bytes(), "decompressed_too_large"},
		{"j2k-tile-bomb.dcm", tileBomb.Bytes(), "codec_error"},
		{"short-pixel-data.dcm", short.Bytes(), "pixel_data_size"},
		{"non-item-in-sequence.dcm", withExtra(nonItem), "parse_error"},
		{"invalid-vr.dcm", invalidVR, "parse_error"},
		{"too-large.dcm", big.Bytes(), "too_large"},
		{"truncated-jpeg.dcm", truncJPEG.Bytes(), "codec_error"},
		{"jpeg-size-lie.dcm", lieJPEG.Bytes(), "codec_error"},
		{"bad-rle.dcm", rleBad.Bytes(), "codec_error"},
		{"palette.dcm", Image{Rows: 2, Columns: 2, BitsAllocated: 8, Pixels: []int{1, 2, 3, 4}, Photometric: "PALETTE COLOR"}.Bytes(), "unsupported_pixel_format"},
		{"zero-rows.dcm", Image{Rows: 0, Columns: 2, Modality: "CR"}.Bytes(), "bad_image_header"},
	}
}

// flattenUN replaces the header of a UN element (used to build many
// elements at once) by nothing, so its content becomes top-level elements.
func flattenUN(b []byte) []byte {
	i := bytes.Index(b, []byte{0x10, 0x00, 0xFF, 0xFF, 'U', 'N', 0, 0})
	if i < 0 {
		panic("flattenUN: element not found")
	}
	return append(b[:i:i], b[i+12:]...)
}

var _ = strings.Repeat
