package spool

import "golang.org/x/sys/unix"

// StartWriteback asks the kernel to start writing what has been written so
// far to disk, without waiting. A receiver calls it every few MiB so that
// the fsync in Commit finds most of the film already on disk: receiving
// the rest overlaps the disk's work instead of waiting for it at the end.
// It is advisory; an error changes nothing about durability (Commit still
// fsyncs) and is ignored.
func (w *Writer) StartWriteback() {
	if w.done || w.err != nil {
		return
	}
	_ = unix.SyncFileRange(int(w.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
