package daemon

import (
	"context"

	jsingest "github.com/triaged/triaged/ingest/jetstream"
	"github.com/triaged/triaged/provision"
)

// natsCapacity is how many films the pipeline holds at once: in workers, in
// the queue, in admission, and the one a source waits to hand over. The
// NATS intake pulls no further, so a backlog waits in the stream.
func (d *Daemon) natsCapacity() int {
	return d.workers + d.cfg.Pipeline.QueueCapacity + max(2, d.workers/4) + 1
}

// openNATSIngest prepares the JetStream intake (streams, bucket, consumer).
func (d *Daemon) openNATSIngest(ctx context.Context) (*jsingest.Intake, error) {
	c := d.cfg.Ingest.NATS
	o := provision.JetStreamIntake(d.cfg, d.pub.JS, d.natsCapacity())
	o.Daemon, o.Log = d.version, d.log
	js, err := jsingest.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	d.log.Info().Str("subject", c.Subject).Str("stream", c.Stream.Name).Str("consumer", c.Durable).
		Int("capacity", d.natsCapacity()).Msg("NATS intake ready")
	return js, nil
}

// NATSConnected reports whether the daemon's NATS connection is up (for
// health checks: while it is down nothing is acknowledged and intake waits).
func (d *Daemon) NATSConnected() bool { return d.natsState != nil && d.natsState.Connected() }

// IngestStats reports the NATS intake's state (held films, the consumer's
// backlog), or nil when NATS intake is off.
func (d *Daemon) IngestStats(ctx context.Context) []jsingest.Stats {
	var out []jsingest.Stats
	for _, s := range d.sources {
		if ns, ok := s.(*jsingest.Intake); ok {
			out = append(out, ns.Stats(ctx))
		}
	}
	return out
}
