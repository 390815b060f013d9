package decode

import "bytes"

// FileKind is what a file's first bytes say it is.
type FileKind int

const (
	// KindDICOM is a DICOM file: Part 10 ("DICM" at 128), or anything that
	// is not a recognised image (a bare data set; the DICOM parser decides).
	KindDICOM FileKind = iota
	// KindImage is a JPEG or PNG image file (training data, screenshots).
	KindImage
)

// Sniff is the one rule every command uses to tell a DICOM film from a
// plain image file: the DICM magic wins; then the JPEG (FF D8 FF) and PNG
// signatures; anything else is read as DICOM and refused by the parser with
// a reason if it is not.
func Sniff(data []byte) FileKind {
	switch {
	case len(data) >= 132 && string(data[128:132]) == "DICM":
		return KindDICOM
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}), bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return KindImage
	}
	return KindDICOM
}
