package daemon

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
)

// Item is one film claimed from a source and not yet acknowledged. Exactly
// one of Ack, Quarantine or Release ends it.
type Item interface {
	ID() string
	Origin() publish.Source
	Open() (io.ReadCloser, int64, error)
	// PriorityHint is a priority the source carries outside the file
	// (a message header), or "".
	PriorityHint() string
	// Ack: the film's output is durably stored; remove it from the source.
	Ack() error
	// Quarantine: the film can never be processed; keep it aside with the reason.
	Quarantine(code, reason string) error
	// Release: not finished now; the source offers it again later.
	Release(after time.Duration)
}

// source hands out claimed items.
type source interface {
	Run(ctx context.Context) error
	Next(ctx context.Context) (Item, error)
}

// folderSource adapts a drop folder.
type folderSource struct {
	f       *ingest.Folder
	version string
}

func (s *folderSource) Run(ctx context.Context) error { return s.f.Run(ctx) }

func (s *folderSource) Next(ctx context.Context) (Item, error) {
	it, err := s.f.Next(ctx)
	if err != nil {
		return nil, err
	}
	return &folderItem{File: it, version: s.version}, nil
}

type folderItem struct {
	*ingest.File
	version string
}

func (it *folderItem) Origin() publish.Source {
	return publish.Source{Kind: "folder", Name: it.Folder(), File: it.Name(), FilmID: it.ID()}
}

func (it *folderItem) PriorityHint() string { return "" }

func (it *folderItem) Ack() error {
	_, err := it.Done()
	return err
}

func (it *folderItem) Quarantine(code, reason string) error {
	_, err := it.Fail(code, reason, "triaged "+it.version)
	return err
}

// openCode maps a source's open failure to a reason code.
func openCode(err error) string {
	var oe *ingest.OpenError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return "unreadable"
}
