// Package ojph makes HTJ2K test films with OpenJPH's command-line tools
// (Debian openjph-tools), an encoder independent of the OpenJPEG decoder
// the daemon uses, so tests compare two implementations. Tests that use it
// skip, naming the package, where the tools are not installed.
package ojph

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

// Tool finds an OpenJPH program; without it the test skips.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian package openjph-tools)", name)
	}
	return p
}

// Run runs an OpenJPH program and fails the test with its output.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(Tool(t, name), args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// Compress encodes w x h gray samples of the given bit depth with
// ojph_compress and its args (for example -reversible true) and returns
// the codestream.
func Compress(t testing.TB, w, h, bits int, px []int, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	var pgm bytes.Buffer
	fmt.Fprintf(&pgm, "P5\n%d %d\n%d\n", w, h, 1<<bits-1)
	for _, v := range px {
		if bits > 8 {
			_ = binary.Write(&pgm, binary.BigEndian, uint16(v))
		} else {
			pgm.WriteByte(byte(v))
		}
	}
	in, out := filepath.Join(dir, "in.pgm"), filepath.Join(dir, "out.j2c")
	if err := os.WriteFile(in, pgm.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "ojph_compress", append([]string{"-i", in, "-o", out}, args...)...)
	cs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Film is im's pixels compressed by ojph_compress with args, wrapped as a
// film in transfer syntax ts.
func Film(t testing.TB, im dicomtest.Image, ts string, args ...string) []byte {
	t.Helper()
	cs := Compress(t, im.Columns, im.Rows, im.BitsStored, im.Pixels, args...)
	im.TransferSyntax = ts
	pd := dicomtest.Encapsulated(cs)
	im.PixelData = &pd
	return im.Bytes()
}

// Expand decodes a codestream with ojph_expand and its args (for example
// -skip_res 2,2) and returns its samples.
func Expand(t testing.TB, cs []byte, args ...string) []int {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.j2c"), filepath.Join(dir, "out.pgm")
	if err := os.WriteFile(in, cs, 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "ojph_expand", append([]string{"-i", in, "-o", out}, args...)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	var magic string
	var w, h, maxv int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil || magic != "P5" {
		t.Fatalf("ojph_expand output: %q %d x %d, max %d: %v", magic, w, h, maxv, err)
	}
	_, _ = r.ReadByte() // the one white space after the header
	px := make([]int, w*h)
	if maxv < 256 {
		for i := range px {
			c, err := r.ReadByte()
			if err != nil {
				t.Fatalf("ojph_expand output, %d x %d: %v", w, h, err)
			}
			px[i] = int(c)
		}
		return px
	}
	v := make([]uint16, w*h)
	if err := binary.Read(r, binary.BigEndian, v); err != nil {
		t.Fatalf("ojph_expand output, %d x %d: %v", w, h, err)
	}
	for i := range v {
		px[i] = int(v[i])
	}
	return px
}
