package folder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// On a full disk a film can still be claimed and moved to done/ (renames
// need no space), but not quarantined: its reason file cannot be written.
// The failure leaves the film in processing, nothing half-written in
// failed/ and no file name in the error; once space is freed the same
// film is quarantined normally.
func TestFullDiskQuarantineFailsCleanlyAndSucceedsOnceSpaceReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: mounts a tmpfs")
	}
	dir := testenv.Tmpfs(t, "2m")
	f, _ := open(t, dir, 50*time.Millisecond)
	for _, n := range []string{"patient-canary-1.dcm", "patient-canary-2.dcm"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("film"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, b := next(t, f, 5*time.Second), next(t, f, 5*time.Second)

	filler := filepath.Join(dir, "filler")
	testenv.FillDisk(t, filler)

	if err := a.Ack(); err != nil {
		t.Errorf("move to done/ on a full disk: %v", err)
	}
	err := b.Quarantine("not_dicom", strings.Repeat("a long reason ", 400))
	if err == nil {
		t.Fatal("quarantine on a full disk succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "canary") {
		t.Errorf("quarantine error %q: want ENOSPC and no file name", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "failed")); len(ents) != 0 {
		t.Errorf("failed/ holds %d entries after a failed quarantine, want none", len(ents))
	}
	if _, err := os.Stat(b.path); err != nil {
		t.Errorf("the film left processing: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := b.Quarantine("not_dicom", "not a DICOM file"); err != nil {
		t.Fatalf("quarantine after space returned: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "failed")); len(ents) != 2 {
		t.Errorf("failed/ holds %d entries, want the film and its reason file", len(ents))
	}
}

// RetryNow hands back at once a film released with a long delay (a
// quarantine that failed on a full disk, backed off for minutes).
func TestRetryNowEndsTheRetryDelay(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 20*time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "a.dcm"), []byte("film"), 0o644); err != nil {
		t.Fatal(err)
	}
	it := next(t, f, 5*time.Second)
	it.Release(time.Hour)
	noNext(t, f, 100*time.Millisecond)
	if n := f.RetryNow(); n != 1 {
		t.Fatalf("RetryNow gave back %d films, want 1", n)
	}
	if again := next(t, f, time.Second); again.ID() != it.ID() {
		t.Fatalf("got film %s back, want %s", again.ID(), it.ID())
	}
	if n := f.RetryNow(); n != 0 {
		t.Errorf("a second RetryNow gave back %d films", n)
	}
	it.Release(0) // a zero delay still works, and is not left in the delayed set
	next(t, f, time.Second)
	if n := f.RetryNow(); n != 0 {
		t.Errorf("RetryNow after a zero-delay release gave back %d films", n)
	}
}
