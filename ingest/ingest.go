// Package ingest is the one contract every intake honours. An intake (a
// drop folder, a JetStream subject, the DICOM storage SCP and the STOW-RS
// endpoint, which spool into a drop folder) hands the pipeline Films, and
// the pipeline ends each Film in exactly one of three ways:
//
//   - Ack, only after the film's result is durably stored (PubAck received):
//     the intake forgets the film (moves it to done/, acknowledges the
//     message).
//   - Quarantine, with a reason code, after the error event is stored: the
//     film can never be processed as it is; the intake keeps it aside with
//     the reason (failed/ and a reason file, the dead-letter subject).
//   - Release, when the film could not be finished now (shutting down, the
//     store unreachable): the intake offers it again after the delay, and
//     again at the next start if the daemon dies first.
//
// A film that is never ended (the daemon was killed) is offered again at
// the next start, so no input is lost; results carry message IDs that
// JetStream deduplicates, so none is doubled.
//
// What each intake guarantees its sender:
//   - drop folder (ingest/folder): a file renamed into the folder is never
//     deleted; it ends in done/ or in failed/ beside its reason.
//   - JetStream (ingest/jetstream): a message is acknowledged only after its
//     result is stored; a bad one is copied to the dead-letter subject.
//   - DICOM C-STORE (ingest/dimse) and STOW-RS (ingest/dicomweb): "stored"
//     is answered only once the instance is fsynced into a drop folder
//     through ingest/spool; from there the drop folder's guarantee holds.
package ingest

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/triaged/triaged/publish"
)

// Film is one film claimed from an intake and not yet ended. Exactly one of
// Ack, Quarantine or Release ends it; later calls do nothing.
type Film interface {
	// ID is the daemon's film ID: random or derived from the intake's own
	// identity, stable across redeliveries and restarts, free of patient
	// data. Error event and dead-letter message IDs derive from it.
	ID() string
	// Origin says where the film came from, for the result message.
	Origin() publish.Source
	// Open returns the film's bytes. Errors are *OpenError (the film's
	// fault: quarantine) or *TransientError (retry later).
	Open() (io.ReadCloser, int64, error)
	// PriorityHint is a priority the intake carries outside the file (a
	// message header), or "".
	PriorityHint() string
	// Ack: the film's result is durably stored.
	Ack() error
	// Quarantine: the film can never be processed; keep it aside with the
	// reason code and text.
	Quarantine(code, reason string) error
	// Release: not finished now; offer it again after the delay.
	Release(after time.Duration)
}

// Intake yields films. Run watches or pulls until ctx ends; Next hands out
// the next claimed film, blocking until one is ready or ctx ends.
type Intake interface {
	Run(ctx context.Context) error
	Next(ctx context.Context) (Film, error)
}

// Scanner is an intake that lists what was waiting at start (a drop
// folder's backlog); readiness waits for that first listing.
type Scanner interface {
	Scanned() <-chan struct{}
}

// CrashGuard is an intake that can remember, across a kill -9, that a film
// was being decoded: a film that crashes a C codec every time would
// otherwise crash the daemon at every start, for ever. The pipeline marks
// the film before decoding and clears the mark after; an intake that finds
// a mark at start counts a crash for that film, and the pipeline
// quarantines a film whose count reached the limit (poison_film) instead
// of decoding it again.
type CrashGuard interface {
	BeginDecode() error
	EndDecode()
	// Crashes is how many starts found the film marked.
	Crashes() int
}

// Failer is an intake that tells a film the daemon genuinely tried to
// process and failed (Failed) from one given back for a reason that is not
// the film's (Release: shutting down, a full disk, NATS away). Only the
// former counts toward the intake's limit on attempts, so local trouble
// never dead-letters good films.
type Failer interface {
	Failed(after time.Duration)
}

// OpenError is a film that cannot be read, with a reason code: quarantine.
type OpenError struct {
	Code string
	Err  error
}

func (e *OpenError) Error() string { return e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// TransientError is a read failure that is not the film's fault (NATS
// unreachable while fetching an object): release and retry.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// CodeOf is the reason code of an Open failure ("unreadable" if it names
// none).
func CodeOf(err error) string {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return "unreadable"
}

// Transient reports an Open failure to retry rather than quarantine.
func Transient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}
