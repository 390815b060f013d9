// Package decode turns a DICOM file into what the model looks at: the film's
// identifiers and routing attributes, and a display-ready 8-bit gray image
// (stored values -> Modality LUT -> VOI LUT -> MONOCHROME1 inversion).
package decode

import (
	"errors"
	"fmt"
)

// Code is a stable reason code for a file that cannot be decoded. Codes
// appear in error events, quarantine reason files and metrics, so they never
// change meaning.
type Code string

const (
	CodeEmptyFile           Code = "empty_file"
	CodeTooLarge            Code = "too_large"
	CodeNotDICOM            Code = "not_dicom"
	CodeBadMeta             Code = "bad_file_meta"
	CodeParse               Code = "parse_error"
	CodeTruncated           Code = "truncated"
	CodeNoPixelData         Code = "no_pixel_data"
	CodePixelDataSize       Code = "pixel_data_size"
	CodeBadHeader           Code = "bad_image_header"
	CodeUnsupportedSyntax   Code = "unsupported_transfer_syntax"
	CodeUnsupportedPixels   Code = "unsupported_pixel_format"
	CodeCodec               Code = "codec_error"
	CodeCodecMissing        Code = "codec_missing"
	CodeTooManyPixels       Code = "too_many_pixels"
	CodeElementLength       Code = "element_length"
	CodeNotRegularFile      Code = "not_regular_file"
	CodeSymlink             Code = "symlink"
	CodeUnreadable          Code = "unreadable"
	CodeInternal            Code = "internal_error"
	CodeDecompressedTooLong Code = "decompressed_too_large"
	CodeHeaderTooLarge      Code = "header_too_large"
	CodeDecodeMemory        Code = "decode_memory"
)

// Error is a decode failure with its reason code.
type Error struct {
	Code Code
	Err  error
	// panicked: the failure is a recovered panic (a bug, in our code or a
	// library's), which tests must never accept as a refusal.
	panicked bool
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Code, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func fail(code Code, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

func wrap(code Code, err error) error {
	var de *Error
	if errors.As(err, &de) {
		return err
	}
	return &Error{Code: code, Err: err}
}

// Reason is the error's message without its code.
func Reason(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Err.Error()
	}
	return err.Error()
}

// CodeOf returns the reason code of a decode error, or CodeInternal for an
// error that is not a decode error (a bug: every decode failure has a code).
func CodeOf(err error) Code {
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	return CodeInternal
}

// Panicked reports whether err is a recovered panic rather than a refusal
// the decoder chose: the daemon survives it, but it is always a bug.
func Panicked(err error) bool {
	var de *Error
	return errors.As(err, &de) && de.panicked
}

func panicked(code Code, who string, p any) error {
	return &Error{Code: code, Err: fmt.Errorf("%s panicked: %v", who, p), panicked: true}
}

// EchoCS is how a reason repeats a coded header value (VR CS: Photometric
// Interpretation, Modality, Body Part, View Position): quoted only when it
// is a valid code string (A-Z, 0-9, space, underscore, at most 16
// characters), described otherwise. A hostile or broken file may hold a
// patient's name anywhere, and reasons reach logs and events.
func EchoCS(s string) string {
	if len(s) > 16 {
		return "(a value that is not a valid code string)"
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '_') {
			return "(a value that is not a valid code string)"
		}
	}
	return fmt.Sprintf("%q", s)
}

// EchoUI repeats a UID only when it is one (digits and dots, at most 64).
func EchoUI(s string) string {
	if s == "" || len(s) > 64 {
		return "(a value that is not a valid UID)"
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c == '.') {
			return "(a value that is not a valid UID)"
		}
	}
	return s
}
