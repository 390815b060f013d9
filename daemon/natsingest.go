package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
)

// NATSSecurity is the connection security the config asks for; the daemon
// and the operator tools (alerts, submit) connect the same way.
func NATSSecurity(cfg *config.Config) bus.Security {
	n := cfg.NATS
	return bus.Security{
		CAFile:          cfg.Resolve(n.TLS.CAFile),
		CertFile:        cfg.Resolve(n.TLS.CertFile),
		KeyFile:         cfg.Resolve(n.TLS.KeyFile),
		CredentialsFile: cfg.Resolve(n.CredentialsFile),
		NKeyFile:        cfg.Resolve(n.NKeyFile),
		User:            n.User,
		PasswordFile:    cfg.Resolve(n.PasswordFile),
		TokenFile:       cfg.Resolve(n.TokenFile),
	}
}

// natsCapacity is how many films the pipeline holds at once: in workers, in
// the queue, in admission, and the one a source waits to hand over. The
// NATS intake pulls no further, so a backlog waits in the stream.
func (d *Daemon) natsCapacity() int {
	return d.workers + d.cfg.Pipeline.QueueCapacity + max(2, d.workers/4) + 1
}

// openNATSIngest prepares the JetStream intake (streams, bucket, consumer).
func (d *Daemon) openNATSIngest(ctx context.Context) (source, error) {
	c := d.cfg.Ingest.NATS
	js, err := ingest.OpenJetStream(ctx, ingest.JetStreamOptions{
		JS:      d.pub.JS,
		Subject: c.Subject,
		Stream: ingest.StreamSettings{
			Name: c.Stream.Name, Replicas: c.Stream.Replicas, MaxAge: c.Stream.MaxAge,
			DuplicateWindow: c.Stream.DuplicateWindow, Memory: c.Stream.Storage == "memory",
		},
		Durable:           c.Durable,
		AckWait:           c.AckWait,
		MaxDeliver:        c.MaxDeliver,
		Backoff:           c.Backoff,
		Capacity:          d.natsCapacity(),
		MaxAckPending:     c.MaxAckPending,
		DeadLetterSubject: c.DeadLetterSubject,
		DeadLetterStream:  c.DeadLetterStream,
		ObjectBucket:      c.ObjectBucket,
		ObjectMaxAge:      c.ObjectMaxAge,
		Manage:            d.cfg.NATS.ManageStreams,
		SpoolDir:          d.cfg.Resolve(c.SpoolDir),
		MaxObjectSize:     int64(d.cfg.Ingest.MaxFileSize),
		Timeout:           d.cfg.NATS.PublishTimeout,
		Log:               d.log,
	})
	if err != nil {
		return nil, err
	}
	d.log.Info().Str("subject", c.Subject).Str("stream", c.Stream.Name).Str("consumer", c.Durable).
		Int("capacity", d.natsCapacity()).Msg("NATS intake ready")
	return &natsSource{js: js, version: d.version}, nil
}

// NATSConnected reports whether the daemon's NATS connection is up (for
// health checks: while it is down nothing is acknowledged and intake waits).
func (d *Daemon) NATSConnected() bool { return d.natsState != nil && d.natsState.Connected() }

// IngestStats reports the NATS intake's state (held films, the consumer's
// backlog), or nil when NATS intake is off.
func (d *Daemon) IngestStats(ctx context.Context) []ingest.Stats {
	var out []ingest.Stats
	for _, s := range d.sources {
		if ns, ok := s.(*natsSource); ok {
			out = append(out, ns.js.Stats(ctx))
		}
	}
	return out
}

// natsSource adapts the JetStream intake.
type natsSource struct {
	js      *ingest.JetStream
	version string
}

func (s *natsSource) Run(ctx context.Context) error { return s.js.Run(ctx) }

func (s *natsSource) Next(ctx context.Context) (Item, error) {
	m, err := s.js.Next(ctx)
	if err != nil {
		return nil, err
	}
	return &natsItem{Message: m, version: s.version}, nil
}

type natsItem struct {
	*ingest.Message
	version string
}

func (it *natsItem) Origin() publish.Source {
	return publish.Source{Kind: "nats", Name: it.Subject(), File: it.Header(ingest.HeaderFilename), FilmID: it.ID(), Sender: it.Header(ingest.HeaderSource)}
}

func (it *natsItem) PriorityHint() string {
	return strings.ToUpper(strings.TrimSpace(it.Header(ingest.HeaderPriority)))
}

// Quarantine: the daemon has already published the error event; keep the
// film on the dead-letter subject with its reason and stop its deliveries.
func (it *natsItem) Quarantine(code, reason string) error {
	return it.DeadLetter(code, reason, "triaged "+it.version)
}

func (it *natsItem) Release(after time.Duration) { it.Retry(after) }

// transient reports an open failure that is not the film's fault (NATS
// unreachable while fetching an object): retry, don't quarantine.
func transient(err error) bool {
	var te *ingest.TransientError
	return errors.As(err, &te)
}
