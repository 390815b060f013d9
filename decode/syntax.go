package decode

import (
	"fmt"
	"strings"

	"github.com/suyashkumar/dicom/pkg/uid"
)

// Transfer syntax UIDs the decoder knows by name.
const (
	TSImplicitLE       = "1.2.840.10008.1.2"
	TSExplicitLE       = "1.2.840.10008.1.2.1"
	TSEncapsulatedLE   = "1.2.840.10008.1.2.1.98"
	TSDeflatedLE       = "1.2.840.10008.1.2.1.99"
	TSExplicitBE       = "1.2.840.10008.1.2.2"
	TSJPEGBaseline     = "1.2.840.10008.1.2.4.50"
	TSJPEGExtended     = "1.2.840.10008.1.2.4.51"
	TSJPEGLossless     = "1.2.840.10008.1.2.4.57"
	TSJPEGLosslessSV   = "1.2.840.10008.1.2.4.70"
	TSJPEGLSLossless   = "1.2.840.10008.1.2.4.80"
	TSJPEGLSNear       = "1.2.840.10008.1.2.4.81"
	TSJ2KLossless      = "1.2.840.10008.1.2.4.90"
	TSJ2K              = "1.2.840.10008.1.2.4.91"
	TSJ2KPart2Lossless = "1.2.840.10008.1.2.4.92"
	TSJ2KPart2         = "1.2.840.10008.1.2.4.93"
	TSHTJ2KLossless    = "1.2.840.10008.1.2.4.201"
	TSHTJ2KRPCL        = "1.2.840.10008.1.2.4.202"
	TSHTJ2K            = "1.2.840.10008.1.2.4.203"
	TSRLE              = "1.2.840.10008.1.2.5"
)

// codec names the decoder of a transfer syntax's pixel data.
type codecKind int

const (
	codecNone   codecKind = iota // not decoded: the film is quarantined
	codecNative                  // uncompressed, in the data set
	codecRaw                     // uncompressed frames in encapsulated fragments
	codecJPEG
	codecJPEGLS
	codecJ2K
	codecRLE
)

// Syntax is a transfer syntax and what the decoder does with it.
type Syntax struct {
	UID, Name string
	// Status is the one-line support statement of the README table.
	Status   string
	implicit bool
	big      bool
	deflated bool
	encaps   bool
	codec    codecKind
}

// Supported reports whether films in this syntax are decoded.
func (s Syntax) Supported() bool { return s.codec != codecNone }

// Syntaxes is every transfer syntax the decoder treats specially, in the
// order of the README table. Anything else that the DICOM standard lists
// as a transfer syntax is read (headers, routing) and then quarantined as
// unsupported_transfer_syntax; a UID that is not a transfer syntax at all
// is quarantined at once, since its encoding is unknown.
var Syntaxes = []Syntax{
	{UID: TSImplicitLE, Name: "Implicit VR Little Endian", Status: "decoded", implicit: true, codec: codecNative},
	{UID: TSExplicitLE, Name: "Explicit VR Little Endian", Status: "decoded", codec: codecNative},
	{UID: TSExplicitBE, Name: "Explicit VR Big Endian (retired)", Status: "decoded", big: true, codec: codecNative},
	{UID: TSDeflatedLE, Name: "Deflated Explicit VR Little Endian", Status: "decoded (bounded inflate, Go)", deflated: true, codec: codecNative},
	{UID: TSEncapsulatedLE, Name: "Encapsulated Uncompressed Explicit VR Little Endian", Status: "decoded", encaps: true, codec: codecRaw},
	{UID: TSJPEGBaseline, Name: "JPEG Baseline (Process 1)", Status: "decoded (libjpeg-turbo, as PIL)", encaps: true, codec: codecJPEG},
	{UID: TSJPEGExtended, Name: "JPEG Extended (Process 2 & 4)", Status: "decoded: 8-bit libjpeg-turbo, 12-bit IJG (libgdcmjpeg12)", encaps: true, codec: codecJPEG},
	{UID: TSJPEGLossless, Name: "JPEG Lossless, Non-Hierarchical (Process 14)", Status: "decoded (IJG lossless, libgdcmjpeg8/12/16)", encaps: true, codec: codecJPEG},
	{UID: TSJPEGLosslessSV, Name: "JPEG Lossless, Process 14, Selection Value 1", Status: "decoded (IJG lossless, libgdcmjpeg8/12/16)", encaps: true, codec: codecJPEG},
	{UID: TSJPEGLSLossless, Name: "JPEG-LS Lossless", Status: "decoded (CharLS 2)", encaps: true, codec: codecJPEGLS},
	{UID: TSJPEGLSNear, Name: "JPEG-LS Lossy (Near-Lossless)", Status: "decoded (CharLS 2)", encaps: true, codec: codecJPEGLS},
	{UID: TSJ2KLossless, Name: "JPEG 2000 (Lossless Only)", Status: "decoded (OpenJPEG 2.5)", encaps: true, codec: codecJ2K},
	{UID: TSJ2K, Name: "JPEG 2000", Status: "decoded (OpenJPEG 2.5)", encaps: true, codec: codecJ2K},
	{UID: TSHTJ2KLossless, Name: "High-Throughput JPEG 2000 (Lossless Only)", Status: "decoded (OpenJPEG 2.5 HT decoder, header checked as hostile)", encaps: true, codec: codecJ2K},
	{UID: TSHTJ2KRPCL, Name: "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)", Status: "decoded (OpenJPEG 2.5 HT decoder, header checked as hostile)", encaps: true, codec: codecJ2K},
	{UID: TSHTJ2K, Name: "High-Throughput JPEG 2000", Status: "decoded (OpenJPEG 2.5 HT decoder, header checked as hostile)", encaps: true, codec: codecJ2K},
	{UID: TSRLE, Name: "RLE Lossless", Status: "decoded (Go)", encaps: true, codec: codecRLE},
	{UID: TSJ2KPart2Lossless, Name: "JPEG 2000 Part 2 Multi-component (Lossless Only)", Status: "quarantined: unsupported_transfer_syntax", encaps: true},
	{UID: TSJ2KPart2, Name: "JPEG 2000 Part 2 Multi-component", Status: "quarantined: unsupported_transfer_syntax", encaps: true},
}

var syntaxByUID = func() map[string]Syntax {
	m := map[string]Syntax{}
	for _, s := range Syntaxes {
		m[s.UID] = s
	}
	return m
}()

// newerSyntaxes are standard transfer syntaxes added after the parser's
// UID dictionary was written (DICOM 2022-2024): all explicit VR little
// endian; known here so that a film in one is refused naming it.
var newerSyntaxes = map[string]Syntax{
	"1.2.840.10008.1.2.4.110": {Name: "JPEG XL Lossless", encaps: true},
	"1.2.840.10008.1.2.4.111": {Name: "JPEG XL JPEG Recompression", encaps: true},
	"1.2.840.10008.1.2.4.112": {Name: "JPEG XL", encaps: true},
	"1.2.840.10008.1.2.8.1":   {Name: "Deflated Image Frame Compression", encaps: true},
	"1.2.840.10008.1.2.4.204": {Name: "JPIP HTJ2K Referenced"},
	"1.2.840.10008.1.2.4.205": {Name: "JPIP HTJ2K Referenced Deflate", deflated: true},
	"1.2.840.10008.1.2.7.1":   {Name: "SMPTE ST 2110-20 Uncompressed Progressive Active Video"},
	"1.2.840.10008.1.2.7.2":   {Name: "SMPTE ST 2110-20 Uncompressed Interlaced Active Video"},
	"1.2.840.10008.1.2.7.3":   {Name: "SMPTE ST 2110-30 PCM Digital Audio"},
}

// lookupSyntax finds a transfer syntax. Standard ones not in Syntaxes
// (MPEG, JPIP, JPEG XL, retired JPEG processes...) are explicit VR little
// endian and encapsulated, and not decoded.
func lookupSyntax(ts string) (Syntax, bool) {
	if s, ok := syntaxByUID[ts]; ok {
		return s, true
	}
	if s, ok := newerSyntaxes[ts]; ok {
		s.UID, s.Status = ts, "quarantined: unsupported_transfer_syntax"
		return s, true
	}
	info, err := uid.Lookup(ts)
	if err != nil || info.Type != uid.TypeTransferSyntax {
		return Syntax{}, false
	}
	return Syntax{UID: ts, Name: info.Name, Status: "quarantined: unsupported_transfer_syntax", encaps: true}, true
}

func tsName(ts string) string {
	if s, ok := lookupSyntax(ts); ok {
		return ts + " (" + s.Name + ")"
	}
	return ts
}

// SyntaxTable renders the README's transfer syntax table.
func SyntaxTable() string {
	var b strings.Builder
	b.WriteString("| transfer syntax | UID | status |\n|---|---|---|\n")
	for _, s := range Syntaxes {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", s.Name, s.UID, s.Status)
	}
	b.WriteString("| any other standard transfer syntax (MPEG, HEVC, JPIP, JPEG XL, Deflated Image Frame Compression, SMPTE ST 2110, retired JPEG processes) | | quarantined: unsupported_transfer_syntax, the reason naming it |\n")
	b.WriteString("| a UID that is not a transfer syntax | | quarantined at once: unsupported_transfer_syntax (its encoding is unknown) |\n")
	return b.String()
}
