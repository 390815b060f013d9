package daemon

import (
	"context"
	"sync"

	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/ingest/folder"
)

// sourceSet holds the sources that are running, so that a reload can add
// and remove drop folders while the pipeline runs. Every source runs under
// its own context, a child of intake: stopping one ends its intake only;
// films it already handed over finish normally.
type sourceSet struct {
	mu     sync.Mutex
	intake context.Context // nil before Run and once intake stops
	admit  chan<- ingest.Film
	errs   chan<- error
	wg     *sync.WaitGroup
	cancel map[ingest.Intake]context.CancelFunc
	order  []ingest.Intake // running, in start order
	// folders holds every folder source opened, by drop folder path, running
	// or parked (removed by a reload). A folder added back reuses its parked
	// source: opening it anew would take the films still in flight from its
	// processing area a second time.
	folders map[string]*folder.Folder
}

// startSources starts every source of the configuration under intake.
func (d *Daemon) startSources(intake context.Context, admit chan<- ingest.Film, errs chan<- error, wg *sync.WaitGroup) {
	ss := &d.svc.srcs
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.intake, ss.admit, ss.errs, ss.wg = intake, admit, errs, wg
	ss.cancel = map[ingest.Intake]context.CancelFunc{}
	if ss.folders == nil {
		ss.folders = map[string]*folder.Folder{}
	}
	for _, s := range d.sources {
		if fs, ok := s.(*folder.Folder); ok {
			ss.folders[fs.Path()] = fs
		}
		d.startSourceLocked(s)
	}
}

// startSourceLocked runs a source's watcher and hands its films to
// admission. The caller holds ss.mu.
func (d *Daemon) startSourceLocked(s ingest.Intake) {
	ss := &d.svc.srcs
	ctx, cancel := context.WithCancel(ss.intake)
	ss.cancel[s] = cancel
	ss.order = append(ss.order, s)
	ss.wg.Add(2)
	go func() {
		defer ss.wg.Done()
		if err := s.Run(ctx); err != nil {
			select {
			case ss.errs <- err:
			default: // another source's error is already stopping the daemon
			}
		}
	}()
	go func() {
		defer ss.wg.Done()
		for {
			it, err := s.Next(ctx)
			if err != nil {
				return
			}
			it = d.track(it)
			select {
			case ss.admit <- it:
			case <-ctx.Done():
				it.Release(0)
				return
			}
		}
	}()
}

// stopSourceLocked ends a source's intake. The caller holds ss.mu.
func (d *Daemon) stopSourceLocked(s ingest.Intake) {
	ss := &d.svc.srcs
	if c, ok := ss.cancel[s]; ok {
		c()
		delete(ss.cancel, s)
	}
	for i, o := range ss.order {
		if o == s {
			ss.order = append(ss.order[:i:i], ss.order[i+1:]...)
			break
		}
	}
}

// close refuses further starts: intake is stopping.
func (ss *sourceSet) close() {
	ss.mu.Lock()
	ss.intake = nil
	ss.mu.Unlock()
}

func (ss *sourceSet) running() []ingest.Intake {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return append([]ingest.Intake(nil), ss.order...)
}

func (ss *sourceSet) runningFolders() []*folder.Folder {
	var out []*folder.Folder
	for _, s := range ss.running() {
		if fs, ok := s.(*folder.Folder); ok {
			out = append(out, fs)
		}
	}
	return out
}

// waitScanned waits until every running source has finished its start-up
// scan. It gives up (false) when ctx ends or a source fails; the failure is
// put back for Run to report.
func (d *Daemon) waitScanned(ctx context.Context, errs chan error) bool {
	for _, s := range d.svc.srcs.running() {
		sc, ok := s.(ingest.Scanner)
		if !ok {
			continue
		}
		select {
		case <-sc.Scanned():
		case <-ctx.Done():
			return false
		case err := <-errs:
			select {
			case errs <- err:
			default:
			}
			return false
		}
	}
	return true
}
