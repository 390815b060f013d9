package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// resultObjects builds a scored film's DICOM result objects (a TID 1500
// SR and, for a film with a CAM overlay, a Secondary Capture of it) and
// keeps them in the record (bucket + message, package record) while the
// daemon still holds the film: the film is acknowledged only after they
// are stored, so the PACS deliveries, which read the record, never miss a
// film's objects. nil when result_objects.enabled is off.
type resultObjects struct {
	cfg   config.ResultObjects
	opts  resultobj.Options
	store *record.Store
}

func newResultObjects(ctx context.Context, cfg *config.Config, js jetstream.JetStream, version string) (*resultObjects, error) {
	if !cfg.ResultObjects.Enabled {
		return nil, nil
	}
	ro, so := provision.ResultObjects(cfg, version)
	st, err := record.Open(ctx, js, so)
	if err != nil {
		return nil, fmt.Errorf("result_objects: %w", err)
	}
	return &resultObjects{cfg: cfg.ResultObjects, opts: ro, store: st}, nil
}

// storeResultObjects builds and stores a film's result objects when the
// section wants its priority. A film whose objects cannot be built (its
// attributes do not allow it) is logged and counted, never failed: its
// result is stored already. The only error is ctx ending while NATS is
// away; the caller then releases the film, and the next start does it
// again (the objects replace themselves, the message deduplicates).
func (d *Daemon) storeResultObjects(ctx context.Context, log zerolog.Logger, it ingest.Film, r *publish.Result, fh *filmHeatmaps) error {
	ro := d.objs
	if ro == nil || !ro.cfg.Wants(r.Priority) {
		return nil
	}
	t0 := time.Now()
	var overlay []byte
	if fh != nil {
		overlay = fh.camOverlay
		fh.camOverlay = nil // not needed past this point
	}
	src, err := d.readSource(it)
	if err != nil && ingest.Transient(err) {
		// The film was readable a moment ago: try again, like a publish,
		// then build from what was read.
		if derr := d.durably(ctx, "read film for result objects", func(context.Context) error {
			src, err = d.readSource(it)
			if err != nil && !ingest.Transient(err) {
				return nil // a lasting error: stop retrying, handled below
			}
			return err
		}); derr != nil {
			return derr
		}
	}
	if err != nil {
		log.Warn().Err(err).Msg("result objects not built: the film's attributes cannot be read")
		return nil
	}
	objs, err := resultobj.Build(src, r, overlay, ro.opts)
	if err != nil {
		log.Warn().Err(err).Msg("result objects not built")
		return nil
	}
	var dup bool
	err = d.durably(ctx, "store result objects", func(ctx context.Context) error {
		var err error
		_, dup, err = ro.store.Put(ctx, objs, r.Priority, r.ModelSet, src.StudyInstanceUID, src.SOPInstanceUID, d.version, d.host)
		return err
	})
	if err != nil {
		return err
	}
	log.Debug().Int("objects", len(objs.List())).Bool("duplicate", dup).Float64("ms", ms(time.Since(t0))).Msg("result objects stored")
	return nil
}

// readSource reads the attributes the result objects copy from the film.
func (d *Daemon) readSource(it ingest.Film) (*resultobj.SourceFilm, error) {
	rc, size, err := it.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if ra, ok := rc.(io.ReaderAt); ok {
		return resultobj.ReadSource(ra, size, d.limits)
	}
	// A stream (not a file): the header pre-scan in ReadSource bounds what
	// it claims, but it needs random access; the film was admitted at this
	// size, so holding it once more is within the limits.
	b, err := io.ReadAll(io.LimitReader(rc, size))
	if err != nil {
		return nil, err
	}
	return resultobj.ReadSource(bytes.NewReader(b), int64(len(b)), d.limits)
}
