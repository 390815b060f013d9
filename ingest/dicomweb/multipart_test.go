package dicomweb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every part with mime/multipart (want) or ours (got): each
// part's headers and body, and whether the body ended cleanly (io.EOF
// after the final delimiter).
type parsed struct {
	headers []textproto.MIMEHeader
	bodies  [][]byte
	clean   bool
}

func parseStd(body []byte, boundary string) parsed {
	var p parsed
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			p.clean = true
			return p
		}
		if err != nil {
			return p
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return p
		}
		p.headers = append(p.headers, part.Header)
		p.bodies = append(p.bodies, b)
	}
}

func parseOurs(r io.Reader, boundary string, size int) (parsed, error) {
	var p parsed
	mr, err := newMultipartReader(r, boundary, size)
	if err != nil {
		return p, err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			p.clean = true
			return p, nil
		}
		if err != nil {
			return p, err
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return p, err
		}
		p.headers = append(p.headers, part.Header)
		p.bodies = append(p.bodies, b)
	}
}

// sameAsStd checks that where mime/multipart reads a body to its final
// delimiter, ours reads the same parts, whatever the buffer size and
// however the input is split into reads.
func sameAsStd(t *testing.T, body []byte, boundary string, size int) {
	t.Helper()
	want := parseStd(body, boundary)
	if !want.clean || boundary == "" || len(boundary) > maxBoundary {
		// Ours may differ where the standard library gives up (its 4 KiB
		// line limit, its header limits): it must only not crash.
		_, _ = parseOurs(bytes.NewReader(body), boundary, size)
		return
	}
	for _, r := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body)), iotest.HalfReader(bytes.NewReader(body))} {
		got, err := parseOurs(r, boundary, size)
		if err != nil {
			t.Fatalf("mime/multipart reads %d parts, ours fails: %v", len(want.bodies), err)
		}
		if len(got.bodies) != len(want.bodies) || !got.clean {
			t.Fatalf("parts: got %d (clean %v), want %d", len(got.bodies), got.clean, len(want.bodies))
		}
		for i := range want.bodies {
			if !bytes.Equal(got.bodies[i], want.bodies[i]) {
				t.Fatalf("part %d: body of %d bytes, want %d", i, len(got.bodies[i]), len(want.bodies[i]))
			}
			if !reflect.DeepEqual(got.headers[i], want.headers[i]) {
				t.Fatalf("part %d: header %v, want %v", i, got.headers[i], want.headers[i])
			}
		}
	}
}

// pixelLike is 16-bit little-endian data of a smooth 12-bit image: long
// runs of 0x0D high bytes, each "\r" the start of a possible delimiter,
// the data that made mime/multipart's search slow.
func pixelLike(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+1 < n; i += 2 {
		v := 3300 + (i/2)%400
		b[i], b[i+1] = byte(v), byte(v>>8)
	}
	return b
}

func TestMultipartMatchesStd(t *testing.T) {
	const bd = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab" // mime/multipart.Writer's length
	build := func(boundary string, nl string, parts ...[]byte) []byte {
		var b bytes.Buffer
		b.WriteString("preamble" + nl)
		for _, p := range parts {
			b.WriteString("--" + boundary + nl + "Content-Type: application/dicom" + nl + nl)
			b.Write(p)
			b.WriteString(nl)
		}
		b.WriteString("--" + boundary + "--" + nl + "epilogue")
		return b.Bytes()
	}
	tricky := []byte("a\r\n--" + bd + "x\r\n--" + bd[:30] + "\r\n-\r\n--")
	cases := map[string][]byte{
		"pixels":       build(bd, "\r\n", pixelLike(300_000), pixelLike(10)),
		"empty parts":  build(bd, "\r\n", nil, nil),
		"near misses":  build(bd, "\r\n", tricky, tricky),
		"bare LF":      build(bd, "\n", []byte("x\ny"), pixelLike(5000)),
		"short bound":  build("b", "\r\n", []byte("--b-"), []byte("\r\n--b-x")),
		"no final nl":  bytes.TrimSuffix(build(bd, "\r\n", []byte("z")), []byte("\r\nepilogue")),
		"LWSP":         []byte("--" + bd + " \t\r\nA: b\r\n\r\nbody\r\n--" + bd + "-- \r\n"),
		"unterminated": []byte("--" + bd + "\r\n\r\nbody without end"),
	}
	for name, body := range cases {
		boundary := bd
		if name == "short bound" {
			boundary = "b"
		}
		t.Run(name, func(t *testing.T) {
			for _, size := range []int{16, 4096, 256 << 10} {
				sameAsStd(t, body, boundary, size)
			}
		})
	}
}

func TestMultipartBounds(t *testing.T) {
	if _, err := newMultipartReader(strings.NewReader(""), strings.Repeat("b", maxBoundary+1), 4096); err == nil {
		t.Error("a boundary longer than the limit was accepted")
	}
	if _, err := newMultipartReader(strings.NewReader(""), "", 4096); err == nil {
		t.Error("an empty boundary was accepted")
	}
	// A header block without end is refused at the limit, not read whole.
	var b bytes.Buffer
	b.WriteString("--b\r\n")
	for b.Len() < 4*maxPartHeaderBytes {
		fmt.Fprintf(&b, "X-H%d: v\r\n", b.Len())
	}
	mr, err := newMultipartReader(&b, "b", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mr.NextPart(); !errors.Is(err, errPartHeader) {
		t.Fatalf("endless header: %v, want errPartHeader", err)
	}
}

func FuzzMultipart(f *testing.F) {
	f.Add([]byte("--b\r\nA: 1\r\n\r\nx\r\n--b\r\n\r\n\r\n--b--"), "b", uint16(16))
	f.Add([]byte("pre\n--b\n\nx\n--b-\n--b--\n"), "b", uint16(5))
	f.Add([]byte("--bb\r\n\r\n\r\n--bbx\r\n--bb--"), "bb", uint16(300))
	f.Fuzz(func(t *testing.T, body []byte, boundary string, size uint16) {
		sameAsStd(t, body, boundary, int(size))
	})
}

// BenchmarkMultipart reads a 10 MB part of pixel-like data with
// mime/multipart and with ours, from 256 KiB buffered input as the server
// reads it, into io.Discard.
func BenchmarkMultipart(b *testing.B) {
	const bd = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
	var body bytes.Buffer
	body.WriteString("--" + bd + "\r\nContent-Type: application/dicom\r\n\r\n")
	body.Write(pixelLike(10 << 20))
	body.WriteString("\r\n--" + bd + "--\r\n")
	for _, impl := range []string{"mime-multipart", "ours"} {
		b.Run(impl, func(b *testing.B) {
			b.SetBytes(int64(body.Len()))
			for b.Loop() {
				in := bufio.NewReaderSize(bytes.NewReader(body.Bytes()), 256<<10)
				var part io.Reader
				var err error
				if impl == "ours" {
					mr, _ := newMultipartReader(in, bd, 256<<10)
					part, err = mr.NextPart()
				} else {
					part, err = multipart.NewReader(in, bd).NextRawPart()
				}
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, part); err != nil || n != 10<<20 {
					b.Fatal(n, err)
				}
			}
		})
	}
}
