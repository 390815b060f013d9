// Package spool stores films received over the network (DICOM C-STORE,
// DICOMweb STOW-RS) durably in a drop folder, so that from the moment a
// sender is told "stored" the film follows the drop-folder path: claimed,
// scored, acknowledged, or processed again after a crash.
//
// A film is written under the hidden temporary directory <dir>/.spool (the
// drop folder never claims hidden names), fsynced, renamed into <dir> without
// ever replacing a file, and the directory entry is fsynced. Only when Commit
// returns nil may the sender be told the film is stored.
package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrNoSpace is returned when the spool's filesystem has less free space
// than the configured floor, or ran out while a film was written.
var ErrNoSpace = errors.New("spool: not enough free disk space")

// ErrTooLarge is returned by Write when a film exceeds the size limit.
var ErrTooLarge = errors.New("spool: film exceeds the size limit")

// ErrBusy is returned by Create when the limit on films being written at
// once is reached.
var ErrBusy = errors.New("spool: too many films being received at once")

// Options bound what the spool accepts.
type Options struct {
	// MinFreeBytes: Create refuses (ErrNoSpace) while the filesystem has
	// less free space than this. Default 256 MiB.
	MinFreeBytes uint64
	// MaxFileSize: a film larger than this is refused (ErrTooLarge).
	// 0 means no limit.
	MaxFileSize int64
	// MaxOpen: films being written at once; 0 means no limit.
	MaxOpen int
}

// Spool writes films into one drop folder.
type Spool struct {
	dir, tmp string
	o        Options
	open     atomic.Int64
}

// Open prepares dir (the drop folder) and its temporary area, and removes
// temporary files a crash left behind: a film interrupted before Commit
// was never reported as stored, so its sender will send it again.
func Open(dir string, o Options) (*Spool, error) {
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 256 << 20
	}
	tmp := filepath.Join(dir, ".spool")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("spool %s: create temporary area: %w", dir, err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("spool %s: list temporary area: %w", dir, err)
	}
	for _, e := range ents {
		_ = os.Remove(filepath.Join(tmp, e.Name()))
	}
	return &Spool{dir: dir, tmp: tmp, o: o}, nil
}

// Dir is the drop folder films are committed into.
func (s *Spool) Dir() string { return s.dir }

// FreeBytes reports the free space of the spool's filesystem for an
// unprivileged writer.
func (s *Spool) FreeBytes() (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.tmp, &st); err != nil {
		return 0, fmt.Errorf("spool %s: statfs: %w", s.dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Create starts a film from sender (an AE title or a client name: kept in
// the file name, reduced to a safe character set; it carries no patient
// data). The caller writes the film and calls Commit or Abort.
func (s *Spool) Create(kind, sender string) (*Writer, error) {
	if n := s.open.Add(1); s.o.MaxOpen > 0 && n > int64(s.o.MaxOpen) {
		s.open.Add(-1)
		return nil, ErrBusy
	}
	free, err := s.FreeBytes()
	if err == nil && free < s.o.MinFreeBytes {
		s.open.Add(-1)
		return nil, fmt.Errorf("%w: %d MiB free under %s, %d MiB required", ErrNoSpace, free>>20, s.dir, s.o.MinFreeBytes>>20)
	}
	name := Name(kind, sender)
	f, err := os.OpenFile(filepath.Join(s.tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		s.open.Add(-1)
		return nil, classify(fmt.Errorf("spool %s: create film: %w", s.dir, err))
	}
	return &Writer{s: s, f: f, name: name}, nil
}

// Name is a spool file name: <kind>-<sender>-<random>.dcm.
func Name(kind, sender string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return safe(kind) + "-" + safe(sender) + "-" + hex.EncodeToString(b[:]) + ".dcm"
}

// Origin recovers the intake kind and the sender from a spool file name,
// or "" and "" for a name the spool did not make. The drop folder uses it
// to say in results that a film came by C-STORE or STOW-RS, and from whom.
func Origin(name string) (kind, sender string) {
	base, ok := strings.CutSuffix(name, ".dcm")
	if !ok {
		return "", ""
	}
	parts := strings.Split(base, "-")
	if len(parts) != 3 || len(parts[2]) != 16 || parts[0] == "" || parts[1] == "" {
		return "", ""
	}
	if _, err := hex.DecodeString(parts[2]); err != nil || safe(parts[0]) != parts[0] || safe(parts[1]) != parts[1] {
		return "", ""
	}
	return parts[0], parts[1]
}

// safe keeps letters, digits and _; anything else becomes _. Dashes are
// reserved as separators.
func safe(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "unknown"
	}
	b := []byte(s)
	if len(b) > 32 {
		b = b[:32]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Writer is one film being received.
type Writer struct {
	s    *Spool
	f    *os.File
	name string
	n    int64
	done bool
	err  error
	// started is how much of the film the kernel was last asked to write
	// back (StartWriteback).
	started int64
}

// Write appends to the film. It fails with ErrTooLarge past the size limit
// and ErrNoSpace when the disk is full.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if max := w.s.o.MaxFileSize; max > 0 && w.n+int64(len(p)) > max {
		w.err = fmt.Errorf("%w (%d bytes)", ErrTooLarge, max)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = classify(fmt.Errorf("spool %s: write film: %w", w.s.dir, err))
		return n, w.err
	}
	if w.n-w.started >= writebackEvery {
		w.StartWriteback()
		w.started = w.n
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Commit makes the film durable and visible to the drop folder: fsync the
// file, rename it into the folder (never replacing a file), fsync the
// folder. Only a nil return means "stored". On error the film is removed.
func (w *Writer) Commit() (string, error) {
	if w.done {
		return "", errors.New("spool: film already committed or aborted")
	}
	if w.err != nil {
		w.Abort()
		return "", w.err
	}
	w.done = true
	defer w.s.open.Add(-1)
	tmp := w.f.Name()
	fail := func(err error) (string, error) {
		_ = os.Remove(tmp)
		return "", classify(err)
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return fail(fmt.Errorf("spool %s: fsync film: %w", w.s.dir, err))
	}
	if err := w.f.Close(); err != nil {
		return fail(fmt.Errorf("spool %s: close film: %w", w.s.dir, err))
	}
	dst := filepath.Join(w.s.dir, w.name)
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE); err != nil {
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return fail(fmt.Errorf("spool %s: move film into the drop folder: %w", w.s.dir, err))
		}
		if err := os.Link(tmp, dst); err != nil {
			return fail(fmt.Errorf("spool %s: move film into the drop folder: %w", w.s.dir, err))
		}
		_ = os.Remove(tmp)
	}
	if err := syncDir(w.s.dir); err != nil {
		// The film is in the folder, but its name may not survive a power
		// cut: do not report it stored. It will still be scored (once).
		return "", classify(fmt.Errorf("spool %s: fsync drop folder: %w", w.s.dir, err))
	}
	return dst, nil
}

// Abort discards a film that will not be reported as stored.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.s.open.Add(-1)
	w.f.Close()
	_ = os.Remove(w.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// classify marks disk-full errors with ErrNoSpace so a receiver can answer
// "out of resources" rather than "cannot understand".
func classify(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// IsResource reports an error that is the receiver's condition, not the
// film's: out of disk, too many at once. The sender may retry later.
func IsResource(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, ErrBusy) || errors.Is(err, fs.ErrPermission)
}
