package daemon

import (
	"errors"
	"sync"

	"github.com/triaged/triaged/metrics"
	"github.com/triaged/triaged/triage"
)

// engineSet reference-counts scoring engines so a reload can swap in new
// models while films are being scored: each film scores and classifies
// with the engine it acquired, and a replaced engine is closed only after
// its last film has finished.
type engineSet struct {
	mu      sync.Mutex
	users   map[*triage.Engine]int  // by owner (see triage.Engine.Owner)
	retired map[*triage.Engine]bool // replaced, waiting for its last user
}

// retainEngine takes one more reference on an engine already held (for
// work that outlives the film's worker, like a late occlusion map).
func (d *Daemon) retainEngine(e *triage.Engine) func() {
	s := &d.svc.engines
	o := e.Owner()
	s.mu.Lock()
	if s.users == nil {
		s.users = map[*triage.Engine]int{}
	}
	s.users[o]++
	s.mu.Unlock()
	return d.releaser(o)
}

// acquireEngine returns the engine in force and a release function that
// must be called once the film is done with it.
func (d *Daemon) acquireEngine() (*triage.Engine, func()) {
	s := &d.svc.engines
	s.mu.Lock()
	e := d.engine.Load()
	o := e.Owner()
	if s.users == nil {
		s.users = map[*triage.Engine]int{}
	}
	s.users[o]++
	s.mu.Unlock()
	return e, d.releaser(o)
}

// releaser gives back one reference on engine o, closing it when it was
// retired and this was its last user.
func (d *Daemon) releaser(o *triage.Engine) func() {
	s := &d.svc.engines
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.users[o]--
			last := s.users[o] == 0 && s.retired[o]
			if s.users[o] == 0 {
				delete(s.users, o)
			}
			if last {
				delete(s.retired, o)
			}
			s.mu.Unlock()
			if last {
				d.closeEngine(o)
			}
		})
	}
}

// swapEngine puts next in force. The engine it replaces is closed now if
// no film is using it, else when the last one finishes; a retuned copy over
// the same sessions closes nothing.
func (d *Daemon) swapEngine(next *triage.Engine) {
	s := &d.svc.engines
	s.mu.Lock()
	old := d.engine.Swap(next)
	closeNow := false
	if old != nil && old.Owner() != next.Owner() {
		o := old.Owner()
		if s.users[o] == 0 {
			closeNow = true
		} else {
			if s.retired == nil {
				s.retired = map[*triage.Engine]bool{}
			}
			s.retired[o] = true
		}
	}
	s.mu.Unlock()
	if m := d.svc.metrics; m != nil {
		m.EngineSwapped()
	}
	d.modelsInForce(next)
	if closeNow {
		d.closeEngine(old.Owner())
	}
}

func (d *Daemon) closeEngine(e *triage.Engine) {
	if err := e.Close(); err != nil {
		d.log.Error().Err(err).Str("model_set", e.Set).Msg("closing a replaced scoring engine")
	} else {
		d.log.Info().Str("model_set", e.Set).Msg("replaced scoring engine closed after its last film")
	}
	if m := d.svc.metrics; m != nil {
		m.EngineClosed()
	}
}

// closeEngines closes the engine in force and any replaced one still open
// (at shutdown, when no film uses them any more).
func (d *Daemon) closeEngines() error {
	s := &d.svc.engines
	s.mu.Lock()
	owners := map[*triage.Engine]bool{}
	if e := d.engine.Load(); e != nil {
		owners[e.Owner()] = true
	}
	for o := range s.retired {
		owners[o] = true
	}
	s.retired = nil
	s.mu.Unlock()
	var errs []error
	for o := range owners {
		errs = append(errs, o.Close())
	}
	return errors.Join(errs...)
}

func (d *Daemon) modelsInForce(e *triage.Engine) {
	m := d.svc.metrics
	if m == nil || e == nil {
		return
	}
	ms := make([]metrics.Model, len(e.Models))
	for i, md := range e.Models {
		ms[i] = metrics.Model{Name: md.Manifest.Name, Version: md.Manifest.Version, Provider: md.Provider}
	}
	m.ModelsInForce(e.Set, ms, e.Thresholds.Urgent, e.Thresholds.Critical)
}
