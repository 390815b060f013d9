package decode

import (
	"bytes"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

// Transfer syntaxes newer than the parser's dictionary are read (headers,
// routing) and refused as unsupported_transfer_syntax with their names,
// not as "not a known transfer syntax".
func TestNewerSyntaxesRefusedByName(t *testing.T) {
	for uid, name := range map[string]string{
		"1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
		"1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
		"1.2.840.10008.1.2.4.112": "JPEG XL",
		"1.2.840.10008.1.2.8.1":   "Deflated Image Frame Compression",
	} {
		checkRefused(t, uid)
		pd := dicomtest.Encapsulated([]byte("not decoded here"))
		b := dicomtest.Image{TransferSyntax: uid, Rows: 2, Columns: 2, PixelData: &pd}.Bytes()
		_, err := Decode(bytes.NewReader(b), int64(len(b)), DefaultLimits)
		if CodeOf(err) != CodeUnsupportedSyntax || !strings.Contains(Reason(err), "("+name+")") {
			t.Errorf("%s: %v", uid, err)
		}
		// A native Pixel Data in such a file is refused for the syntax too.
		b = dicomtest.Image{TransferSyntax: uid, Rows: 2, Columns: 2, Pixels: []int{1, 2, 3, 4}}.Bytes()
		if _, err := Decode(bytes.NewReader(b), int64(len(b)), DefaultLimits); CodeOf(err) != CodeUnsupportedSyntax {
			t.Errorf("%s, native pixels: %v", uid, err)
		}
	}
}
