package resultobj

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/png"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/resultobj/uid"
)

var update = flag.Bool("update", false, "rewrite testdata/sr.dsrdump.golden")

// dciodvfy runs dicom3tools' validator on a file and fails on any error;
// warnings are logged (those about the source's own values are expected:
// they are copied as they are).
func dciodvfy(t *testing.T, path string) {
	t.Helper()
	bin := tool(t, "dciodvfy", "dicom3tools")
	out, _ := exec.Command(bin, path).CombinedOutput() // exits non-zero on warnings too
	var warnings int
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "Error"):
			t.Errorf("dciodvfy %s: %s", filepath.Base(path), l)
		case strings.HasPrefix(l, "Warning"):
			warnings++
			t.Logf("dciodvfy %s: %s", filepath.Base(path), l)
		}
	}
	if !strings.Contains(string(out), "Comprehensive3DSR") && !strings.Contains(string(out), "SCImage") {
		t.Errorf("dciodvfy %s did not recognise the IOD:\n%s", filepath.Base(path), out)
	}
}

// parse reads an object back with suyashkumar/dicom.
func parse(t *testing.T, b []byte) dicom.Dataset {
	t.Helper()
	ds, err := dicom.Parse(bytes.NewReader(b), int64(len(b)), nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatalf("parse generated object: %v", err)
	}
	return ds
}

func strOf(t *testing.T, ds dicom.Dataset, tg tag.Tag) string {
	t.Helper()
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		t.Fatalf("%v missing: %v", tg, err)
	}
	return strings.Join(e.Value.GetValue().([]string), `\`)
}

// TestBuildRealFilms builds the SR and SC of real shared films and runs
// them through dicom3tools and dcmtk.
func TestBuildRealFilms(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dciodvfy, dsrdump and dcmdump (-short)")
	}
	dsrdump := tool(t, "dsrdump", "dcmtk")
	dcmdump := tool(t, "dcmdump", "dcmtk")
	for _, f := range films {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, p := readSource(t, f)
			r := testResult(src)
			// The SC of the originals only: the transcodes show the same
			// pixels, and under -race an overlay costs seconds.
			var ov []byte
			if strings.HasPrefix(f, "original/") {
				ov = overlay(t, p)
			}
			objs, err := Build(src, r, ov, Options{})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			paths, err := WriteFiles(dir, objs)
			if err != nil || len(paths) != 1+min(len(ov), 1) {
				t.Fatalf("WriteFiles: %v %v", paths, err)
			}
			for _, p := range paths {
				dciodvfy(t, p)
			}

			out, err := exec.Command(dsrdump, paths[0]).CombinedOutput()
			if err != nil {
				t.Fatalf("dsrdump: %v\n%s", err, out)
			}
			for _, want := range []string{"Comprehensive 3D SR Document", `"Imaging Measurement Report"`, "(840539006,SCT,", `(URGENT,99TRIAGED,"Urgent")`, `"0.6826" ({probability},UCUM,"probability")`} {
				if !strings.Contains(string(out), want) {
					t.Errorf("dsrdump lacks %s:\n%s", want, out)
				}
			}
			if bytes.Contains(out, []byte("W: ")) || bytes.Contains(out, []byte("E: ")) {
				t.Errorf("dsrdump warned:\n%s", out)
			}
			if ov == nil {
				return
			}
			out, err = exec.Command(dcmdump, paths[1]).CombinedOutput()
			if err != nil {
				t.Fatalf("dcmdump: %v\n%s", err, out)
			}
			for _, want := range []string{"=SecondaryCaptureImageStorage", "(0028,0301) CS [YES]", "(0028,0004) CS [RGB]", "SourceImageSequence", "[121322]"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("dcmdump of the SC lacks %s", want)
				}
			}

			// Same study, patient copied, new series, the source referenced.
			for i, b := range [][]byte{objs.SR, objs.SC}[:len(paths)] {
				ds := parse(t, b)
				if got := strOf(t, ds, tag.StudyInstanceUID); got != src.StudyInstanceUID {
					t.Errorf("object %d: study UID differs from the source's", i)
				}
				if got := strOf(t, ds, tag.SeriesInstanceUID); got == src.SeriesInstanceUID {
					t.Errorf("object %d: in the source's series", i)
				}
				if got := strOf(t, ds, tag.PatientID); got != src.PatientID {
					t.Errorf("object %d: patient ID %q, want %q", i, got, src.PatientID)
				}
			}
		})
	}
}

// TestSRGolden keeps dsrdump's view of the content tree.
func TestSRGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dsrdump (-short)")
	}
	dsrdump := tool(t, "dsrdump", "dcmtk")
	src, _ := readSource(t, "original/RG1_J2KI.dcm")
	if objs, err := Build(src, testResult(src), nil, Options{}); err != nil || objs.SC != nil {
		t.Fatalf("without an overlay: %v, SC %d bytes", err, len(objs.SC))
	}
	// A small overlay (its pixels are not in the tree): the SR then
	// points to the SC.
	var ov bytes.Buffer
	png.Encode(&ov, image.NewRGBA(image.Rect(0, 0, 16, 16)))
	objs, err := Build(src, testResult(src), ov.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// No document header: it would hold the (test) patient's name.
	out, err := exec.Command(dsrdump, "-Ph", "+Pc", "+Pl", "+Pt", "+Psu", writeTemp(t, "sr.dcm", objs.SR)).CombinedOutput()
	if err != nil {
		t.Fatalf("dsrdump: %v\n%s", err, out)
	}
	golden := filepath.Join("testdata", "sr.dsrdump.golden")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("dsrdump differs from %s (run with -update if the change is intended):\n%s", golden, out)
	}
}

// TestUIDs: deterministic, valid, replaced by a re-score, new for a new
// model set, one series per study.
func TestUIDs(t *testing.T) {
	src, p := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	ov := overlay(t, p)
	r := testResult(src)
	a, err := Build(src, r, ov, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2 := testResult(src)
	r2.Models[0].Probability, r2.Score = 0.9, 0.95 // re-scored: new content, same identity
	b, err := Build(src, r2, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.UIDs != b.UIDs {
		t.Errorf("re-scoring changed the UIDs: %+v vs %+v", a.UIDs, b.UIDs)
	}
	again, _ := Build(src, testResult(src), ov, Options{})
	if !bytes.Equal(a.SR, again.SR) || !bytes.Equal(a.SC, again.SC) {
		t.Error("the same result built twice gives different bytes")
	}
	r3 := testResult(src)
	r3.ModelSet = "ms-000000000001"
	c, _ := Build(src, r3, nil, Options{})
	if c.UIDs.SRInstance == a.UIDs.SRInstance || c.UIDs.SCInstance == a.UIDs.SCInstance || c.UIDs.SRSeries == a.UIDs.SRSeries {
		t.Error("a new model set kept the old UIDs")
	}
	other := *src
	other.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
	d, err := Build(&other, testResult(&other), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.UIDs.SRSeries != a.UIDs.SRSeries || d.UIDs.SCSeries != a.UIDs.SCSeries {
		t.Error("two films of one study got different result series")
	}
	if d.UIDs.SRInstance == a.UIDs.SRInstance {
		t.Error("two films got the same SR")
	}
	root := "1.2.826.0.1.3680043.10.999"
	e, err := Build(src, r, nil, Options{UIDRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []UIDs{a.UIDs, e.UIDs} {
		for _, s := range []string{u.SRSeries, u.SRInstance, u.SCSeries, u.SCInstance, u.Tracking, u.Device} {
			if err := uid.Valid(s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	}
	if !strings.HasPrefix(a.UIDs.SRInstance, "2.25.") || !strings.HasPrefix(e.UIDs.SRInstance, root+".") {
		t.Errorf("roots not used: %s %s", a.UIDs.SRInstance, e.UIDs.SRInstance)
	}
	if len(e.UIDs.SRInstance) != 64 {
		t.Errorf("UID under a long root not filled to 64 characters: %d", len(e.UIDs.SRInstance))
	}
	if _, err := Build(src, r, nil, Options{UIDRoot: "1.2.03"}); err == nil {
		t.Error("a root with a leading zero was accepted")
	}
}

// TestSCPixels: the banner is burned in above the overlay, whose pixels are
// carried unchanged.
func TestSCPixels(t *testing.T) {
	src, p := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	ovPNG := overlay(t, p)
	objs, err := Build(src, testResult(src), ovPNG, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov, err := png.Decode(bytes.NewReader(ovPNG))
	if err != nil {
		t.Fatal(err)
	}
	ds := parse(t, objs.SC)
	rows, cols := intOf(t, ds, tag.Rows), intOf(t, ds, tag.Columns)
	w, h := ov.Bounds().Dx(), ov.Bounds().Dy()
	bh := BannerHeight(w)
	if cols != w || rows != h+bh {
		t.Fatalf("SC is %dx%d, want %dx%d", cols, rows, w, h+bh)
	}
	px := objs.SC[len(objs.SC)-rows*cols*3:] // the pixel data is the last element
	at := func(x, y int) [3]byte { i := 3 * (y*cols + x); return [3]byte{px[i], px[i+1], px[i+2]} }
	bg := [3]byte{BannerBackground.R, BannerBackground.G, BannerBackground.B}
	var text, background int
	for y := range bh {
		for x := range cols {
			switch at(x, y) {
			case bg:
				background++
			case [3]byte{255, 255, 255}, [3]byte{255, 200, 60}:
				text++
			default:
				t.Fatalf("banner pixel (%d,%d) is %v: neither background nor text", x, y, at(x, y))
			}
		}
	}
	if text < 2000 || background < cols*bh/2 {
		t.Errorf("banner has %d text and %d background pixels", text, background)
	}
	// The warning's row band holds text in its left half.
	var warn int
	for y := 0; y < bh/2; y++ {
		for x := 0; x < cols/2; x++ {
			if at(x, y) == [3]byte{255, 255, 255} {
				warn++
			}
		}
	}
	if warn < 1000 {
		t.Errorf("only %d white pixels where NOT FOR DIAGNOSTIC USE is drawn", warn)
	}
	for y := 0; y < h; y += 7 {
		for x := 0; x < w; x += 5 {
			r, g, b, _ := ov.At(x, y).RGBA()
			if got := at(x, bh+y); got != [3]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8)} {
				t.Fatalf("overlay pixel (%d,%d) changed: %v", x, y, got)
			}
		}
	}
	// What the test saw, for a human: docs/img/result-sc.png is made from
	// this film (see TestWriteDocPicture).
	_ = image.Rect
}

func intOf(t *testing.T, ds dicom.Dataset, tg tag.Tag) int {
	t.Helper()
	e, err := ds.FindElementByTag(tg)
	if err != nil {
		t.Fatal(err)
	}
	return e.Value.GetValue().([]int)[0]
}

// TestSourceCharsetFramesAndMessyValues: a synthetic multi-frame film
// with a Latin-1 patient name, and a source with values invalid for their
// VR: the objects stay valid.
func TestSourceCharsetFramesAndMessyValues(t *testing.T) {
	im := dicomtest.Good()
	im.Frames = 2
	im.Pixels = append(im.Pixels, im.Pixels...)
	im.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.4242"
	im.Extra = []dicomtest.Elem{
		dicomtest.Str(dicomtest.Tag(0x0008, 0x0005), "CS", "ISO_IR 100"),
		dicomtest.Str(dicomtest.Tag(0x0010, 0x0010), "PN", "M\xfcller^J\xf6rg"),
		dicomtest.Str(dicomtest.Tag(0x0010, 0x0020), "LO", "PID-1"),
	}
	mf := im.File()
	mf.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3" // Multi-frame Grayscale Word SC
	file := writeTemp(t, "mf.dcm", mf.Bytes())
	src, err := ReadSourceFile(file, decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if src.PatientName != "Müller^Jörg" || src.NumberOfFrames != 2 {
		t.Fatalf("read %q, %d frames", src.PatientName, src.NumberOfFrames)
	}
	objs, err := Build(src, testResult(src), overlay(t, file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{objs.SR, objs.SC} {
		ds := parse(t, b)
		if cs := strOf(t, ds, tag.SpecificCharacterSet); cs != "ISO_IR 192" {
			t.Errorf("charset %q", cs)
		}
		if pn := strOf(t, ds, tag.PatientName); pn != "Müller^Jörg" {
			t.Errorf("patient name %q", pn)
		}
		if !bytes.Contains(b, []byte{0x08, 0x00, 0x60, 0x11, 'I', 'S'}) { // (0008,1160) Referenced Frame Number
			t.Error("no Referenced Frame Number for a multi-frame source")
		}
	}
	messy := *src
	messy.PatientName = strings.Repeat("Lang\\name^", 40) + "\x01"
	messy.PatientBirthDate = "1970-01-01"
	messy.StudyTime = "10:11:12"
	messy.PatientSex = "male"
	messy.AccessionNumber = "ACC-0123456789-0123456789"
	messy.StudyDescription = "Thorax\x00\x00"
	objs, err = Build(&messy, testResult(&messy), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ds := parse(t, objs.SR)
	if got := strOf(t, ds, tag.StudyTime); got != "101112" {
		t.Errorf("study time %q", got)
	}
	if got := strOf(t, ds, tag.PatientBirthDate); got != "" {
		t.Errorf("birth date %q kept", got)
	}
	if testing.Short() {
		return
	}
	dciodvfy(t, writeTemp(t, "mf-sr.dcm", objs.SR))
	objs, _ = Build(src, testResult(src), overlay(t, file), Options{})
	dciodvfy(t, writeTemp(t, "mf-sr-ok.dcm", objs.SR))
	dciodvfy(t, writeTemp(t, "mf-sc.dcm", objs.SC))
}

func TestBuildRefusesBadInput(t *testing.T) {
	src, _ := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	for name, mod := range map[string]func(s *SourceFilm, r *publishResult){
		"priority":     func(_ *SourceFilm, r *publishResult) { r.Priority = "high" },
		"score NaN":    func(_ *SourceFilm, r *publishResult) { r.Score = math.NaN() },
		"score 2":      func(_ *SourceFilm, r *publishResult) { r.Models[1].Probability = 2 },
		"no models":    func(_ *SourceFilm, r *publishResult) { r.Models = nil },
		"no model set": func(_ *SourceFilm, r *publishResult) { r.ModelSet = "" },
		"other film":   func(_ *SourceFilm, r *publishResult) { r.Film.SOPInstanceUID = "1.2.3" },
		"bad study":    func(s *SourceFilm, _ *publishResult) { s.StudyInstanceUID = "1.2.abc" },
		"no class":     func(s *SourceFilm, _ *publishResult) { s.SOPClassUID = "" },
	} {
		s := *src
		r := testResult(&s)
		mod(&s, r)
		_, err := Build(&s, r, nil, Options{})
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want an InputError", name, err)
		}
	}
	if _, err := Build(src, testResult(src), []byte("not a png"), Options{}); err == nil {
		t.Error("a broken overlay PNG was accepted")
	}
	// A PNG header claiming a huge image is refused before decoding.
	var b bytes.Buffer
	png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 1, 1)))
	huge := b.Bytes()
	copy(huge[16:24], []byte{0, 1, 0, 0, 0, 1, 0, 0}) // 65536 x 65536 (CRC now wrong too)
	if _, err := Build(src, testResult(src), huge, Options{}); err == nil || !strings.Contains(err.Error(), "overlay PNG") {
		t.Errorf("huge PNG: %v", err)
	}
}

// TestReadSourceHostile: ReadSource refuses what the daemon's header
// reader refuses (pixel-level defects are not its business), and never
// panics.
func TestReadSourceHostile(t *testing.T) {
	lim := decode.Limits{MaxFileSize: dicomtest.HostileMaxFileSize}
	for _, h := range dicomtest.Hostile() {
		_, herr := decode.ReadHeader(bytes.NewReader(h.Data), int64(len(h.Data)), lim)
		_, err := ReadSource(bytes.NewReader(h.Data), int64(len(h.Data)), lim)
		if herr != nil && err == nil {
			t.Errorf("%s: accepted, though its header is refused: %v", h.Name, herr)
		}
		if herr != nil && !errors.Is(err, herr) && decode.CodeOf(err) != decode.CodeOf(herr) {
			t.Errorf("%s: %v, want the header reader's code %s", h.Name, err, decode.CodeOf(herr))
		}
	}
}

// TestNoPatientDataInLogs: a SourceFilm printed or logged by mistake
// shows no identifier.
func TestNoPatientDataInLogs(t *testing.T) {
	src, _ := readSource(t, "original/RG1_J2KI.dcm")
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "src", src, "val", *src)
	b.WriteString(fmtAll(src))
	for _, secret := range []string{src.PatientName, src.PatientID, src.PatientBirthDate, src.SOPInstanceUID, src.StudyInstanceUID, src.AccessionNumber} {
		if secret != "" && strings.Contains(b.String(), secret) {
			t.Errorf("%q leaked: %s", secret, b.String())
		}
	}
}

func TestWriteFiles(t *testing.T) {
	src, p := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	objs, err := Build(src, testResult(src), overlay(t, p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := WriteFiles(dir, objs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, objs.UIDs.SRInstance+".dcm"), filepath.Join(dir, objs.UIDs.SCInstance+".dcm")}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Errorf("paths %v, want %v", paths, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d entries in the output folder (temporary files left?)", len(ents))
	}
	got, _ := os.ReadFile(paths[0])
	if !bytes.Equal(got, objs.SR) {
		t.Error("SR file differs")
	}
	// Written again (a re-score): replaced, not added.
	if _, err := WriteFiles(dir, objs); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d entries after rewriting", len(ents))
	}
}

// TestVariants: one model and routine, critical, a tiny odd-sized overlay
// (odd pixel data length, padded): every object stays valid.
func TestVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dciodvfy and dsrdump (-short)")
	}
	dsrdump := tool(t, "dsrdump", "dcmtk")
	src, _ := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	var tiny bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	png.Encode(&tiny, img)

	single := testResult(src)
	single.Models = single.Models[:1]
	single.Score, single.Priority, single.Kind = 0.1, "routine", "result"
	critical := testResult(src)
	critical.Priority, critical.Thresholds.CalibratedOn = "critical", ""
	critical.Daemon, critical.Host = "", ""
	for name, r := range map[string]*publishResult{"single-routine": single, "critical": critical} {
		objs, err := Build(src, r, tiny.Bytes(), Options{SeriesNumber: 42, SeriesDescription: "AI"})
		if err != nil {
			t.Fatal(err)
		}
		if len(objs.SC)%2 != 0 {
			t.Errorf("%s: odd file length", name)
		}
		sr, sc := writeTemp(t, name+"-sr.dcm", objs.SR), writeTemp(t, name+"-sc.dcm", objs.SC)
		dciodvfy(t, sr)
		dciodvfy(t, sc)
		out, err := exec.Command(dsrdump, "-Ph", sr).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("W: ")) || bytes.Contains(out, []byte("E: ")) {
			t.Errorf("%s: dsrdump: %v\n%s", name, err, out)
		}
		want := map[string]string{"single-routine": `(ROUTINE,99TRIAGED,"Routine")`, "critical": `(CRITICAL,99TRIAGED,"Critical")`}[name]
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("%s: no %s in\n%s", name, want, out)
		}
		if name == "single-routine" && bytes.Contains(out, []byte("Derivation")) {
			t.Error("a single model's score is called a mean")
		}
		ds := parse(t, objs.SC)
		if strOf(t, ds, tag.SeriesNumber) != "43" || strOf(t, ds, tag.SeriesDescription) != "AI heatmap" {
			t.Errorf("%s: SC series %s %q", name, strOf(t, ds, tag.SeriesNumber), strOf(t, ds, tag.SeriesDescription))
		}
		if got := strOf(t, ds, tag.SoftwareVersions); name == "critical" && got != "unknown" {
			t.Errorf("software version %q without a daemon version", got)
		}
	}
}

func TestListAndDataSet(t *testing.T) {
	src, p := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	objs, err := Build(src, testResult(src), overlay(t, p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := objs.List()
	if len(l) != 2 || l[0].SOPClassUID != Comprehensive3DSRStorage || l[1].SOPClassUID != SecondaryCaptureStorage ||
		l[0].SOPInstanceUID != objs.UIDs.SRInstance || l[1].TransferSyntaxUID != "1.2.840.10008.1.2.1" {
		t.Fatalf("List: %+v", l)
	}
	for _, o := range l {
		d, err := o.DataSet()
		if err != nil {
			t.Fatal(err)
		}
		// The data set starts with group 0008, and re-wrapped in a file
		// meta group it parses to the same SOP instance.
		if d[0] != 0x08 || d[1] != 0x00 {
			t.Errorf("data set starts with % x", d[:4])
		}
		if !bytes.HasSuffix(o.File, d) {
			t.Error("data set is not the file's tail")
		}
		if !bytes.Contains(d, []byte(o.SOPInstanceUID)) || bytes.Contains(d, []byte("DICM")) {
			t.Error("data set lacks its UID or carries the file header")
		}
	}
	if _, err := (Object{File: []byte("short")}).DataSet(); err == nil {
		t.Error("a non-Part-10 file gave a data set")
	}
}

func BenchmarkBuild(b *testing.B) {
	src, p := readSource(b, "original/nih_cxr_dx_implicit.dcm")
	ov := overlay(b, p)
	r := testResult(src)
	b.Run("sr", func(b *testing.B) {
		for range b.N {
			if _, err := Build(src, r, nil, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sr+sc", func(b *testing.B) {
		for range b.N {
			if _, err := Build(src, r, ov, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
