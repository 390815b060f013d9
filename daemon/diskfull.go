package daemon

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/triaged/triaged/bus"
)

// Full disks. The daemon watches the free space under every place it
// writes: each drop folder (quarantine reason files, crash marks; done/
// and failed/ are renames), the NATS intake's spool and the embedded
// JetStream store. A full one is reported (a log line naming the
// configured path, never a film's; /readyz; triaged_disk_full) and nothing
// is lost meanwhile: a film that cannot be settled stays where it is and is
// retried with backoff, a result JetStream refuses is retried without the
// film being acknowledged. When space returns, work resumes by itself.
//
// For the embedded store the guard (bus.StoreGuard) also keeps
// JetStream's storage limit at the store's usage plus the free space above
// nats.embedded.min_free, so JetStream refuses messages cleanly before the
// disk is full: a write that fails with ENOSPC leaves nats-server's stream
// failing until a restart.

// diskCheckEvery is how often free space is measured.
const diskCheckEvery = 2 * time.Second

// place is one watched filesystem location.
type place struct {
	kind, path string // kind: folder, spool, store
}

type diskState struct {
	guard *bus.StoreGuard // embedded store; nil with an external server

	mu     sync.Mutex
	free   map[place]int64
	full   map[place]bool
	refuse struct { // JetStream's last refusal for want of storage
		since time.Time
		err   string
	}
}

// diskFullFloor is the free space under which a drop folder or spool
// counts as full: 16 MiB, or 5% of a smaller filesystem.
func diskFullFloor(size int64) int64 { return min(16<<20, size/20) }

// places lists what to watch now: running folders change with reloads.
func (d *Daemon) places() []place {
	var ps []place
	for _, f := range d.svc.srcs.runningFolders() {
		ps = append(ps, place{"folder", f.Path()})
	}
	if c := d.cfg.Ingest.NATS; c.Enabled && c.SpoolDir != "" {
		ps = append(ps, place{"spool", d.cfg.Resolve(c.SpoolDir)})
	}
	if d.disk.guard != nil {
		ps = append(ps, place{"store", d.cfg.Resolve(d.cfg.NATS.Embedded.StoreDir)})
	}
	return ps
}

// checkDisks measures every place once, sets the store's limit and logs
// each change between full and not full.
func (d *Daemon) checkDisks() {
	now := map[place]int64{}
	full := map[place]bool{}
	for _, p := range d.places() {
		if p.kind == "store" {
			st, err := d.disk.guard.Check()
			if err != nil {
				d.log.Warn().Err(err).Msg("cannot check the JetStream store's free space")
				continue
			}
			now[p], full[p] = st.Free, st.Full
			continue
		}
		var fs unix.Statfs_t
		if err := unix.Statfs(p.path, &fs); err != nil {
			continue // a folder removed under the daemon is reported where it is used
		}
		free := int64(fs.Bavail) * int64(fs.Bsize)
		now[p], full[p] = free, free < diskFullFloor(int64(fs.Blocks)*int64(fs.Bsize))
	}
	d.disk.mu.Lock()
	was := d.disk.full
	d.disk.free, d.disk.full = now, full
	d.disk.mu.Unlock()
	for p, f := range full {
		switch {
		case f && !was[p]:
			d.log.Error().Str("place", p.kind).Str("path", p.path).Int64("free_bytes", now[p]).Msg(fullMessage(p.kind))
		case !f && was[p]:
			retried := 0
			if p.kind == "folder" {
				// Films backed off for minutes while the disk was full are
				// retried now.
				for _, fs := range d.svc.srcs.runningFolders() {
					if fs.Path() == p.path {
						retried += fs.RetryNow()
					}
				}
			}
			d.log.Warn().Str("place", p.kind).Str("path", p.path).Int64("free_bytes", now[p]).Int("films_retried", retried).Msg("space is back; work resumes")
		}
	}
}

func fullMessage(kind string) string {
	switch kind {
	case "store":
		return "the JetStream store's disk is full (nats.embedded.min_free reached): results cannot be stored; films wait unacknowledged and are retried; free space or purge a stream to resume"
	case "spool":
		return "the NATS intake's spool disk is full: films are given back to JetStream (not counted as deliveries) until space returns"
	default:
		return "the drop folder's disk is full: films that cannot be moved stay where they are and are retried; free space to resume"
	}
}

// noteStore records the outcome of one attempt to store a message: a
// refusal for want of storage sets the store-full condition, any success
// clears it.
func (d *Daemon) noteStore(err error) {
	d.disk.mu.Lock()
	defer d.disk.mu.Unlock()
	switch {
	case err == nil:
		d.disk.refuse.since = time.Time{}
	case bus.StoreFull(err):
		if d.disk.refuse.since.IsZero() {
			d.disk.refuse.since = time.Now()
		}
		d.disk.refuse.err = err.Error()
	}
}

// diskReasons are the full-disk lines of /readyz.
func (d *Daemon) diskReasons() []string {
	d.disk.mu.Lock()
	defer d.disk.mu.Unlock()
	var why []string
	for p, f := range d.disk.full {
		if f {
			why = append(why, fmt.Sprintf("disk full under the %s %s (%d bytes free): %s", p.kind, p.path, d.disk.free[p], fullReadiness(p.kind)))
		}
	}
	sort.Strings(why)
	if r := d.disk.refuse; !r.since.IsZero() {
		why = append(why, fmt.Sprintf("JetStream refuses to store results for want of storage since %s (%s); films wait unacknowledged and are retried",
			r.since.UTC().Format(time.RFC3339), r.err))
	}
	return why
}

func fullReadiness(kind string) string {
	switch kind {
	case "store":
		return "results cannot be stored"
	case "spool":
		return "object-store films cannot be fetched"
	default:
		return "films that cannot be moved to done/ or failed/ are retried"
	}
}

// startDiskWatch checks the disks now and then every diskCheckEvery until
// ctx ends.
func (d *Daemon) startDiskWatch(ctx context.Context, wg *sync.WaitGroup) {
	d.checkDisks()
	d.registerDiskMetrics()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(diskCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.checkDisks()
			}
		}
	}()
}

// diskCollector exports the watched places' free space and full state.
type diskCollector struct {
	d          *Daemon
	free, full *prometheus.Desc
	refusing   *prometheus.Desc
}

func (d *Daemon) registerDiskMetrics() {
	m := d.svc.metrics
	if m == nil {
		return
	}
	c := &diskCollector{d: d,
		free:     prometheus.NewDesc("triaged_disk_free_bytes", "Free bytes on the filesystem of each place the daemon writes (drop folder, spool, JetStream store).", []string{"place", "path"}, nil),
		full:     prometheus.NewDesc("triaged_disk_full", "1 when a place the daemon writes is full (a drop folder or spool below 16 MiB or 5% free, the store below nats.embedded.min_free).", []string{"place", "path"}, nil),
		refusing: prometheus.NewDesc("triaged_store_refusing", "1 while JetStream refuses to store results for want of storage.", nil, nil),
	}
	_ = m.Registry.Register(c) // registered once per Daemon; a second Run keeps the first
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.full
	ch <- c.refusing
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	c.d.disk.mu.Lock()
	for p, free := range c.d.disk.free {
		ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free), p.kind, p.path)
		v := 0.0
		if c.d.disk.full[p] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.full, prometheus.GaugeValue, v, p.kind, p.path)
	}
	r := 0.0
	if !c.d.disk.refuse.since.IsZero() {
		r = 1
	}
	c.d.disk.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.refusing, prometheus.GaugeValue, r)
}
