package resultobj

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
)

// FuzzReadSource: any bytes as a source film: ReadSource returns an error
// or a SourceFilm, never panics; from what it returns, Build makes an SR
// that parses back, or says which input is wrong.
func FuzzReadSource(f *testing.F) {
	f.Add(dicomtest.Good().Bytes())
	im := dicomtest.Good()
	im.TransferSyntax = dicomtest.ImplicitLE
	im.Extra = []dicomtest.Elem{dicomtest.Str(dicomtest.Tag(0x0010, 0x0010), "PN", "Doe^Jane")}
	f.Add(im.Bytes())
	for _, h := range dicomtest.Hostile()[:8] {
		f.Add(h.Data)
	}
	lim := decode.Limits{MaxFileSize: 1 << 20, MaxHeaderSize: 256 << 10, MaxElements: 2000}
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := ReadSource(bytes.NewReader(b), int64(len(b)), lim)
		if err != nil {
			return
		}
		buildAndParse(t, src, 0.5)
	})
}

// FuzzBuild: whatever the copied attributes hold, the SR encodes and
// parses back with the same study and patient identity, or Build refuses
// with an InputError.
func FuzzBuild(f *testing.F) {
	f.Add("Doe^Jane", "PID-1", "19700101", "F", "20260101", "101112", "ACC1", "ward", "1.2.3.4", 0.71)
	f.Add("M\xfcller^J\xf6rg", "x\\y", "1970-01-01", "male", "bad", "10:11:12", "", "", "1.2.03", math.NaN())
	f.Add("a=b=c=d^e^f^g^h^i", "", "", "", "", "", "\x00\x01", "\x1b$B", "1.2.840.1", 1.0)
	f.Fuzz(func(t *testing.T, name, pid, birth, sx, sdate, stime, acc, ref, study string, score float64) {
		src := &SourceFilm{
			SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1", SOPInstanceUID: "1.2.826.0.1.3680043.8.498.1",
			StudyInstanceUID: study, SeriesInstanceUID: "1.2.826.0.1.3680043.8.498.2", Modality: "DX",
			PatientName: name, PatientID: pid, PatientBirthDate: birth, PatientSex: sx,
			StudyDate: sdate, StudyTime: stime, AccessionNumber: acc, ReferringPhysicianName: ref,
		}
		buildAndParse(t, src, score)
	})
}

func buildAndParse(t *testing.T, src *SourceFilm, score float64) {
	r := testResult(src)
	r.Score = score
	objs, err := Build(src, r, nil, Options{})
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Fatalf("Build: %v (not an InputError)", err)
		}
		return
	}
	ds, err := dicom.Parse(bytes.NewReader(objs.SR), int64(len(objs.SR)), nil, dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		t.Fatalf("generated SR does not parse: %v", err)
	}
	e, err := ds.FindElementByTag(tag.StudyInstanceUID)
	if err != nil || e.Value.GetValue().([]string)[0] != src.StudyInstanceUID {
		t.Fatalf("study UID lost: %v", err)
	}
}

// FuzzOverlay: any bytes as the overlay PNG: an SC or an error, never a
// panic, and never a banner narrower than its warning.
func FuzzOverlay(f *testing.F) {
	for _, sz := range [][2]int{{1, 1}, {5, 3}, {MinWidth - 1, 2}, {MinWidth + 1, 7}, {700, 1}} {
		var b bytes.Buffer
		png.Encode(&b, image.NewRGBA(image.Rect(0, 0, sz[0], sz[1])))
		f.Add(b.Bytes())
	}
	var g bytes.Buffer
	png.Encode(&g, image.NewGray(image.Rect(0, 0, 9, 9)))
	f.Add(g.Bytes())
	src := &SourceFilm{SOPClassUID: "1.2.840.10008.5.1.4.1.1.1.1", SOPInstanceUID: "1.2.826.0.1.3680043.8.498.1",
		StudyInstanceUID: "1.2.826.0.1.3680043.8.498.3", SeriesInstanceUID: "1.2.826.0.1.3680043.8.498.2"}
	f.Fuzz(func(t *testing.T, ov []byte) {
		if len(ov) == 0 {
			return
		}
		objs, err := Build(src, testResult(src), ov, Options{})
		if err != nil {
			return
		}
		ds, err := dicom.Parse(bytes.NewReader(objs.SC), int64(len(objs.SC)), nil, dicom.SkipPixelData())
		if err != nil {
			t.Fatalf("SC does not parse: %v", err)
		}
		e, err := ds.FindElementByTag(tag.Columns)
		if err != nil || e.Value.GetValue().([]int)[0] < MinWidth {
			t.Fatalf("SC narrower than its banner: %v", e)
		}
	})
}
