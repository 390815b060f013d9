package testenv

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of the given size ("3m", "512k") on a new temporary
// directory for the test, unmounted when it ends: a real filesystem that
// fills up. Without the privilege to mount (root or CAP_SYS_ADMIN) the
// test skips, saying so.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipping: cannot mount a %s tmpfs (needs root or CAP_SYS_ADMIN): %v", size, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// FillDisk writes the file at path until its filesystem is full, down to
// the last partial blocks.
func FillDisk(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk under %s: %v", path, err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}
