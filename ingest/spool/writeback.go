package spool

import "golang.org/x/sys/unix"

// writebackEvery is how often Write asks the kernel to start writing a film
// being received, so the fsync in Commit has little left to do.
const writebackEvery = 2 << 20

// StartWriteback asks the kernel to start writing what has been written so
// far to disk, without waiting. Write calls it every writebackEvery bytes so
// that the fsync in Commit finds most of the film already on disk:
// receiving the rest overlaps the disk's work instead of waiting for it at
// the end (every receiver gets this, C-STORE and STOW-RS alike). It is
// advisory; an error changes nothing about durability (Commit still fsyncs)
// and is ignored.
func (w *Writer) StartWriteback() {
	if w.done || w.err != nil {
		return
	}
	_ = unix.SyncFileRange(int(w.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
