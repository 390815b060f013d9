package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func TestParseCSV(t *testing.T) {
	in := "\ufeffFile,Label,site,patient,view,extra\na.dcm,COVID-19,St X,p1,PA,1\n/abs/b.dcm,non,,p2,,\n"
	films, err := parseCSV(strings.NewReader(in), "/data")
	if err != nil {
		t.Fatal(err)
	}
	want := []Film{{Path: "/data/a.dcm", Label: "covid", Source: "St X", Patient: "p1", View: "PA"},
		{Path: "/abs/b.dcm", Label: "non", Patient: "p2"}}
	if len(films) != 2 || films[0] != want[0] || films[1] != want[1] {
		t.Fatalf("got %+v, want %+v", films, want)
	}
	for _, bad := range []string{"", "file\nx\n", "file,label\nx,maybe\n", "file,label\n,covid\n", "file,label\n\"x,covid\n"} {
		if _, err := parseCSV(strings.NewReader(bad), "/"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The parser must refuse, never crash, whatever the CSV holds.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("file,label,source,patient_id\na.dcm,covid,s,p\n"))
	f.Add([]byte("file,label\n\"a\nb\",non\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		films, err := parseCSV(bytes.NewReader(b), "/d")
		if err != nil {
			return
		}
		for _, fl := range films {
			if fl.Label != "covid" && fl.Label != "non" {
				t.Fatalf("label %q", fl.Label)
			}
		}
	})
}

func TestReadFolder(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"covid/a.dcm", "covid/sub/b.dcm", "non/c.dcm", "non/.hidden"} {
		os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(d, p), []byte("x"), 0o644)
	}
	films, err := ReadFolder(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(films) != 3 || films[0].Label != "covid" || films[2].Label != "non" || films[1].Source != filepath.Base(d) {
		t.Fatalf("got %+v", films)
	}
	if _, err := ReadFolder(filepath.Join(d, "covid")); err == nil {
		t.Fatal("a folder without covid/ and non/ must be refused")
	}
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// Real films in several transfer syntaxes, a file that is no DICOM, one
// that is missing and a duplicate: the good ones come out as the exact
// display image the decoder makes, the others as rejects with their codes.
func TestExport(t *testing.T) {
	rg1 := testenv.DICOM(t, "derived/RG1_chest_CR_mono1_jpegLosslessSV1.dcm")
	nih := testenv.DICOM(t, "derived/nih_dx_rle.dcm")
	junk := filepath.Join(t.TempDir(), "junk.dcm")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 300), 0o644)
	films := []Film{
		{Path: rg1, Label: "covid", Source: "a", Patient: "p1"},
		{Path: nih, Label: "non", Source: "b", Patient: "p2", View: "PA"},
		{Path: junk, Label: "non"},
		{Path: filepath.Join(t.TempDir(), "missing.dcm"), Label: "covid"},
		{Path: nih, Label: "covid"},
	}
	out := t.TempDir()
	sum, err := Export(context.Background(), films, out, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Exported != 2 || sum.Rejected != 3 || sum.Codes["not_dicom"] != 1 || sum.Codes["unreadable"] != 1 || sum.Codes[CodeDuplicate] != 1 {
		t.Fatalf("summary %+v", sum)
	}
	rows := readCSV(t, filepath.Join(out, "labels.csv"))
	if len(rows) != 2 || rows[0]["label"] != "covid" || rows[1]["view"] != "PA" || rows[0]["patient_id"] != "p1" ||
		rows[0]["transfer_syntax"] != "1.2.840.10008.1.2.4.70" || rows[1]["transfer_syntax"] != "1.2.840.10008.1.2.5" {
		t.Fatalf("labels %+v", rows)
	}
	for i, path := range []string{rg1, nih} {
		b, _ := os.ReadFile(path)
		want, err := decode.Decode(bytes.NewReader(b), int64(len(b)), decode.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(out, rows[i]["file"]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		g, ok := got.(*image.Gray)
		if !ok || !g.Rect.Eq(want.Image.Rect) || !bytes.Equal(g.Pix, want.Image.Pix) {
			t.Fatalf("%s: the exported PNG is not the decoder's display image", rows[i]["film_id"])
		}
		if rows[i]["display"] != want.Display || rows[i]["sop_instance_uid"] != want.Header.SOPInstanceUID {
			t.Fatalf("row %+v", rows[i])
		}
	}
	rej := readCSV(t, filepath.Join(out, "rejects.csv"))
	if len(rej) != 3 || rej[0]["code"] != "not_dicom" || rej[1]["code"] != "unreadable" || rej[2]["code"] != CodeDuplicate {
		t.Fatalf("rejects %+v", rej)
	}
	if strings.Contains(rej[1]["reason"], "missing.dcm") {
		t.Fatalf("the reason repeats the path: %q", rej[1]["reason"])
	}
}

func TestExportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	films := make([]Film, 50)
	for i := range films {
		films[i] = Film{Path: "/nonexistent", Label: "non"}
	}
	if _, err := Export(ctx, films, t.TempDir(), Options{Workers: 2}); err == nil {
		t.Fatal("a cancelled export must fail")
	}
}
