// Package worklist serves the triage worklist page: the films that need
// eyes first, live, with where the model looked.
//
// State comes from the JetStream streams, never from the daemon's memory:
// at start ordered consumers replay the newest part of the results stream
// (results, skipped and error events) and of the alerts stream (alerts,
// heatmap updates, acknowledgements) into a bounded index (the newest
// Options.MaxFilms entries), then keep following them; every change is
// pushed to open pages as Server-Sent Events (/events). Any daemon of a
// fleet can therefore serve the page, and a restart loses nothing.
//
// Wiring it in:
//
//	auth, tlsConf, err := worklist.LoadAuth(cfg.WorklistResolved())
//	srv, err := worklist.New(worklist.Options{JS: js, Publisher: pub, Prefix: cfg.NATS.SubjectPrefix,
//		ResultStream: cfg.NATS.ResultStream.Name, AlertStream: cfg.NATS.AlertStream.Name,
//		Auth: auth, TLS: tlsConf, ViewerURL: cfg.Worklist.ViewerURL,
//		MaxFilms: cfg.Worklist.MaxFilms, ShowSince: cfg.Worklist.ShowSince, Log: log})
//	ln, err := net.Listen("tcp", cfg.Worklist.Listen)
//	go srv.Serve(ctx, ln) // returns once ctx ends and every goroutine it started has stopped
//
// Access: without credentials configured the page is anonymous and Serve
// refuses any listener that is not loopback. Otherwise a request must carry
// a verified client certificate, a user name in the trusted proxy header
// from a trusted proxy address, a bearer token, or basic-auth credentials
// checked against bcrypt hashes. Refusals and acknowledgements are logged
// with the user and address, never with patient data. Pages send a strict
// Content-Security-Policy (scripts and styles from the page's own origin
// only, no framing) and are never cached; the acknowledge action needs a
// double-submit CSRF token and a same-origin Origin.
package worklist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/publish"
)

// Options configure the page.
type Options struct {
	JS jetstream.JetStream
	// Publisher publishes acknowledgements; nil makes the page read-only.
	Publisher *publish.Publisher
	// Prefix is the subject prefix (nats.subject_prefix).
	Prefix                    string
	ResultStream, AlertStream string
	Auth                      Auth
	// TLS, when set, serves HTTPS on the listener (and verifies client
	// certificates when it has ClientCAs).
	TLS *tls.Config
	// ViewerURL links a film to the site's viewer: {study} is replaced by
	// the URL-escaped Study Instance UID. Empty: no link.
	ViewerURL string
	// MaxFilms bounds the entries held (0: 20000).
	MaxFilms int
	// ShowSince is the page's default time filter (0: everything held).
	ShowSince time.Duration
	// PageRows bounds the rows one page shows (0: 100); the rest are
	// reached through the filters.
	PageRows int
	Log      zerolog.Logger
}

// Server is the worklist page. Serve it once.
type Server struct {
	js        jetstream.JetStream
	pub       *publish.Publisher
	prefix    string
	results   string
	alerts    string
	auth      *authenticator
	tls       *tls.Config
	viewer    string
	showSince time.Duration
	pageRows  int
	log       zerolog.Logger

	ix    *index
	hub   *hub
	ready atomic.Bool
	// pending counts the streams still replaying.
	pending atomic.Int32
	served  atomic.Bool
}

// New checks the options and builds the page; nothing runs until Serve.
func New(o Options) (*Server, error) {
	if o.JS == nil {
		return nil, errors.New("worklist: no JetStream context")
	}
	if o.Prefix == "" || o.ResultStream == "" || o.AlertStream == "" {
		return nil, errors.New("worklist: subject prefix and both stream names are required")
	}
	if o.MaxFilms <= 0 {
		o.MaxFilms = 20000
	}
	if o.PageRows <= 0 {
		o.PageRows = 100
	}
	s := &Server{
		js: o.JS, pub: o.Publisher, prefix: o.Prefix, results: o.ResultStream, alerts: o.AlertStream,
		auth: newAuthenticator(o.Auth), tls: o.TLS, viewer: o.ViewerURL, showSince: o.ShowSince,
		pageRows: o.PageRows, log: o.Log, ix: newIndex(o.MaxFilms), hub: newHub(),
	}
	s.pending.Store(2)
	return s, nil
}

// Ready reports whether the streams have been replayed.
func (s *Server) Ready() bool { return s.ready.Load() }

// Serve follows the streams and serves the page on ln until ctx ends; it
// then closes ln and the event streams, and returns once every goroutine
// it started has stopped. Without credentials configured, ln must be a
// loopback listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("worklist: Serve called twice")
	}
	if s.auth.a.Anonymous() {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return fmt.Errorf("worklist: refusing to serve anonymously on %s: configure users, tokens, client certificates or a trusted proxy, or listen on a loopback address", ln.Addr())
		}
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	window := s.ix.max
	streams := []struct {
		name    string
		filters []string
		window  int
	}{
		{s.results, []string{s.subject(publish.SubjectResult), s.subject(publish.SubjectSkipped), s.subject(publish.SubjectError)}, window},
		// Alerts, updates and acknowledgements: a few messages per film.
		{s.alerts, []string{s.subject(publish.SubjectAlert) + ".>"}, 4 * window},
	}
	for _, st := range streams {
		var once sync.Once
		wg.Go(func() {
			s.follow(ctx, st.name, st.filters, st.window, func() { once.Do(s.caughtUp) })
		})
	}

	srv := &http.Server{
		Handler:           s.Handler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// TLS handshake failures and the like: debug, not stderr.
		ErrorLog: stdlog.New(debugWriter{s.log}, "", 0),
	}
	errc := make(chan error, 1)
	wg.Go(func() { errc <- srv.Serve(ln) })
	s.log.Info().Str("addr", ln.Addr().String()).Bool("tls", s.tls != nil).Bool("anonymous", s.auth.a.Anonymous()).Msg("worklist: serving")

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("worklist: serve on %s: %w", ln.Addr(), err)
	}
	cancel() // ends the event streams and the consumers
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	wg.Wait()
	return err
}

type debugWriter struct{ l zerolog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("error", strings.TrimSpace(string(p))).Msg("worklist: http server")
	return len(p), nil
}

func (s *Server) subject(x string) string { return s.prefix + "." + x }

func (s *Server) caughtUp() {
	if s.pending.Add(-1) == 0 {
		s.ready.Store(true)
		t := s.ix.tally()
		s.log.Info().Int("held", t.Held).Int("unacked_critical", t.UnackedCritical).Int("not_assessable", t.NotAssessable).Msg("worklist: streams replayed")
		s.hub.send(sse("ready", map[string]any{"uc": t.UnackedCritical, "na": t.NotAssessable}))
	}
}

// changed tells the open pages about one entry.
func (s *Server) changed(key string) {
	if s.hub.empty() {
		return
	}
	r := s.ix.row(key, time.Now())
	if r == nil {
		return
	}
	t := s.ix.tally()
	html, err := s.renderRow(r, "")
	if err != nil {
		s.log.Error().Err(err).Msg("worklist: render row")
		return
	}
	s.hub.send(sse("row", map[string]any{
		"key": r.Key, "tab": r.Tab, "rank": r.Rank, "at": r.At.UnixMilli(), "priority": r.Priority,
		"acked": r.AckBy != "", "alerted": r.Alerted, "html": html, "uc": t.UnackedCritical, "na": t.NotAssessable,
	}))
}
