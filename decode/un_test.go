package decode

import (
	"bytes"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

var (
	tagCharset    = dicomtest.Tag(0x0008, 0x0005)
	tagModality   = dicomtest.Tag(0x0008, 0x0060)
	tagBodyPart   = dicomtest.Tag(0x0018, 0x0015)
	tagRows       = dicomtest.Tag(0x0028, 0x0010)
	tagCenter     = dicomtest.Tag(0x0028, 0x1050)
	tagWidth      = dicomtest.Tag(0x0028, 0x1051)
	tagIntercept  = dicomtest.Tag(0x0028, 0x1052)
	tagSlope      = dicomtest.Tag(0x0028, 0x1053)
	tagModLUTSeq  = dicomtest.Tag(0x0028, 0x3000)
	tagPrivateSeq = dicomtest.Tag(0x4453, 0x100C)
)

// unFilm is a CT-like film whose display depends on every attribute a
// converter may write as UN: a -1024 intercept and a 40/400 window.
func unFilm(ts string) dicomtest.Image {
	px := make([]int, 4*6)
	for i := range px {
		px[i] = 800 + 40*i // 800..1720 stored, -224..696 HU
	}
	return dicomtest.Image{TransferSyntax: ts, Rows: 4, Columns: 6, BitsAllocated: 16, BitsStored: 12,
		Pixels: px, Slope: 1, Intercept: -1024, Center: 40, Width: 400, Modality: "CT", BodyPart: "CHEST",
		Extra: []dicomtest.Elem{dicomtest.Str(tagCharset, "CS", "ISO_IR 100")}}
}

// sameFilm fails unless two decodes agree on what routes and displays a film.
func sameFilm(t *testing.T, got, want *Film) {
	t.Helper()
	g, w := got.Header, want.Header
	if g.Modality != w.Modality || g.BodyPart != w.BodyPart || g.Rows != w.Rows || g.Columns != w.Columns ||
		g.RescaleSlope != w.RescaleSlope || g.RescaleIntercept != w.RescaleIntercept ||
		g.HasWindow != w.HasWindow || g.WindowCenter != w.WindowCenter || g.WindowWidth != w.WindowWidth ||
		(g.ModalityLUT == nil) != (w.ModalityLUT == nil) {
		t.Fatalf("header\n got %+v\nwant %+v", *g, *w)
	}
	if got.Display != want.Display || !bytes.Equal(got.Image.Pix, want.Image.Pix) {
		t.Fatalf("display %q %v, want %q %v", got.Display, got.Image.Pix, want.Display, want.Image.Pix)
	}
}

// A Specific Character Set written as UN made the DICOM parser panic
// (suyashkumar/dicom v1.1.0 takes its value for strings): it is read as CS.
func TestUNSpecificCharacterSet(t *testing.T) {
	for _, ts := range []string{dicomtest.ExplicitLE, dicomtest.ExplicitBE} {
		im := unFilm(ts)
		want := mustDecode(t, im.Bytes())
		im.UN = []uint32{tagCharset}
		got, err := decodeBytes(t, im.Bytes())
		if err != nil {
			t.Fatalf("%s: %v (panicked: %v)", ts, err, Panicked(err))
		}
		sameFilm(t, got, want)
	}
	// Whatever VR it claims, the charset never reaches the parser as
	// anything but text.
	im := unFilm(dicomtest.ExplicitLE)
	im.Extra = []dicomtest.Elem{dicomtest.Raw(tagCharset, "US", []byte{1, 0})}
	if _, err := decodeBytes(t, im.Bytes()); err != nil && Panicked(err) {
		t.Fatalf("charset as US: %v", err)
	}
}

// Standard attributes written as UN take their dictionary VR, their values
// in the transfer syntax's byte order: modality and body part route the
// film, rescale and window display it exactly as when written with their
// own VRs (they used to be dropped: the intercept became 0).
func TestUNStandardAttributes(t *testing.T) {
	for _, ts := range []string{dicomtest.ExplicitLE, dicomtest.ExplicitBE} {
		im := unFilm(ts)
		want := mustDecode(t, im.Bytes())
		if want.Header.RescaleIntercept != -1024 || !want.Header.HasWindow {
			t.Fatalf("reference film: %+v", *want.Header)
		}
		im.UN = []uint32{tagCharset, tagModality, tagBodyPart, tagRows, tagCenter, tagWidth, tagIntercept, tagSlope}
		got, err := decodeBytes(t, im.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		sameFilm(t, got, want)
	}
}

// A UN whose value does not fit its dictionary VR stays UN (bytes the
// header does not use) instead of making the parser lose its place.
func TestUNThatDoesNotFitItsVR(t *testing.T) {
	im := unFilm(dicomtest.ExplicitLE)
	want := mustDecode(t, im.Bytes())
	im.Extra = append(im.Extra, dicomtest.Raw(dicomtest.Tag(0x0028, 0x0106), "UN", []byte{1, 2, 3})) // US, 3 bytes
	got, err := decodeBytes(t, im.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameFilm(t, got, want)
}

// A UN of undefined length is a sequence in implicit VR little endian
// (CP-246), whatever the data set's encoding; so is the value of a UN whose
// tag is a sequence. A Modality LUT Sequence written either way is applied
// as when written as SQ, and a private one nested three deep is read past.
func TestUNSequences(t *testing.T) {
	lut := make([]uint16, 4096)
	for i := range lut {
		lut[i] = uint16(4095 - i)
	}
	base := func(ts string) dicomtest.Image {
		im := unFilm(ts)
		im.Slope, im.Width = 0, 0
		return im
	}
	ref := base(dicomtest.ExplicitLE)
	ref.Extra = append(ref.Extra, dicomtest.Seq(tagModLUTSeq, dicomtest.LUTItem(0, 12, lut)))
	want := mustDecode(t, ref.Bytes())
	if want.Header.ModalityLUT == nil {
		t.Fatal("reference film has no Modality LUT")
	}
	nested := dicomtest.UNSequence(tagPrivateSeq, []dicomtest.Elem{
		dicomtest.UNSequence(dicomtest.Tag(0x0008, 0x1115), []dicomtest.Elem{
			dicomtest.UNSequence(dicomtest.Tag(0x0008, 0x1199), []dicomtest.Elem{
				dicomtest.Str(dicomtest.Tag(0x0008, 0x1150), "UI", "1.2.840.10008.5.1.4.1.1.2"),
			}),
			dicomtest.Str(dicomtest.Tag(0x0020, 0x000E), "UI", "1.2.3.4"),
		}),
	})
	for _, ts := range []string{dicomtest.ExplicitLE, dicomtest.ExplicitBE} {
		for name, seq := range map[string]dicomtest.Elem{
			"undefined length": dicomtest.UNSequence(tagModLUTSeq, dicomtest.LUTItem(0, 12, lut)),
			"defined length":   dicomtest.AsUN(dicomtest.Seq(tagModLUTSeq, dicomtest.LUTItem(0, 12, lut)), ts == dicomtest.ExplicitBE),
		} {
			im := base(ts)
			im.Extra = append(im.Extra, seq, nested)
			got, err := decodeBytes(t, im.Bytes())
			if err != nil {
				t.Fatalf("%s, %s: %v", ts, name, err)
			}
			sameFilm(t, got, want)
			if l := got.Header.ModalityLUT; l == nil || len(l.Data) != len(lut) || l.Data[1] != lut[1] || l.Data[4000] != lut[4000] {
				t.Fatalf("%s, %s: Modality LUT %+v", ts, name, l)
			}
		}
	}
	// A UN of undefined length that is not a sequence is refused with a
	// reason, not guessed at.
	im := base(dicomtest.ExplicitLE)
	im.Extra = append(im.Extra, dicomtest.Elem{Tag: tagPrivateSeq, VR: "UN", Value: []byte("not items"), Undefined: true, Length: -1})
	if _, err := decodeBytes(t, im.Bytes()); err == nil || CodeOf(err) == CodeInternal || Panicked(err) {
		t.Fatalf("garbage UN sequence: %v", err)
	}
}

// A data set written in implicit VR under a transfer syntax that says
// explicit (pydicom's SC_rgb_jpeg.dcm) is read as what it is: its first
// element's VR bytes are no VR.
func TestImplicitDataSetUnderExplicitSyntax(t *testing.T) {
	im := unFilm(dicomtest.ExplicitLE)
	want := mustDecode(t, im.Bytes())
	f := im.File()
	f.DataSetSyntax = dicomtest.ImplicitLE
	got, err := decodeBytes(t, f.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameFilm(t, got, want)
}

// A file whose last element is empty and has no pixel data is refused as
// such (the copy of an empty value at the end of the file is no read error).
func TestEmptyLastElement(t *testing.T) {
	b := dicomtest.File{TransferSyntax: dicomtest.ExplicitLE, SOPClassUID: "1.2.3", SOPInstanceUID: "1.2.3.4",
		Elems: []dicomtest.Elem{dicomtest.Str(dicomtest.Tag(0x0010, 0x0010), "PN", "")}}.Bytes()
	if _, err := decodeBytes(t, b); CodeOf(err) != CodeNoPixelData {
		t.Fatalf("got %v", err)
	}
}

// A UN of defined length whose tag is a sequence but whose value is not
// the implicit VR items it should be stays opaque bytes (the film decodes,
// as before), and a Specific Character Set too long to be text is left out.
func TestUNFallbacks(t *testing.T) {
	im := unFilm(dicomtest.ExplicitLE)
	want := mustDecode(t, im.Bytes())
	im.Extra = []dicomtest.Elem{dicomtest.Raw(tagModLUTSeq, "UN", []byte("neither items nor delimiters"))}
	got, err := decodeBytes(t, im.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameFilm(t, got, want)
	im = unFilm(dicomtest.ExplicitLE)
	im.Extra = []dicomtest.Elem{dicomtest.Raw(tagCharset, "UN", bytes.Repeat([]byte("ISO_IR 100\\"), 6000))}
	got, err = decodeBytes(t, im.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameFilm(t, got, want)
}
