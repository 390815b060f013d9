package bus

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// ConnectOptions say how the daemon connects.
type ConnectOptions struct {
	URL     string
	Name    string
	Timeout time.Duration
	// Security: TLS and credentials, from files.
	Security Security
	// Extra options are appended last.
	Extra []nats.Option
}

// ErrUnreachable marks a failure to reach any NATS server (refused, timed
// out, no route): the daemon waits for NATS rather than exiting. Refused
// credentials and TLS failures are not marked: a restart would not fix them.
var ErrUnreachable = errors.New("NATS unreachable")

// State is the connection state, for health and metrics.
type State struct{ connected atomic.Bool }

// Connected reports whether the connection is up.
func (s *State) Connected() bool { return s.connected.Load() }

// Connect opens a connection that reconnects forever: a NATS outage pauses
// the daemon (nothing is acknowledged while it lasts) rather than ending it.
func Connect(o ConnectOptions, log zerolog.Logger) (*nats.Conn, *State, error) {
	st := &State{}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(o.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // never buffer publishes while disconnected: they would be un-acked anyway
		nats.ConnectHandler(func(*nats.Conn) { st.connected.Store(true) }),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			st.connected.Store(false)
			if c.IsClosed() {
				return // our own shutdown
			}
			log.Warn().AnErr("reason", err).Msg("disconnected from NATS; intake paused until it is back")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			st.connected.Store(true)
			log.Info().Str("server", c.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error().Err(err).Msg("NATS asynchronous error")
		}),
	}
	sec, err := o.Security.Options()
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, sec...)
	opts = append(opts, o.Extra...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		if ex := explain(err, o.Security); ex != err {
			err = ex // credentials or TLS: waiting would not help
		} else if unreachable(err) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redact(o.URL), err)
	}
	st.connected.Store(nc.IsConnected())
	return nc, st, nil
}

// unreachable tells a server that is not there from one that refused us.
func unreachable(err error) bool {
	if errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// redact drops credentials from a URL list before it is logged.
func redact(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// Dial is the connection of an operator tool (alerts, submit): the same
// security as the daemon, a bounded reconnect, and the same clear errors.
func Dial(url, name string, sec Security, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := sec.Options()
	if err != nil {
		return nil, err
	}
	opts = append([]nats.Option{nats.Name(name), nats.Timeout(10 * time.Second), nats.MaxReconnects(60), nats.ReconnectWait(time.Second)}, opts...)
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(url), explain(err, sec))
	}
	return nc, nil
}
