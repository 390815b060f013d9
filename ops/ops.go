// Package ops serves the operator endpoints on a local address: /metrics
// (Prometheus text format), /healthz (the process is alive and its pipeline
// is not wedged) and /readyz (the daemon is ready to take films), the last
// two answering 503 with the reasons, one per line, when they fail.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Status is what the endpoints report on.
type Status interface {
	// Health lists why the process is unhealthy; none means healthy.
	Health() []string
	// Readiness lists why the daemon is not ready; none means ready.
	Readiness() []string
}

// Handler routes the three endpoints.
func Handler(st Status, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { report(w, st.Health(), "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok := "ready"
		if d, is := st.(Describer); is {
			// Lines after the first: probes read the status code only.
			for _, l := range d.ReadyDetails() {
				ok += "\n" + l
			}
		}
		report(w, st.Readiness(), ok)
	})
	return mux
}

// Describer is a Status that says more when it is ready (which models run
// on which execution provider); /readyz prints it after "ready".
type Describer interface {
	ReadyDetails() []string
}

func report(w http.ResponseWriter, reasons []string, ok string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(reasons) == 0 {
		fmt.Fprintln(w, ok)
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, strings.Join(reasons, "\n"))
}

// Server is the running HTTP server.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Listen binds addr now, so a taken port fails the start with a clear
// error, and serves h in the background.
func Listen(addr string, h http.Handler, log zerolog.Logger) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		addr: l.Addr(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			log.Error().Err(err).Msg("HTTP endpoints stopped")
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.addr.String() }

// Shutdown stops serving, letting requests in progress finish.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	return <-s.done
}
