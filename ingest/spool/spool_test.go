package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCommitIsVisibleAndAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MinFreeBytes: 1, MaxFileSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create("dimse", "MODALITY 1")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("DICM"))
	p, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "DICM" {
		t.Fatalf("committed %q", b)
	}
	if kind, sender := Origin(filepath.Base(p)); kind != "dimse" || sender != "MODALITY_1" {
		t.Errorf("origin of %s: %q %q", p, kind, sender)
	}
	w, _ = s.Create("dicomweb", "x")
	if _, err := w.Write([]byte("123456789")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("write past the limit: %v", err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("commit after too large: %v", err)
	}
	w, _ = s.Create("dicomweb", "x")
	w.Abort()
	ents, _ := os.ReadDir(filepath.Join(dir, ".spool"))
	if len(ents) != 0 {
		t.Errorf("temporary area holds %d files", len(ents))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	if len(files) != 1 {
		t.Errorf("%d films in the folder, want 1", len(files))
	}
}

func TestRefusesBelowFreeSpaceAndOverOpenLimit(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MinFreeBytes: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("dimse", "A"); !errors.Is(err, ErrNoSpace) || !IsResource(err) {
		t.Errorf("below the free-space floor: %v", err)
	}
	s, _ = Open(t.TempDir(), Options{MinFreeBytes: 1, MaxOpen: 1})
	w, err := s.Create("dimse", "A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("dimse", "A"); !errors.Is(err, ErrBusy) {
		t.Errorf("second film over MaxOpen 1: %v", err)
	}
	w.Abort()
	if w, err = s.Create("dimse", "A"); err != nil {
		t.Errorf("after abort: %v", err)
	} else {
		w.Abort()
	}
}

func TestOriginRejectsOtherNames(t *testing.T) {
	for _, n := range []string{"film.dcm", "a-b-c.dcm", "dimse-A-0123456789abcdeg.dcm", "dimse-A-0123456789abcdef.DCM", "../x-y-0123456789abcdef.dcm"} {
		if k, s := Origin(n); k != "" || s != "" {
			t.Errorf("Origin(%q) = %q %q", n, k, s)
		}
	}
}
