package dicomweb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

const testStudy = "1.2.826.0.1.3680043.10.1234.3" // dicomtest's Study Instance UID

// undefinedSeq is a sequence of undefined length holding one item of
// undefined length with the given elements (little endian, as dicomtest
// writes item contents).
func undefinedSeq(tag uint32, implicit bool, els ...dicomtest.Elem) dicomtest.Elem {
	var b bytes.Buffer
	w16 := func(v uint16) { binary.Write(&b, binary.LittleEndian, v) }
	w32 := func(v uint32) { binary.Write(&b, binary.LittleEndian, v) }
	w16(0xFFFE)
	w16(0xE000)
	w32(0xFFFFFFFF)
	for _, e := range els {
		w16(uint16(e.Tag >> 16))
		w16(uint16(e.Tag))
		if implicit {
			w32(uint32(len(e.Value)))
		} else {
			b.WriteString(e.VR)
			w16(uint16(len(e.Value)))
		}
		b.Write(e.Value)
	}
	w16(0xFFFE)
	w16(0xE00D)
	w32(0)
	w16(0xFFFE)
	w16(0xE0DD)
	w32(0)
	return dicomtest.Elem{Tag: tag, VR: "SQ", Value: b.Bytes(), Undefined: true, Length: -1}
}

// synthetic returns small valid films in every encoding the walker knows,
// with sequences of undefined length and encapsulated pixel data.
func synthetic() map[string][]byte {
	out := map[string][]byte{}
	for _, ts := range []string{dicomtest.ImplicitLE, dicomtest.ExplicitLE, dicomtest.DeflatedLE} {
		im := dicomtest.Good()
		im.TransferSyntax = ts
		im.Extra = []dicomtest.Elem{undefinedSeq(dicomtest.Tag(0x0008, 0x1140), ts == dicomtest.ImplicitLE,
			dicomtest.Str(dicomtest.Tag(0x0008, 0x1150), "UI", "1.2.840.10008.5.1.4.1.1.1.1"))}
		out["seq-"+ts] = im.Bytes()
	}
	be := dicomtest.Good()
	be.TransferSyntax = dicomtest.ExplicitBE
	out["bigendian"] = be.Bytes()
	enc := dicomtest.Good()
	enc.TransferSyntax = "1.2.840.10008.1.2.5"
	pd := dicomtest.Encapsulated(bytes.Repeat([]byte{1, 2, 3}, 100), []byte{9, 9, 9, 9})
	enc.PixelData = &pd
	out["encapsulated"] = enc.Bytes()
	return out
}

func TestCheckPartSynthetic(t *testing.T) {
	for name, data := range synthetic() {
		t.Run(name, func(t *testing.T) {
			inst, err := checkPart(bytes.NewReader(data), defaultPartLimits)
			if err != nil {
				t.Fatalf("valid file refused: %v", err)
			}
			if inst.StudyInstanceUID != testStudy || inst.SOPClassUID != "1.2.840.10008.5.1.4.1.1.1.1" ||
				inst.SOPInstanceUID != "1.2.826.0.1.3680043.10.1234.2.1" || inst.TransferSyntax == "" {
				t.Fatalf("read %+v", inst)
			}
			// A file cut anywhere in its last 100 bytes (inside the pixel
			// data, or the deflate stream) is incomplete.
			for cut := len(data) - 100; cut < len(data); cut++ {
				_, err := checkPart(bytes.NewReader(data[:cut]), defaultPartLimits)
				var fe *formatError
				if !errors.As(err, &fe) {
					t.Fatalf("file cut at %d of %d: got %v, want a format error", cut, len(data), err)
				}
			}
		})
	}
}

func TestCheckPartRefuses(t *testing.T) {
	good := dicomtest.Good().Bytes()
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:100],
		"no DICM":       append(make([]byte, 128), []byte("DICX")...),
		"no preamble":   dicomtest.File{NoPreamble: true, TransferSyntax: dicomtest.ExplicitLE, SOPClassUID: "1.2.3", SOPInstanceUID: "1.2.4"}.Bytes(),
		"meta only":     good[:bytes.Index(good, []byte{0x08, 0x00, 0x16, 0x00})],
		"trailing junk": append(append([]byte(nil), good...), 1, 2, 3),
		"no sop uid":    dicomtest.File{TransferSyntax: dicomtest.ExplicitLE, SOPClassUID: "1.2.3"}.Bytes(),
		"bad uid":       dicomtest.File{TransferSyntax: dicomtest.ExplicitLE, SOPClassUID: "1.2.3", SOPInstanceUID: "1.2.x"}.Bytes(),
	}
	if testing.Short() {
		t.Log("under -short: the hostile corpus (slow to build) is left out")
	}
	for _, h := range hostile() {
		switch h.Code {
		case string(decode.CodeTruncated), string(decode.CodeElementLength), string(decode.CodeNotDICOM):
			cases["hostile "+h.Name] = h.Data
		}
	}
	for name, data := range cases {
		_, err := checkPart(bytes.NewReader(data), defaultPartLimits)
		var fe *formatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a format error", name, err)
		}
	}
}

// The walker agrees with the decoder's own header reader on every real
// file it can read: the shared films and the other toolkits' corpus.
func TestCheckPartAgreesWithDecoder(t *testing.T) {
	data := testenv.SharedData(t)
	if testing.Short() {
		t.Skip("skipping under -short: reads ~300 files twice")
	}
	var files []string
	for _, dir := range []string{"dicom/original", "dicom/derived", "dicom-corpora"} {
		filepath.WalkDir(filepath.Join(data, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".md") {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 20 {
		t.Fatalf("only %d files under %s", len(files), data)
	}
	agreed, both := 0, 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, derr := decode.ReadHeader(bytes.NewReader(b), int64(len(b)), decode.Limits{})
		inst, cerr := checkPart(bytes.NewReader(b), defaultPartLimits)
		if cerr != nil && !errors.As(cerr, new(*formatError)) {
			t.Fatalf("%s: %v is not a format error", p, cerr)
		}
		if derr != nil || cerr != nil {
			if derr == nil && strings.Contains(p, "/dicom/") {
				t.Errorf("%s: the decoder reads it, the intake refuses it: %v", filepath.Base(p), cerr)
			}
			if derr == nil {
				t.Logf("corpus file %s: decoder reads it, intake refuses: %v", filepath.Base(p), cerr)
			}
			continue
		}
		both++
		if h.StudyInstanceUID != "" && inst.StudyInstanceUID != strings.TrimRight(h.StudyInstanceUID, "\x00 ") || inst.TransferSyntax != h.TransferSyntax {
			t.Errorf("%s: intake read study %q ts %q, decoder %q %q", filepath.Base(p), inst.StudyInstanceUID, inst.TransferSyntax, h.StudyInstanceUID, h.TransferSyntax)
			continue
		}
		agreed++
	}
	t.Logf("%d files, %d read by both, %d agree", len(files), both, agreed)
}

func FuzzCheckPart(f *testing.F) {
	for _, b := range synthetic() {
		f.Add(b)
	}
	for _, h := range hostile() {
		if len(h.Data) < 64<<10 {
			f.Add(h.Data)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inst, err := checkPart(bytes.NewReader(b), defaultPartLimits)
		if err != nil {
			if !errors.As(err, new(*formatError)) {
				t.Fatalf("error %v from a byte reader is not a format error", err)
			}
			return
		}
		if !validUID(inst.SOPInstanceUID) || !validUID(inst.SOPClassUID) || !validUID(inst.TransferSyntax) {
			t.Fatalf("accepted with invalid UIDs %+v", inst)
		}
		// Accepted means complete: the same bytes through a reader that
		// fails at the end must fail too (nothing was left unread).
		_, err = checkPart(io.MultiReader(bytes.NewReader(b), errReader{}), defaultPartLimits)
		if err == nil {
			t.Fatal("accepted without reading to the end of the part")
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, &transportError{errors.New("cut")} }

// hostile is dicomtest's hostile corpus, or nothing under -short (it takes
// seconds to build under the race detector).
func hostile() []dicomtest.HostileFile {
	if testing.Short() {
		return nil
	}
	return dicomtest.Hostile()
}
