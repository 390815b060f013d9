package pacs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/uid"
)

// OutboxOptions configure an outbox folder destination.
type OutboxOptions struct {
	Name string
	// Dir is the folder a gateway picks the files up from; it must exist
	// when the destination is created.
	Dir string
	Log zerolog.Logger
	// Priorities the destination takes (empty: all).
	Priorities []string
}

// Outbox writes result objects as Part 10 files <SOP Instance UID>.dcm
// into a folder, for sites whose gateway forwards the files it finds
// there. A file appears only complete and on disk: written under a
// temporary name in the same folder (a dot name not ending in .dcm, which
// a gateway skips), synced, renamed over the final name (a re-send of the
// same UID replaces the file atomically, never with a partial one), then
// the folder synced, so the rename survives a power cut. Only then does
// Send return nil and the film is acknowledged.
type Outbox struct {
	o   OutboxOptions
	log zerolog.Logger
}

// tmpPattern names the temporary files (os.CreateTemp); stale ones, left
// by a daemon killed mid-write, are removed at start.
const (
	tmpPrefix  = ".triaged-"
	tmpSuffix  = ".tmp"
	tmpPattern = tmpPrefix + "*" + tmpSuffix
	// staleTmp: a temporary file older than this is no other daemon's
	// write in progress (a write takes well under a second).
	staleTmp = time.Hour
)

// NewOutbox checks that the folder exists and is a folder: a path that
// is missing or a file is a configuration error at start, not something
// to retry for ever. Errors writing into it later (disk full, permission
// denied, the mount gone) are retried.
func NewOutbox(o OutboxOptions) (*Outbox, error) {
	if o.Dir == "" {
		return nil, errors.New("pacs: an outbox needs a dir")
	}
	fi, err := os.Stat(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pacs: outbox dir %s: %w", o.Dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("pacs: outbox dir %s is not a directory", o.Dir)
	}
	b := &Outbox{o: o, log: o.Log.With().Str("destination", o.Name).Logger()}
	b.sweep()
	return b, nil
}

// Name is the destination's name.
func (b *Outbox) Name() string { return b.o.Name }

// Priorities the destination takes.
func (b *Outbox) Priorities() []string { return b.o.Priorities }

// EndBurst does nothing: every Send is complete on disk when it returns.
func (b *Outbox) EndBurst() {}

// Send writes every object, then syncs the folder once. An object that
// cannot be a file here (not a Part 10 file, a SOP Instance UID that is
// not a UID and so not a safe file name) is a refusal; every file system
// error is retried, since an administrator can free space or fix
// permissions and nothing is lost meanwhile.
func (b *Outbox) Send(ctx context.Context, objs []resultobj.Object) error {
	for _, o := range objs {
		if err := uid.Valid(o.SOPInstanceUID); err != nil {
			return &deliver.SendError{Err: fmt.Errorf("outbox %s: %s object: SOP Instance UID is not a file name: %w", b.o.Name, kind(o), err)}
		}
		if _, err := o.DataSet(); err != nil {
			return &deliver.SendError{Err: fmt.Errorf("outbox %s: %w", b.o.Name, err)}
		}
	}
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return deliver.Retry(err)
		}
		if err := b.write(o.SOPInstanceUID+".dcm", o.File); err != nil {
			return deliver.Retry(fmt.Errorf("outbox %s: write %s object: %w", b.o.Name, kind(o), err))
		}
	}
	if err := syncDir(b.o.Dir); err != nil {
		return deliver.Retry(fmt.Errorf("outbox %s: sync dir: %w", b.o.Name, err))
	}
	return nil
}

// write puts data at dir/name: temporary file, sync, rename. The
// temporary file is removed on any failure, so a full disk is not made
// fuller by the attempts.
func (b *Outbox) write(name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(b.o.Dir, tmpPattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	// The gateway may run as another user: readable like any file a
	// daemon leaves for others (CreateTemp makes it 0600).
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(b.o.Dir, name))
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// sweep removes temporary files a killed daemon left behind; only old
// ones, since another daemon of the fleet may share the folder.
func (b *Outbox) sweep() {
	ents, err := os.ReadDir(b.o.Dir)
	if err != nil {
		b.log.Warn().Err(err).Msg("outbox: cannot list the folder for stale temporary files")
		return
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), tmpPrefix) || !strings.HasSuffix(e.Name(), tmpSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < staleTmp {
			continue
		}
		if err := os.Remove(filepath.Join(b.o.Dir, e.Name())); err == nil || errors.Is(err, fs.ErrNotExist) {
			n++
		}
	}
	if n > 0 {
		b.log.Info().Int("files", n).Msg("outbox: stale temporary files removed")
	}
}
