package bench

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/triaged/triaged/codec"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/ojph"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The film generator's HTJ2K lossless film (scripts/gen-films.py, syntax
// htj2kll) holds exactly the explicit film's stored samples: the daemon's
// codec decodes its codestream to what OpenJPH's own ojph_expand makes of
// it and to the native film's Pixel Data, pixel for pixel, and the
// daemon's decode gives the same display image for both films, exact and
// reduced.
func TestGeneratedHTJ2KFilm(t *testing.T) {
	testenv.Slow(t)
	testenv.SharedData(t)
	ojph.Tool(t, "ojph_compress")
	ojph.Tool(t, "ojph_expand")
	if err := exec.Command("/usr/bin/python3", "-c", "import pydicom, PIL, numpy").Run(); err != nil {
		t.Skip("/usr/bin/python3 lacks pydicom, PIL or numpy (Debian packages python3-pydicom python3-pil python3-numpy)")
	}
	dir := t.TempDir()
	// n=2: the second film is MONOCHROME1, stored inverted.
	cmd := exec.Command("/usr/bin/python3", filepath.Join(testenv.Root(), "scripts", "gen-films.py"),
		"--out", dir, "--n", "2", "--syntaxes", "explicit,htj2kll")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-films.py: %v\n%s", err, out)
	}
	films, err := LoadFilms(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(films) != 4 {
		t.Fatalf("%d films, want 4", len(films))
	}
	for i := 0; i < len(films); i += 2 {
		native, ht := films[i], films[i+1]
		if native.Syntax != "explicit" || ht.Syntax != "htj2kll" || ht.TS != "1.2.840.10008.1.2.4.201" {
			t.Fatalf("films %s (%s), %s (%s %s)", native.Path, native.Syntax, ht.Path, ht.Syntax, ht.TS)
		}
		if string(ht.uid) == string(native.uid) || !rewritable.Match(ht.uid) {
			t.Errorf("HTJ2K film's SOP Instance UID %s: want its own, last component 10 digits starting with 1 (native %s)", ht.uid, native.uid)
		}
		cs := codestreamOf(t, ht.data)
		fr, err := codec.J2K(cs, codec.Want{Width: ht.Cols, Height: ht.Rows, Components: 1})
		if err != nil {
			t.Fatalf("%s: %v", ht.Path, err)
		}
		stored := native.data[len(native.data)-2*native.Rows*native.Cols:]
		expand := ojph.Expand(t, cs)
		for k, v := range fr.Data16 {
			if w := binary.LittleEndian.Uint16(stored[2*k:]); v != w || int(v) != expand[k] {
				t.Fatalf("%s: sample %d: OpenJPEG %d, ojph_expand %d, native film %d", ht.Path, k, v, expand[k], w)
			}
		}
		for _, floor := range []int{0, 448} {
			lim := decode.DefaultLimits
			lim.ReducedMinSide = floor
			a, err := decode.Decode(bytes.NewReader(native.data), int64(len(native.data)), lim)
			if err != nil {
				t.Fatal(err)
			}
			b, err := decode.Decode(bytes.NewReader(ht.data), int64(len(ht.data)), lim)
			if err != nil {
				t.Fatal(err)
			}
			if floor == 0 && !bytes.Equal(a.Image.Pix, b.Image.Pix) {
				t.Errorf("%s: display image differs from the native film's", ht.Path)
			}
			if floor > 0 && (b.Reduced != 2 || min(b.Image.Rect.Dx(), b.Image.Rect.Dy()) < floor) {
				t.Errorf("%s: reduced decode at level %d, %v", ht.Path, b.Reduced, b.Image.Rect)
			}
		}
		t.Logf("%s: %dx%d %s, %d bytes (native %d), pixel-exact", filepath.Base(ht.Path), ht.Cols, ht.Rows, ht.Photo, ht.Bytes, native.Bytes)
	}
}

// rewritable is the form of SOP Instance UID whose copies the bench makes.
var rewritable = regexp.MustCompile(`\.1[0-9]{9}$`)

// codestreamOf returns the first fragment of a single-frame encapsulated
// film: the item after the empty basic offset table.
func codestreamOf(t *testing.T, film []byte) []byte {
	t.Helper()
	soc := bytes.Index(film, []byte{0xff, 0x4f, 0xff, 0x51})
	if soc < 8 || !bytes.Equal(film[soc-8:soc-4], []byte{0xfe, 0xff, 0x00, 0xe0}) {
		t.Fatal("no JPEG 2000 codestream in an item")
	}
	n := int(binary.LittleEndian.Uint32(film[soc-4:]))
	if soc+n > len(film) {
		t.Fatal("fragment longer than the file")
	}
	return film[soc : soc+n]
}
