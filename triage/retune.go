package triage

// Retuned returns an engine that scores through e's models and batcher but
// classifies with eo's thresholds and STAT escalation, so a threshold change
// applies at once without loading the models again (and without holding
// them twice in memory). Batching stays as e's. The copy shares e's
// sessions: close the Owner, and only once no copy is in use.
func (e *Engine) Retuned(eo EngineOptions) *Engine {
	o := e.Owner()
	eo.BatchSize, eo.BatchWait = o.opts.BatchSize, o.opts.BatchWait
	mans := make([]*Manifest, len(o.Models))
	for i, m := range o.Models {
		mans[i] = m.Manifest
	}
	return &Engine{
		Models:     o.Models,
		Set:        o.Set,
		Thresholds: ensembleThresholds(mans, eo),
		opts:       eo,
		reqs:       o.reqs,
		stop:       o.stop,
		owner:      o,
	}
}

// Owner is the engine that owns the sessions: e itself, or for a Retuned
// copy the engine it was made from.
func (e *Engine) Owner() *Engine {
	if e.owner != nil {
		return e.owner
	}
	return e
}
