package folder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quarantine claims a dropped file and fails it with a code, as the daemon
// does.
func quarantine(t *testing.T, f *Folder, name, data, code string) {
	t.Helper()
	os.WriteFile(filepath.Join(f.Path(), name), []byte(data), 0o644)
	it := next(t, f, 5*time.Second)
	if _, err := it.Fail(code, "test reason", "test"); err != nil {
		t.Fatal(err)
	}
}

// Requeue by code, by name and all: films go back into the drop folder,
// where the folder claims them again, reason files move to the history,
// and a second failure keeps both reason files.
func TestRequeueMovesFilmsBackAndKeepsReasons(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 0)
	quarantine(t, f, "a.dcm", "A", "codec_error")
	quarantine(t, f, "b.dcm", "B", "not_dicom")
	quarantine(t, f, "c.dcm", "C", "codec_error")
	failed := filepath.Join(dir, "failed")

	if _, err := Requeue(RequeueOptions{Folder: Options{Path: dir}}); err == nil {
		t.Fatal("no selection accepted")
	}
	dry, err := Requeue(RequeueOptions{Folder: Options{Path: dir}, Codes: []string{"codec_error"}, DryRun: true})
	if err != nil || len(dry) != 2 {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if got := ls(t, failed); len(got) != 6 {
		t.Fatalf("dry run moved files: %v", got)
	}

	rq, err := Requeue(RequeueOptions{Folder: Options{Path: dir}, Codes: []string{"codec_error"}})
	if err != nil || len(rq) != 2 {
		t.Fatalf("by code: %v %+v", err, rq)
	}
	for range 2 {
		it := next(t, f, 5*time.Second)
		if it.Name() != "a.dcm" && it.Name() != "c.dcm" {
			t.Fatalf("claimed %s", it.Name())
		}
		if it.Name() == "a.dcm" {
			if _, err := it.Fail("codec_error", "failed again", "test"); err != nil {
				t.Fatal(err)
			}
		} else if _, err := it.Done(); err != nil {
			t.Fatal(err)
		}
	}
	hist, _ := filepath.Glob(filepath.Join(failed, HistoryDir, "*.reason.json"))
	if len(hist) != 2 {
		t.Fatalf("history holds %v", hist)
	}
	var r Reason
	b, _ := os.ReadFile(hist[0])
	if err := json.Unmarshal(b, &r); err != nil || r.Code != "codec_error" {
		t.Fatalf("history reason %s: %v", b, err)
	}

	// By name.
	rq, err = Requeue(RequeueOptions{Folder: Options{Path: dir}, Names: []string{"b.dcm"}})
	if err != nil || len(rq) != 1 || filepath.Base(rq[0].To) != "b.dcm" {
		t.Fatalf("by name: %v %+v", err, rq)
	}
	if it := next(t, f, 5*time.Second); it.Name() != "b.dcm" || read(t, it) != "B" {
		t.Fatalf("claimed %s", it.Name())
	}

	// All: a.dcm failed twice; both of its reason files are kept.
	rq, err = Requeue(RequeueOptions{Folder: Options{Path: dir}, All: true})
	if err != nil || len(rq) != 1 || rq[0].Name != "a.dcm" {
		t.Fatalf("all: %v %+v", err, rq)
	}
	hist, _ = filepath.Glob(filepath.Join(failed, HistoryDir, "a.dcm.*.reason.json"))
	if len(hist) != 2 {
		t.Fatalf("a.dcm history %v", hist)
	}
	if left := ls(t, failed); strings.Join(left, ",") != HistoryDir {
		t.Fatalf("quarantine still holds %v", left)
	}
}

// A reason file whose film is gone is archived, not an error, and never
// counted as requeued; a name taken in the drop folder is not overwritten.
func TestRequeueArchivesOrphansAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	failed := filepath.Join(dir, "failed")
	os.MkdirAll(failed, 0o750)
	os.WriteFile(filepath.Join(failed, "x.dcm.reason.json"), []byte(`{"film_id":"00112233445566ff","file":"x.dcm","code":"not_dicom"}`), 0o640)
	os.WriteFile(filepath.Join(failed, "y.dcm"), []byte("quarantined"), 0o640)
	os.WriteFile(filepath.Join(failed, "y.dcm.reason.json"), []byte(`{"film_id":"00112233445566aa","file":"y.dcm","code":"not_dicom"}`), 0o640)
	os.WriteFile(filepath.Join(dir, "y.dcm"), []byte("newer drop"), 0o644)
	rq, err := Requeue(RequeueOptions{Folder: Options{Path: dir}, All: true})
	if err != nil || len(rq) != 1 || filepath.Base(rq[0].To) != "y.dcm.00112233445566aa" {
		t.Fatalf("%v %+v", err, rq)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "y.dcm")); string(b) != "newer drop" {
		t.Fatal("overwrote a file in the drop folder")
	}
	if b, _ := os.ReadFile(rq[0].To); string(b) != "quarantined" {
		t.Fatal("requeued film lost")
	}
	if got := ls(t, filepath.Join(failed, HistoryDir)); len(got) != 2 {
		t.Fatalf("history %v", got)
	}
}
