package dicomweb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
)

// The multipart reader below reads a STOW-RS body (RFC 2046 multipart) by
// the same rules as the standard library's mime/multipart NextRawPart: the
// same parts, headers and bodies for every body both read to the end
// (FuzzMultipart checks that against mime/multipart). It exists for one
// reason: mime/multipart finds the delimiter "\r\n--boundary" with
// bytes.Index, which steps from one '\r' byte to the next and falls back to
// a byte-at-a-time Rabin-Karp scan when they are frequent, and in 12- and
// 16-bit pixel data they are (0x0D is the high byte of every value from
// 3328 to 3583). On a 10 MB film that scan was a quarter of the receiver's
// CPU (BenchmarkSTOW's profile, 8 ms of 35 per film). A Horspool search
// keyed on the delimiter's last byte skips about a delimiter's length at a
// time instead.

// maxBoundary bounds the boundary parameter: RFC 2046 allows 70
// characters; a little more is tolerated, nothing a peer could use to make
// the search or the buffer large.
const maxBoundary = 256

// Limits on one part's header block, which a sender could otherwise make
// as long as the whole request.
const (
	maxPartHeaderBytes = 64 << 10
	maxPartHeaderLines = 200
)

var errPartHeader = errors.New("multipart: part header block too large")

// finder is a Boyer-Moore-Horspool search for one pattern.
type finder struct {
	pat  []byte
	skip [256]int
}

func newFinder(pat []byte) *finder {
	f := &finder{pat: pat}
	for i := range f.skip {
		f.skip[i] = len(pat)
	}
	for i := 0; i < len(pat)-1; i++ {
		f.skip[pat[i]] = len(pat) - 1 - i
	}
	return f
}

// index is the first index of the pattern in s, or -1.
func (f *finder) index(s []byte) int {
	n := len(f.pat)
	last := n - 1
	pl := f.pat[last]
	for i := 0; i+n <= len(s); {
		c := s[i+last]
		if c == pl && bytes.Equal(s[i:i+last], f.pat[:last]) {
			return i
		}
		i += f.skip[c]
	}
	return -1
}

// multipartReader iterates over the parts of a multipart body.
type multipartReader struct {
	br      *bufio.Reader
	current *mpart
	// partsRead counts the parts returned: before the first, lines are
	// preamble; after, only the separator before a delimiter may come.
	partsRead int

	nl               []byte // "\r\n", or "\n" for a sender that uses bare LF
	nlDashBoundary   []byte // nl + "--" + boundary
	dashBoundaryDash []byte // "--" + boundary + "--"
	dashBoundary     []byte // "--" + boundary
	find             *finder
}

// newMultipartReader reads parts from r, buffered by size bytes (at least
// 4 KiB; 256 KiB in the server, so the connection is read in large gulps).
func newMultipartReader(r io.Reader, boundary string, size int) (*multipartReader, error) {
	if boundary == "" || len(boundary) > maxBoundary {
		return nil, fmt.Errorf("multipart: boundary of %d characters (1 to %d accepted)", len(boundary), maxBoundary)
	}
	// As mime/multipart, lines of the preamble and headers up to 4 KiB.
	size = max(size, 4096, 4*(len(boundary)+8))
	b := []byte("\r\n--" + boundary + "--")
	mr := &multipartReader{
		br:               bufio.NewReaderSize(r, size),
		nl:               b[:2],
		nlDashBoundary:   b[:len(b)-2],
		dashBoundaryDash: b[2:],
		dashBoundary:     b[2 : len(b)-2],
	}
	mr.find = newFinder(mr.nlDashBoundary)
	return mr, nil
}

// NextPart returns the next part, or io.EOF after the final delimiter. The
// previous part's unread body is skipped. Transfer encodings are not
// decoded (STOW-RS parts are binary), as NextRawPart does.
func (r *multipartReader) NextPart() (*mpart, error) {
	if r.current != nil {
		if _, err := io.Copy(io.Discard, r.current); err != nil {
			return nil, fmt.Errorf("multipart: skipping the rest of a part: %w", err)
		}
		r.current = nil
	}
	expectNewPart := false
	for {
		line, err := r.br.ReadSlice('\n')
		if err == io.EOF && r.isFinalBoundary(line) {
			// "--boundary--" at the very end, without its line ending.
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: NextPart: %w", err)
		}
		if r.isBoundaryDelimiterLine(line) {
			r.partsRead++
			h, err := r.readHeader()
			if err != nil {
				return nil, err
			}
			r.current = &mpart{Header: h, mr: r}
			return r.current, nil
		}
		if r.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if expectNewPart {
			return nil, fmt.Errorf("multipart: expecting a new part; got a line of %d bytes", len(line))
		}
		if r.partsRead == 0 {
			continue // preamble
		}
		// The line ending between a part's body and the delimiter line.
		if bytes.Equal(line, r.nl) {
			expectNewPart = true
			continue
		}
		return nil, fmt.Errorf("multipart: unexpected line of %d bytes between parts", len(line))
	}
}

// readHeader reads a part's header block up to its blank line, bounded,
// and parses it as MIME headers.
func (r *multipartReader) readHeader() (textproto.MIMEHeader, error) {
	var block []byte
	for lines := 0; ; lines++ {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errPartHeader
			}
			return nil, fmt.Errorf("multipart: reading a part's header: %w", err)
		}
		if len(block)+len(line) > maxPartHeaderBytes || lines >= maxPartHeaderLines {
			return nil, errPartHeader
		}
		block = append(block, line...)
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(block))).ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("multipart: malformed part header: %w", err)
	}
	return h, nil
}

func (r *multipartReader) isFinalBoundary(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, r.dashBoundaryDash)
	if !ok {
		return false
	}
	rest = skipLWSP(rest)
	return len(rest) == 0 || bytes.Equal(rest, r.nl)
}

func (r *multipartReader) isBoundaryDelimiterLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, r.dashBoundary)
	if !ok {
		return false
	}
	rest = skipLWSP(rest)
	// A sender whose first delimiter line ends in a bare LF uses bare LFs
	// throughout (against the RFC, seen in practice): follow it.
	if r.partsRead == 0 && len(rest) == 1 && rest[0] == '\n' {
		r.nl = r.nl[1:]
		r.nlDashBoundary = r.nlDashBoundary[1:]
		r.find = newFinder(r.nlDashBoundary)
	}
	return bytes.Equal(rest, r.nl)
}

func skipLWSP(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// mpart is one part: its headers, and its body as an io.Reader.
type mpart struct {
	Header textproto.MIMEHeader
	mr     *multipartReader

	n       int   // body bytes known to be ready in the buffer
	total   int64 // body bytes read
	err     error // what ends the body once n is read (io.EOF at the delimiter)
	readErr error // the underlying reader's error
}

// Read reads the part's body, up to the delimiter.
func (p *mpart) Read(d []byte) (int, error) {
	br := p.mr.br
	for p.n == 0 && p.err == nil {
		peek, _ := br.Peek(br.Buffered())
		p.n, p.err = p.mr.scan(peek, p.total, p.readErr)
		if p.n == 0 && p.err == nil {
			// Not enough buffered to decide: read more.
			_, p.readErr = br.Peek(len(peek) + 1)
			if p.readErr == io.EOF {
				p.readErr = io.ErrUnexpectedEOF
			}
		}
	}
	if p.n == 0 {
		return 0, p.err
	}
	n, _ := br.Read(d[:min(len(d), p.n)])
	p.total += int64(n)
	p.n -= n
	if p.n == 0 {
		return n, p.err
	}
	return n, nil
}

// scan says how much of buf (the buffered input at body offset total) is
// body: n bytes, then err (io.EOF when a delimiter follows them), or 0 and
// nil when more input is needed to decide.
func (r *multipartReader) scan(buf []byte, total int64, readErr error) (int, error) {
	if total == 0 {
		// An empty body: the delimiter may follow the header's blank line
		// directly, without its leading line ending.
		if bytes.HasPrefix(buf, r.dashBoundary) {
			switch matchAfterPrefix(buf, r.dashBoundary, readErr) {
			case -1:
				return len(r.dashBoundary), nil
			case 0:
				return 0, nil
			case +1:
				return 0, io.EOF
			}
		}
		if bytes.HasPrefix(r.dashBoundary, buf) {
			return 0, readErr
		}
	}
	if i := r.find.index(buf); i >= 0 {
		switch matchAfterPrefix(buf[i:], r.nlDashBoundary, readErr) {
		case -1:
			return i + len(r.nlDashBoundary), nil
		case 0:
			return i, nil
		case +1:
			return i, io.EOF
		}
	}
	if bytes.HasPrefix(r.nlDashBoundary, buf) {
		return 0, readErr
	}
	// Everything before the last possible start of a delimiter is body;
	// so is that tail if it cannot begin one.
	i := bytes.LastIndexByte(buf, r.nlDashBoundary[0])
	if i >= 0 && bytes.HasPrefix(r.nlDashBoundary, buf[i:]) {
		return i, nil
	}
	return len(buf), readErr
}

// matchAfterPrefix says whether buf, which starts with prefix, is a
// delimiter (+1), is not (-1), or needs more input (0): a delimiter is
// followed by white space, a line ending, or "--".
func matchAfterPrefix(buf, prefix []byte, readErr error) int {
	if len(buf) == len(prefix) {
		if readErr != nil {
			return +1
		}
		return 0
	}
	c := buf[len(prefix)]
	if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
		return +1
	}
	if c == '-' {
		if len(buf) == len(prefix)+1 {
			if readErr != nil {
				return -1
			}
			return 0
		}
		if buf[len(prefix)+1] == '-' {
			return +1
		}
	}
	return -1
}
