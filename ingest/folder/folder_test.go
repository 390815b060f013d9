package folder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/ingest"
)

func open(t *testing.T, dir string, settle time.Duration) (*Folder, context.CancelFunc) {
	t.Helper()
	f, err := Open(Options{Path: dir, Settle: settle, RescanInterval: time.Hour, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f, cancel
}

func next(t *testing.T, f *Folder, within time.Duration) *File {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	it, err := f.next(ctx)
	if err != nil {
		t.Fatalf("no file claimed within %s: %v", within, err)
	}
	return it
}

func noNext(t *testing.T, f *Folder, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if it, err := f.next(ctx); err == nil {
		t.Fatalf("claimed %s, expected nothing", it.Name())
	}
}

func read(t *testing.T, it *File) string {
	t.Helper()
	rc, _, err := it.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func ls(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestBacklogAtStartIsClaimedAndMovedToDone(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.dcm"), []byte("AAA"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "a.dcm"), old, old)
	f, _ := open(t, dir, 10*time.Second) // a long settle: the old file must not wait for it
	it := next(t, f, 2*time.Second)
	if it.Name() != "a.dcm" || read(t, it) != "AAA" {
		t.Fatalf("claimed %s", it.Name())
	}
	if got := ls(t, filepath.Join(dir, ".processing")); len(got) != 1 || !strings.HasSuffix(got[0], "--a.dcm") {
		t.Fatalf("processing holds %v", got)
	}
	if _, err := it.Done(); err != nil {
		t.Fatal(err)
	}
	if got := ls(t, filepath.Join(dir, "done")); len(got) != 1 || got[0] != "a.dcm" {
		t.Fatalf("done holds %v", got)
	}
}

func TestWriteThenRenameIsClaimedWithoutWaitingForSettle(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, time.Minute)
	tmp := filepath.Join(dir, ".incoming.tmp")
	os.WriteFile(tmp, []byte("film"), 0o644)
	noNext(t, f, 200*time.Millisecond) // hidden names are never claimed
	os.Rename(tmp, filepath.Join(dir, "film.dcm"))
	it := next(t, f, 2*time.Second) // the lease check confirms nobody writes it
	if read(t, it) != "film" {
		t.Fatal("wrong content")
	}
}

// A writer that pauses longer than the quiet period keeps the file open;
// the file must not be read half-way.
func TestSlowInPlaceWriterIsNotReadHalfWay(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 5*time.Second)
	w, err := os.Create(filepath.Join(dir, "slow.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("x", 10)
	for i := 0; i < 10; i++ {
		w.WriteString("x")
		time.Sleep(60 * time.Millisecond)
	}
	noNext(t, f, 100*time.Millisecond)
	w.Close()
	it := next(t, f, 2*time.Second)
	if got := read(t, it); got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func TestCrashLeftoversAreProcessedAgainWithTheirID(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, ".processing")
	os.MkdirAll(proc, 0o755)
	os.WriteFile(filepath.Join(proc, "0123456789abcdef--left.dcm"), []byte("L"), 0o644)
	os.WriteFile(filepath.Join(proc, "stray.dcm"), []byte("S"), 0o644)
	f, _ := open(t, dir, time.Second)
	got := map[string]*File{}
	for range 2 {
		it := next(t, f, time.Second)
		got[it.Name()] = it
	}
	if it := got["left.dcm"]; it == nil || it.ID() != "0123456789abcdef" || !it.Recovered {
		t.Fatalf("leftover not recovered with its ID: %+v", got)
	}
	if it := got["stray.dcm"]; it == nil || len(it.ID()) != 16 {
		t.Fatalf("stray file not adopted: %+v", got)
	}
}

func TestFailWritesReasonAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 0)
	for i := range 2 {
		os.WriteFile(filepath.Join(dir, "bad.dcm"), []byte{byte('0' + i)}, 0o644)
		it := next(t, f, 2*time.Second)
		if _, err := it.Fail("not_dicom", "no DICM magic", "test"); err != nil {
			t.Fatal(err)
		}
	}
	got := ls(t, filepath.Join(dir, "failed"))
	if len(got) != 4 {
		t.Fatalf("failed/ holds %v; want both files and both reasons", got)
	}
	var r Reason
	b, _ := os.ReadFile(filepath.Join(dir, "failed", "bad.dcm.reason.json"))
	if err := json.Unmarshal(b, &r); err != nil || r.Code != "not_dicom" || r.File != "bad.dcm" {
		t.Fatalf("reason %s: %v", b, err)
	}
}

func TestDoneCollisionKeepsBoth(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 0)
	for i := range 2 {
		os.WriteFile(filepath.Join(dir, "same.dcm"), []byte{byte('a' + i)}, 0o644)
		it := next(t, f, 2*time.Second)
		if _, err := it.Done(); err != nil {
			t.Fatal(err)
		}
	}
	if got := ls(t, filepath.Join(dir, "done")); len(got) != 2 {
		t.Fatalf("done holds %v", got)
	}
}

func TestSymlinkIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	f, _ := open(t, dir, 0)
	os.Symlink(secret, filepath.Join(dir, "link.dcm"))
	it := next(t, f, 2*time.Second)
	_, _, err := it.Open()
	var oe *ingest.OpenError
	if !errors.As(err, &oe) || oe.Code != "symlink" {
		t.Fatalf("open of a symlink: %v", err)
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatal("the link target must be untouched")
	}
}

func TestRescanFindsFilesWithoutEvents(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(Options{Path: dir, Settle: 0, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	// No watcher runs: only a scan can find the file.
	os.WriteFile(filepath.Join(dir, "quiet.dcm"), []byte("q"), 0o644)
	f.scan()
	if it := next(t, f, time.Second); it.Name() != "quiet.dcm" {
		t.Fatalf("claimed %s", it.Name())
	}
}

func TestReleaseOffersTheFileAgain(t *testing.T) {
	dir := t.TempDir()
	f, _ := open(t, dir, 0)
	os.WriteFile(filepath.Join(dir, "r.dcm"), []byte("r"), 0o644)
	it := next(t, f, 2*time.Second)
	it.Release(10 * time.Millisecond)
	again := next(t, f, 2*time.Second)
	if again.ID() != it.ID() {
		t.Fatal("released file came back with another ID")
	}
}

// A file a sender left under a temporary name is never claimed; once it has
// sat there long enough it is counted (and logged once, without its name),
// so the sender's mistake is visible.
func TestUnclaimedTemporaryFilesAreCounted(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"film.dcm.part", ".hidden.dcm", "fresh.tmp"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if n != "fresh.tmp" {
			os.Chtimes(p, old, old)
		}
	}
	f, _ := open(t, dir, 0)
	<-f.Scanned()
	if n := f.Unclaimed(); n != 2 {
		t.Errorf("unclaimed %d, want 2 (the fresh one is still being written)", n)
	}
}
