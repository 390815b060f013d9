package daemon

import (
	"github.com/triaged/triaged/film"
	"time"

	"github.com/triaged/triaged/metrics"
	"github.com/triaged/triaged/publish"
)

// observeResult records a scored film's metrics once its result is stored.
func (d *Daemon) observeResult(a *film.Analysis, r *publish.Result, duplicate bool, publishing time.Duration) {
	m := d.svc.metrics
	if m == nil {
		return
	}
	t := r.Timings
	msd := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s := metrics.Scored{
		Priority:  r.Priority,
		Score:     r.Score,
		Duplicate: duplicate,
		BatchSize: t.BatchSize,
		Stages: map[string]time.Duration{
			"queue":      msd(t.QueueMS),
			"decode":     msd(t.DecodeMS),
			"preprocess": msd(t.PreprocessMS),
			"inference":  msd(t.InferenceMS),
			"heatmap":    msd(t.HeatmapMS),
			"publish":    publishing,
			"total":      msd(t.TotalMS) + publishing,
		},
	}
	if a != nil && a.Result != nil {
		s.Inference = a.Result.Inference
	}
	m.ResultStored(s)
}
