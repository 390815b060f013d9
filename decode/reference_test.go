package decode

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// tool returns the path of a reference program that `make test` installs.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package %s; `make test` installs it)", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// stored16 returns a film's stored values as ints (gray) or samples (color).
func stored(f *Film) []int {
	switch im := f.Stored().(type) {
	case *image.Gray16:
		out := make([]int, len(im.Pix)/2)
		for i := range out {
			out[i] = int(im.Pix[2*i])<<8 | int(im.Pix[2*i+1])
		}
		return out
	case *image.NRGBA64:
		var out []int
		for i := 0; i+7 < len(im.Pix); i += 8 {
			for c := 0; c < 3; c++ {
				out = append(out, int(im.Pix[i+2*c])<<8|int(im.Pix[i+2*c+1]))
			}
		}
		return out
	}
	panic("stored image type")
}

func maxDiff(a, b []int) (int, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("%d samples vs %d", len(a), len(b))
	}
	m := 0
	for i := range a {
		d := a[i] - b[i]
		m = max(m, d, -d)
	}
	return m, nil
}

// readPGM reads a binary PGM (8- or 16-bit big endian), as opj_decompress
// writes it.
func readPGM(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var fields []int
	var magic string
	for len(fields) < 3 {
		var s string
		if _, err := fmt.Fscan(r, &s); err != nil {
			t.Fatal(err)
		}
		if s[0] == '#' { // a comment runs to the end of its line
			r.ReadString('\n')
			continue
		}
		if magic == "" {
			magic = s
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("pgm header %q", s)
		}
		fields = append(fields, n)
	}
	r.ReadByte() // the single whitespace after maxval
	if magic != "P5" {
		t.Fatalf("pgm magic %q", magic)
	}
	w, h, maxv := fields[0], fields[1], fields[2]
	out := make([]int, w*h)
	for i := range out {
		if maxv > 255 {
			hi, _ := r.ReadByte()
			lo, _ := r.ReadByte()
			out[i] = int(hi)<<8 | int(lo)
		} else {
			b, _ := r.ReadByte()
			out[i] = int(b)
		}
	}
	return out
}

// reference decodes a shared file with the reference decoder for its
// syntax: dcmtk (dcmdjpeg, dcmdjpls, dcmdrle, dcmconv) writes an
// uncompressed file, which our native path reads; for JPEG 2000, the
// codestream goes through OpenJPEG's own opj_decompress.
func reference(t *testing.T, path string, film *Film) (vals []int, how string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "ref.dcm")
	switch ts := film.Header.TransferSyntax; ts {
	case TSJPEGBaseline, TSJPEGExtended, TSJPEGLossless, TSJPEGLosslessSV:
		run(t, tool(t, "dcmdjpeg", "dcmtk"), path, out)
		how = "dcmdjpeg"
	case TSJPEGLSLossless, TSJPEGLSNear:
		run(t, tool(t, "dcmdjpls", "dcmtk"), path, out)
		how = "dcmdjpls"
	case TSRLE:
		run(t, tool(t, "dcmdrle", "dcmtk"), path, out)
		how = "dcmdrle"
	case TSJ2K, TSJ2KLossless:
		data := codestream(t, path)
		cs := filepath.Join(dir, "frame.j2k")
		os.WriteFile(cs, data, 0o644)
		pgm := filepath.Join(dir, "frame.pgm")
		run(t, tool(t, "opj_decompress", "libopenjp2-tools"), "-quiet", "-i", cs, "-o", pgm)
		return readPGM(t, pgm), "opj_decompress"
	case TSHTJ2KLossless, TSHTJ2KRPCL, TSHTJ2K:
		return ojphExpand(t, path), "ojph_expand"
	default:
		run(t, tool(t, "dcmconv", "dcmtk"), "+te", path, out)
		how = "dcmconv +te"
	}
	return stored(decodeFile(t, out)), how
}

// Every real file decodes to the same stored values as the reference
// decoders: exactly for lossless syntaxes (and for near-lossless JPEG-LS and
// lossy JPEG 2000, whose decoding is deterministic), within a gray level or
// one for lossy JPEG, where libjpeg-turbo and dcmtk's IJG could differ in
// IDCT rounding (they do not, on the shared files).
func TestSharedFilesMatchReferenceDecoders(t *testing.T) {
	testenv.Slow(t)
	files, _ := filepath.Glob(filepath.Join(testenv.DICOM(t, ""), "*", "*.dcm"))
	if len(files) == 0 {
		t.Skip("no DICOM files in the shared data set")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			film := decodeFile(t, path)
			ref, how := reference(t, path, film)
			d, err := maxDiff(stored(film), ref)
			if err != nil {
				t.Fatalf("vs %s: %v", how, err)
			}
			tol := 0
			if film.Header.TransferSyntax == TSJPEGBaseline || film.Header.TransferSyntax == TSJPEGExtended {
				tol = 1 // measured: 0 (libjpeg-turbo 2.1.5 vs dcmtk 3.6.7's IJG, both islow IDCT)
			}
			if d > tol {
				t.Fatalf("max |difference| to %s is %d (allowed %d)", how, d, tol)
			}
			t.Logf("%s: max |difference| to %s = %d", film.Header.TransferSyntax, how, d)
		})
	}
}

// The lossy derived files stay within their codec's error of the lossless
// originals they were made from (per the data set's notes: JPEG baseline 11,
// JPEG-LS near-lossless 2), and the original lossy JPEG 2000 of RG1 decodes
// to what pydicom/Pillow-OpenJPEG stored in its uncompressed transcode.
func TestLossyFilesWithinCodecError(t *testing.T) {
	testenv.Slow(t)
	ref := stored(decodeFile(t, testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")))
	for name, tol := range map[string]int{"derived/nih_dx_jpegBaseline.dcm": 11, "derived/nih_dx_jpegLS_nearlossless.dcm": 2} {
		d, err := maxDiff(stored(decodeFile(t, testenv.DICOM(t, name))), ref)
		if err != nil || d > tol {
			t.Errorf("%s: max |difference| %d (allowed %d) %v", name, d, tol, err)
		}
	}
	j2k := stored(decodeFile(t, testenv.DICOM(t, "original/RG1_J2KI.dcm")))
	raw := stored(decodeFile(t, testenv.DICOM(t, "derived/RG1_chest_CR_mono1_explicitLE.dcm")))
	if d, err := maxDiff(j2k, raw); err != nil || d != 0 {
		t.Errorf("RG1 JPEG 2000 vs its uncompressed transcode: max |difference| %d %v", d, err)
	}
}

// codestream extracts the first frame's compressed bytes of a file.
func codestream(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := scanFile(bytes.NewReader(b), int64(len(b)), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(l)
	if err != nil {
		t.Fatal(err)
	}
	data, err := frameData(h)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
