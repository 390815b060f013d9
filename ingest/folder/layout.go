package folder

import "path/filepath"

// Scanned is closed once the folder has been watched and listed for the
// first time: every film already in it is then known, which is part of the
// daemon being ready.
func (f *Folder) Scanned() <-chan struct{} { return f.scanned }

// FailedDir is the folder's quarantine.
func (f *Folder) FailedDir() string { return f.o.FailedDir }

// Options are the folder's options, defaults filled in.
func (f *Folder) Options() Options { return f.o }

// WithDefaults fills in the working directories a drop folder uses when the
// configuration names none.
func (o Options) WithDefaults() Options {
	if o.ProcessingDir == "" {
		o.ProcessingDir = filepath.Join(o.Path, ".processing")
	}
	if o.DoneDir == "" {
		o.DoneDir = filepath.Join(o.Path, "done")
	}
	if o.FailedDir == "" {
		o.FailedDir = filepath.Join(o.Path, "failed")
	}
	return o
}
