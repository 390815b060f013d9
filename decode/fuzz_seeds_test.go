package decode

import (
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

// extraFuzzSeeds are the UN, implicit-under-explicit and JPEG colour
// marker paths (pure Go, so FuzzDecode adds them itself; TestWriteFuzzCorpus
// also writes them, with the HTJ2K films of syntaxCases).
func extraFuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	small := func(ts string) dicomtest.Image {
		return dicomtest.Image{TransferSyntax: ts, Rows: 2, Columns: 3, BitsStored: 12, Pixels: seq(0, 6), Slope: 1, Intercept: -1024,
			Center: 40, Width: 400, Modality: "CT", BodyPart: "CHEST", Extra: []dicomtest.Elem{dicomtest.Str(tagCharset, "CS", "ISO_IR 100")}}
	}
	lut := dicomtest.LUTItem(0, 12, []uint16{10, 20, 30, 40})
	for _, ts := range []string{dicomtest.ExplicitLE, dicomtest.ExplicitBE} {
		im := small(ts)
		im.UN = []uint32{tagCharset, tagModality, tagBodyPart, tagRows, tagCenter, tagWidth, tagIntercept, tagSlope}
		seeds["un attributes "+ts] = im.Bytes()
		im = small(ts)
		im.Slope = 0
		im.Extra = append(im.Extra, dicomtest.UNSequence(tagModLUTSeq, lut),
			dicomtest.UNSequence(tagPrivateSeq, []dicomtest.Elem{dicomtest.UNSequence(dicomtest.Tag(0x0008, 0x1115),
				[]dicomtest.Elem{dicomtest.Str(dicomtest.Tag(0x0020, 0x000E), "UI", "1.2.3")})}))
		seeds["un sequence undefined "+ts] = im.Bytes()
		im = small(ts)
		im.Slope = 0
		im.Extra = append(im.Extra, dicomtest.AsUN(dicomtest.Seq(tagModLUTSeq, lut), ts == dicomtest.ExplicitBE))
		seeds["un sequence defined "+ts] = im.Bytes()
	}
	f := small(dicomtest.ExplicitLE).File()
	f.DataSetSyntax = dicomtest.ImplicitLE
	seeds["implicit under explicit"] = f.Bytes()

	base := rgbCodestream(t, 8, 8)
	for name, c := range map[string]struct {
		pi string
		cs []byte
	}{
		"ids 012 rgb":     {"RGB", withIDs(t, base, [3]byte{0, 1, 2})},
		"ids 123 ybr":     {"YBR_FULL", base},
		"ids rgb":         {"YBR_FULL", withIDs(t, base, [3]byte{'R', 'G', 'B'})},
		"jfif rgb":        {"RGB", withMarker(withIDs(t, base, [3]byte{0, 1, 2}), jfifAPP0)},
		"adobe 0 ybr":     {"YBR_FULL", withMarker(base, adobe(0))},
		"adobe 1 rgb":     {"RGB", withMarker(withIDs(t, base, [3]byte{0, 1, 2}), adobe(1))},
		"adobe 2 rgb":     {"RGB", withMarker(base, adobe(2))},
		"adobe short rgb": {"RGB", withMarker(base, []byte{0xFF, 0xEE, 0, 7, 'A', 'd', 'o', 'b', 'e'})},
	} {
		pd := dicomtest.Encapsulated(c.cs)
		seeds["jpeg "+name] = dicomtest.Image{TransferSyntax: TSJPEGBaseline, Rows: 8, Columns: 8, BitsAllocated: 8,
			SamplesPerPixel: 3, Photometric: c.pi, PixelData: &pd}.Bytes()
	}
	return seeds
}
