package decode

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/triaged/triaged/codec"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// A JPEG 2000 frame decodes to the same samples on any number of OpenJPEG
// threads (decode gives idle cores to a lone JPEG 2000 decode): the real
// lossy (9/7, floating-point wavelet) film of the shared set, and the
// bench's full-size lossless and lossy films when they have been generated
// (make films).
func TestJ2KThreadsDoNotChangeSamples(t *testing.T) {
	testenv.Slow(t)
	paths := []string{testenv.DICOM(t, "original/RG1_J2KI.dcm")}
	for _, pat := range []string{"*-j2kll.dcm", "*-j2k.dcm"} {
		if ps, _ := filepath.Glob(filepath.Join(testenv.Root(), "var", "films", pat)); len(ps) > 0 {
			paths = append(paths, ps[0])
		}
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ReadHeader(bytes.NewReader(data), int64(len(data)), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := frameData(h)
		if err != nil {
			t.Fatal(err)
		}
		var ref []uint16
		for _, n := range []int{1, 2, 4} {
			f, err := codec.J2K(fd, codec.Want{Width: h.Columns, Height: h.Rows, Components: h.SamplesPerPixel, Threads: n})
			if err != nil {
				t.Fatalf("%s, %d threads: %v", filepath.Base(p), n, err)
			}
			if ref == nil {
				ref = f.Data16
			} else if !slices.Equal(ref, f.Data16) {
				t.Fatalf("%s: %d threads decode other samples than 1", filepath.Base(p), n)
			}
		}
	}
}
