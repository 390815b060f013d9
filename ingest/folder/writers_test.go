package folder

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A writer that pauses longer than the settle time (a loaded machine, a
// stalled network copy) while keeping the file open must not get an empty
// or half-written file claimed: the kernel says it is still open for
// writing, and that wins over the settle time.
func TestPausedWriterIsNotClaimedAfterSettle(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 50*time.Millisecond)
	w, err := os.Create(filepath.Join(dir, "paused.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	noNext(t, f, 400*time.Millisecond) // eight settle periods with no byte written
	w.WriteString("film")
	w.Close()
	if got := read(t, next(t, f, 2*time.Second)); got != "film" {
		t.Fatalf("read %q", got)
	}
}
