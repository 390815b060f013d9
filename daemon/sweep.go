package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triaged/triaged/publish"
)

// The sweep of orphaned heatmap chunks. A heatmap is stored as an object
// (chunks, then metadata); a daemon killed between the two leaves chunks
// that no object references and nobody reads, held until the bucket's max
// age. The daemon purges them at start and then every hour, once older
// than an hour (much longer than any upload takes, so another daemon's
// upload in progress is never touched). A complete heatmap whose alert was
// never published (a crash between the two) is kept: the film is processed
// again, and its heatmap, under the same name, is then referenced.
const (
	sweepEvery = time.Hour
	sweepGrace = time.Hour
)

type sweepSettings struct {
	every, grace time.Duration // 0: the defaults
}

// WithHeatmapSweep sets how often orphaned heatmap chunks are swept and
// how old they must be (tests; production uses an hour for both).
func WithHeatmapSweep(every, grace time.Duration) Option {
	return func(d *Daemon) { d.sweep = sweepSettings{every: every, grace: grace} }
}

// startSweep sweeps the heatmap bucket now and then every sweepEvery until
// ctx ends; nothing when heatmaps are off.
func (d *Daemon) startSweep(ctx context.Context, wg *sync.WaitGroup) {
	if d.heat == nil {
		return
	}
	every, grace := d.sweep.every, d.sweep.grace
	if every <= 0 {
		every = sweepEvery
	}
	if grace <= 0 {
		grace = sweepGrace
	}
	swept := d.sweptCounter()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			d.sweepOnce(ctx, grace, swept)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (d *Daemon) sweepOnce(ctx context.Context, grace time.Duration, swept prometheus.Counter) {
	bucket := d.heat.att.Bucket()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sw, err := publish.SweepOrphanChunks(c, d.pub.JS, bucket, grace)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn().Err(err).Msg("cannot sweep orphaned heatmap chunks; the next sweep retries")
		}
		return
	}
	if swept != nil {
		swept.Add(float64(sw.Orphans))
	}
	if sw.Orphans > 0 {
		d.log.Info().Str("bucket", bucket).Int("orphans", sw.Orphans).Int("objects", sw.Objects).
			Msg("purged heatmap chunks left without an object by an interrupted upload")
	}
}

// sweptCounter is triaged_heatmap_orphans_swept_total, registered once.
func (d *Daemon) sweptCounter() prometheus.Counter {
	m := d.svc.metrics
	if m == nil {
		return nil
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "triaged_heatmap_orphans_swept_total",
		Help: "Sets of heatmap object chunks purged because no object referenced them (an upload interrupted by a crash).",
	})
	if err := m.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(prometheus.Counter)
		}
		return nil
	}
	return c
}
