package decode

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/ojph"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// ojphExpand decodes a film's codestream with OpenJPH's ojph_expand.
func ojphExpand(t *testing.T, path string) []int {
	t.Helper()
	return ojph.Expand(t, codestream(t, path))
}

// The shared chest films (NIH DX, 8 bits; RG1 CR, MONOCHROME1, 15 bits)
// made into HTJ2K films of the three syntaxes with OpenJPH decode through
// OpenJPEG's HT decoder to what OpenJPH's own ojph_expand makes of
// them (lossy: within one level), and the lossless ones to exactly the
// original stored values.
func TestHTJ2KSharedFilms(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes and decodes full-size films: skipped under -short")
	}
	for _, name := range []string{"original/nih_cxr_dx_implicit.dcm", "derived/RG1_chest_CR_mono1_explicitLE.dcm"} {
		src := decodeFile(t, testenv.DICOM(t, name))
		h := src.Header
		orig := stored(src)
		im := dicomtest.Image{Rows: h.Rows, Columns: h.Columns, BitsAllocated: h.BitsAllocated, BitsStored: h.BitsStored,
			Photometric: h.Photometric, Pixels: orig, Modality: h.Modality}
		for _, c := range []struct {
			ts       string
			args     []string
			lossless bool
		}{
			{TSHTJ2KLossless, []string{"-reversible", "true", "-prog_order", "LRCP"}, true},
			{TSHTJ2KRPCL, []string{"-reversible", "true", "-prog_order", "RPCL"}, true},
			{TSHTJ2K, []string{"-qstep", "0.001"}, false},
		} {
			t.Run(filepath.Base(name)+" "+c.ts, func(t *testing.T) {
				b := ojph.Film(t, im, c.ts, c.args...)
				path := filepath.Join(t.TempDir(), "f.dcm")
				os.WriteFile(path, b, 0o644)
				film := decodeFile(t, path)
				got := stored(film)
				// Irreversible (lossy) HTJ2K: OpenJPEG and OpenJPH round the
				// 9/7 wavelet's output differently, by at most one level.
				tol := 1
				if c.lossless {
					tol = 0
				}
				d, err := maxDiff(got, ojphExpand(t, path))
				if err != nil || d > tol {
					t.Fatalf("vs ojph_expand: max |difference| %d %v", d, err)
				}
				if c.lossless {
					if d, err := maxDiff(got, orig); err != nil || d != 0 {
						t.Fatalf("vs the original: max |difference| %d %v", d, err)
					}
				}
				t.Logf("%dx%d %d-bit: %d bytes, max |difference| to ojph_expand %d", h.Columns, h.Rows, h.BitsStored, len(b), d)
			})
		}
	}
}

// HTJ2K input is hostile until OpenJPEG's HT decoder has upstream's later
// hardening: a codestream without the CAP marker Part 15 requires, or with
// code-blocks larger than the standard allows, is refused (codec_error)
// before OpenJPEG sees it.
func TestHTJ2KHeaderRefusals(t *testing.T) {
	g := gray(16, 12, false)
	cs := ojph.Compress(t, g.Columns, g.Rows, 12, g.Pixels, "-reversible", "true", "-num_decomps", "3")
	marker := func(m byte) (int, int) {
		for i := 4 + int(binary.BigEndian.Uint16(cs[4:])); i+4 <= len(cs) && cs[i+1] != 0x90; {
			n := int(binary.BigEndian.Uint16(cs[i+2:]))
			if cs[i+1] == m {
				return i, n
			}
			i += 2 + n
		}
		t.Fatalf("no marker FF%02X", m)
		return 0, 0
	}
	i, n := marker(0x50)
	noCAP := append(append([]byte(nil), cs[:i]...), cs[i+2+n:]...)
	i, _ = marker(0x52)
	bigBlocks := append([]byte(nil), cs...)
	bigBlocks[i+4+6], bigBlocks[i+4+7] = 9, 9 // 2^11 x 2^11 code-blocks
	for name, bad := range map[string][]byte{"no CAP marker": noCAP, "2^11 code-blocks": bigBlocks} {
		im := g
		im.TransferSyntax = TSHTJ2KLossless
		pd := dicomtest.Encapsulated(bad)
		im.PixelData = &pd
		if _, err := decodeBytes(t, im.Bytes()); CodeOf(err) != CodeCodec {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
