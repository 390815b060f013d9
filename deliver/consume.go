package deliver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What every durable delivery shares, the alert engine here and the PACS
// delivery (deliver/pacs): its consumer, its backoff and its waits.

// DurableConsumer creates or updates a durable consumer on stream. cfg's
// start point (DeliverPolicy, OptStartTime, OptStartSeq) is used only when
// the consumer is new: two daemons starting together may both find none and
// both create it, and the loser, whose start time differs and is refused,
// looks again and keeps the winner's.
func DurableConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var err error
	for range 3 {
		if c, lerr := js.Consumer(ctx, stream, cfg.Durable); lerr == nil {
			have := c.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartTime, cfg.OptStartSeq = have.DeliverPolicy, have.OptStartTime, have.OptStartSeq
		} else if !errors.Is(lerr, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("look up consumer %s on %s: %w", cfg.Durable, stream, lerr)
		}
		var c jetstream.Consumer
		if c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg); err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, stream, err)
}

// Backoff is the delay before attempt+1: exponential from lo, capped at hi,
// with "equal jitter" (half fixed, half random) so a fleet does not retry
// in lockstep; a receiver's Retry-After wins when longer.
func Backoff(attempt uint64, lo, hi, retryAfter time.Duration) time.Duration {
	d := hi
	if attempt >= 1 && attempt < 32 {
		if b := lo << (attempt - 1); b > 0 && b < d {
			d = b
		}
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Failing is a destination's current run of retryable failures: when it
// began, the last error, how many in a row. Safe for concurrent use.
type Failing struct {
	mu    sync.Mutex
	since time.Time
	last  string
	n     uint64
}

// OK ends the run: the last attempt succeeded.
func (f *Failing) OK() {
	f.mu.Lock()
	f.since, f.last, f.n = time.Time{}, "", 0
	f.mu.Unlock()
}

// Fail records a retryable failure and returns how many in a row.
func (f *Failing) Fail(err error) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		f.since = time.Now()
	}
	f.last = err.Error()
	f.n++
	return f.n
}

// State is when the run began (zero: not failing) and its last error.
func (f *Failing) State() (since time.Time, lastErr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.since, f.last
}
