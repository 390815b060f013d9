// Package bus starts the embedded NATS server and opens the daemon's NATS
// connection.
package bus

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// EmbeddedOptions configure the in-process NATS server used when no
// external server is configured.
type EmbeddedOptions struct {
	Listen     string // host:port; port -1 picks a free one
	StoreDir   string
	SyncAlways bool
	MaxPayload int32
	// MaxStore caps the store; 0: the size of its filesystem. Either way
	// the binding limit is the one a StoreGuard keeps in step with the
	// disk, not the free space nats-server would measure once at start.
	MaxStore int64
}

// StartEmbedded starts a NATS server with JetStream storing under StoreDir
// and waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions, log zerolog.Logger) (*server.Server, error) {
	host, ps, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen port %q: %w", ps, err)
	}
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded NATS store %s: %w", o.StoreDir, err)
	}
	maxStore := o.MaxStore
	if maxStore <= 0 {
		maxStore = filesystemSize(o.StoreDir)
	}
	opts := &server.Options{
		ServerName: "triaged-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		MaxPayload: o.MaxPayload,
		// 0 (unknown size) leaves nats-server's own choice.
		JetStreamMaxStore: maxStore,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	s.SetLoggerV2(&natsLogger{log.With().Str("component", "nats-server").Logger()}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not become ready on %s (port in use? set nats.embedded.listen)", o.Listen)
	}
	return s, nil
}

// natsLogger routes nats-server's log lines into zerolog.
type natsLogger struct{ l zerolog.Logger }

// Notices (the start-up banner, listen addresses) are debug detail for the
// daemon's log; warnings and errors pass through.
func (n *natsLogger) Noticef(f string, v ...any) { n.l.Debug().Msgf(f, v...) }
func (n *natsLogger) Warnf(f string, v ...any)   { n.l.Warn().Msgf(f, v...) }
func (n *natsLogger) Fatalf(f string, v ...any)  { n.l.Error().Msgf(f, v...) }
func (n *natsLogger) Errorf(f string, v ...any)  { n.l.Error().Msgf(f, v...) }
func (n *natsLogger) Debugf(f string, v ...any)  { n.l.Debug().Msgf(f, v...) }
func (n *natsLogger) Tracef(f string, v ...any)  { n.l.Trace().Msgf(f, v...) }
