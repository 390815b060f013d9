package folder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// HistoryDir is where requeue keeps the reason files of films it moved back,
// inside the quarantine: a film that fails again gets a new reason file, and
// the earlier ones stay for the record.
const HistoryDir = "requeued"

const reasonSuffix = ".reason.json"

// RequeueOptions select quarantined films to move back into the drop folder.
// A film matches when All is set, its reason code is in Codes, or its name
// (as dropped, or as stored in the quarantine) is in Names.
type RequeueOptions struct {
	Folder Options
	Names  []string
	Codes  []string
	All    bool
	DryRun bool
}

// Requeued is one film moved (or, in a dry run, to be moved) back.
type Requeued struct {
	FilmID string
	Code   string
	Name   string // as dropped
	From   string // in the quarantine
	To     string // in the drop folder
	// History is where the reason file was kept.
	History string
}

// Requeue moves matching quarantined films back into the drop folder, where
// the daemon (running or not) claims them like any new film, and moves each
// one's reason file to the quarantine's history. It never deletes or
// overwrites: a name already taken in the drop folder gets the film ID as
// a suffix. A reason file whose film is gone (moved by hand, or a requeue
// interrupted between its two renames) is moved to the history too.
func Requeue(o RequeueOptions) ([]Requeued, error) {
	fo := o.Folder.WithDefaults()
	if !o.All && len(o.Names) == 0 && len(o.Codes) == 0 {
		return nil, errors.New("requeue: name the films, a reason code, or all")
	}
	ents, err := os.ReadDir(fo.FailedDir)
	if err != nil {
		return nil, fmt.Errorf("requeue: read quarantine %s: %w", fo.FailedDir, err)
	}
	var reasons []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), reasonSuffix) {
			reasons = append(reasons, e.Name())
		}
	}
	sort.Strings(reasons)
	hist := filepath.Join(fo.FailedDir, HistoryDir)
	var out []Requeued
	var errs []error
	for _, rn := range reasons {
		stored := strings.TrimSuffix(rn, reasonSuffix)
		rp := filepath.Join(fo.FailedDir, rn)
		b, err := os.ReadFile(rp)
		if err != nil {
			errs = append(errs, fmt.Errorf("requeue: read %s: %w", rp, err))
			continue
		}
		var r Reason
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, fmt.Errorf("requeue: reason file %s is not valid JSON: %w", rp, err))
			continue
		}
		if r.File == "" {
			r.File = stored
		}
		if !(o.All || slices.Contains(o.Codes, r.Code) || slices.Contains(o.Names, r.File) || slices.Contains(o.Names, stored)) {
			continue
		}
		id := r.FilmID
		if !validID(id) {
			id = newID()
		}
		rq := Requeued{FilmID: r.FilmID, Code: r.Code, Name: r.File, From: filepath.Join(fo.FailedDir, stored)}
		rq.History = filepath.Join(hist, historyName(stored, id, time.Now().UTC()))
		_, statErr := os.Lstat(rq.From)
		gone := errors.Is(statErr, os.ErrNotExist)
		if o.DryRun {
			if !gone {
				rq.To = filepath.Join(fo.Path, uniqueName(fo.Path, safeName(r.File, stored), id))
				out = append(out, rq)
			}
			continue
		}
		if err := os.MkdirAll(hist, 0o750); err != nil {
			return out, fmt.Errorf("requeue: create %s: %w", hist, err)
		}
		if !gone {
			// The film first: interrupted here, the film is back in the
			// drop folder and only its reason file stays behind, which the
			// next requeue archives.
			rq.To, err = moveNoClobber(rq.From, fo.Path, safeName(r.File, stored), id)
			if err != nil {
				errs = append(errs, fmt.Errorf("requeue film %s: %w", r.FilmID, err))
				continue
			}
		}
		if err := renameNoReplace(rp, rq.History); err != nil {
			errs = append(errs, fmt.Errorf("requeue film %s: keep reason file: %w", r.FilmID, err))
			continue
		}
		if !gone {
			out = append(out, rq)
		}
	}
	return out, errors.Join(errs...)
}

// safeName is the name a film goes back under: as dropped, unless that name
// would be ignored by the folder (hidden, temporary) or leave it.
func safeName(orig, stored string) string {
	if orig == "" || orig != filepath.Base(orig) || ignored(orig) {
		return stored
	}
	return orig
}

func historyName(stored, id string, at time.Time) string {
	n := fmt.Sprintf("%s.%s.%s%s", stored, id, at.Format("20060102T150405Z"), reasonSuffix)
	if len(n) > 255 {
		n = n[len(n)-255:]
	}
	return n
}
