package daemon

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/codec"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/route"
)

// routeOrCheck applies the routing filter and the image checks to an
// admitted header. It reports whether the film goes on to be scored; if not,
// it has been skipped (event, then done/) or quarantined.
func (d *Daemon) routeOrCheck(ctx context.Context, it ingest.Film, h *decode.Header) bool {
	if dec := d.route.Load().Decide(h); dec.Skip {
		d.skip(ctx, it, h, dec)
		return false
	}
	if err := decode.Check(h, d.limits); err != nil {
		d.quarantine(ctx, it, h, string(decode.CodeOf(err)), decode.Reason(err))
		return false
	}
	return true
}

// skip publishes a skipped event and then acknowledges the film: it was
// handled, just not scored, so its file goes to done/.
func (d *Daemon) skip(ctx context.Context, it ingest.Film, h *decode.Header, dec route.Decision) {
	f := film.Of(h)
	ev := &publish.Event{
		Schema:    publish.EventSchema,
		Kind:      "skipped",
		MessageID: it.ID() + ":skipped",
		Source:    it.Origin(),
		Film:      &f,
		Code:      dec.Code,
		Reason:    dec.Reason,
		At:        time.Now().UTC(),
		Daemon:    d.version,
		Host:      d.host,
	}
	if err := d.durably(ctx, "publish skipped event", func(ctx context.Context) error {
		_, err := d.pub.PublishEvent(ctx, ev)
		return err
	}); err != nil {
		it.Release(0)
		return
	}
	if err := it.Ack(); err != nil {
		d.log.Error().Str("film_id", it.ID()).Err(err).Msg("skipped event stored but the input could not be acknowledged")
		return
	}
	d.log.Info().Str("film_id", it.ID()).Str("code", dec.Code).Str("reason", dec.Reason).Msg("film skipped by the routing filter")
}

// logCodecs warns at start-up about codec libraries that are not installed:
// the daemon runs without them, and films in their syntaxes are
// quarantined as codec_missing.
func logCodecs(log zerolog.Logger) {
	for _, l := range codec.Libraries() {
		if l.Err != nil {
			log.Warn().Str("codec", l.Codec).Str("library", l.Soname).Str("debian_package", l.Package).
				Msg("codec library not installed: films needing it will be quarantined as codec_missing")
		}
	}
}
