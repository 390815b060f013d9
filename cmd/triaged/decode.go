package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/provision"
)

// decodeSummary is what `triaged decode` prints: the attributes that decide
// how a film is displayed, and no identifiers.
type decodeSummary struct {
	File           string   `json:"file"`
	TransferSyntax string   `json:"transfer_syntax"`
	Modality       string   `json:"modality,omitempty"`
	BodyPart       string   `json:"body_part,omitempty"`
	ViewPosition   string   `json:"view_position,omitempty"`
	Rows           int      `json:"rows"`
	Columns        int      `json:"columns"`
	Photometric    string   `json:"photometric"`
	BitsAllocated  int      `json:"bits_allocated"`
	BitsStored     int      `json:"bits_stored"`
	HighBit        int      `json:"high_bit"`
	Signed         bool     `json:"signed"`
	Frames         int      `json:"frames"`
	RescaleSlope   float64  `json:"rescale_slope"`
	RescaleIcpt    float64  `json:"rescale_intercept"`
	Display        string   `json:"display"`
	Outputs        []string `json:"outputs"`
}

// cmdDecode writes what the model sees of a film: the display-ready 8-bit
// image, and on request the raw stored values (16-bit PNG) and the 224x224
// crop the model's preprocessing makes of it. Output paths come only from
// the command line, never from the file.
func cmdDecode(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("decode", stdout, stderr)
	cfgPath := fs.configFlag("decode limits")
	out := fs.String("o", "", "write the display-ready image (8-bit gray PNG) here")
	raw := fs.String("raw", "", "write the first frame's stored values (16-bit gray PNG; RGB for color) here")
	crop := fs.String("crop", "", "write the model's 224x224 input crop (8-bit gray PNG) here")
	var files []string
	for rest := args; ; {
		if code, ok := fs.parse(rest); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 || (*out == "" && *raw == "" && *crop == "") {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	path := files[0]
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	film, err := decode.Decode(f, st.Size(), provision.DecodeLimits(cfg))
	if err != nil {
		enc.Encode(scoreFailure{File: path, Code: string(decode.CodeOf(err)), Error: decode.Reason(err)})
		fmt.Fprintf(stderr, "triaged: %s: %v\n", path, err)
		return 1
	}
	h := film.Header
	sum := decodeSummary{File: path, TransferSyntax: h.TransferSyntax, Modality: h.Modality, BodyPart: h.BodyPart,
		ViewPosition: h.ViewPosition, Rows: h.Rows, Columns: h.Columns, Photometric: h.Photometric,
		BitsAllocated: h.BitsAllocated, BitsStored: h.BitsStored, HighBit: h.HighBit, Signed: h.PixelRepresentation == 1,
		Frames: h.NumberOfFrames, RescaleSlope: h.RescaleSlope, RescaleIcpt: h.RescaleIntercept, Display: film.Display}
	for _, o := range []struct {
		path string
		img  func() image.Image
	}{
		{*out, func() image.Image { return film.Image }},
		{*raw, film.Stored},
		{*crop, func() image.Image { return preprocess.Prepare(film.Image).Gray }},
	} {
		if o.path == "" {
			continue
		}
		if err := writePNG(o.path, o.img()); err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		sum.Outputs = append(sum.Outputs, o.path)
	}
	enc.Encode(sum)
	return 0
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}
