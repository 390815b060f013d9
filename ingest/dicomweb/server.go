// Package dicomweb is the DICOMweb STOW-RS intake: PACS and modalities
// POST DICOM instances over HTTP(S) and are told "stored" only for those
// already fsynced into the drop folder's spool, from where they follow
// the drop-folder path (claimed, scored, acknowledged, re-processed after
// a crash).
//
// It serves, on its own listener, PS3.18 "Store Instances":
//
//	POST {base}/studies          Content-Type: multipart/related; type="application/dicom"; boundary=...
//	POST {base}/studies/{study}  (every instance must belong to that study)
//
// Each part is streamed through a check that it is a complete DICOM Part
// 10 file (preamble, DICM, file meta group, every element of the data set
// within the part) straight into a spool.Writer; the request is never held
// in memory. The reply is the PS3.18 store-instances response in DICOM JSON
// (application/dicom+json): ReferencedSOPSequence (0008,1199) for stored
// instances, FailedSOPSequence (0008,1198) with a FailureReason (0008,1197)
// for the others. Status 200: all stored; 202: some; 409: none; 415: the
// request (or every part) is not application/dicom; 413: the request or an
// instance exceeds its limit; 400: no boundary, no parts, a malformed URL;
// 401: no or a wrong credential; 503: too many requests at once.
//
// Who may send: a bearer token from a token file (several, one a line,
// compared in constant time), or a client certificate verified against a
// client CA (TLS). Without either, Serve refuses any listener that is not
// on a loopback address.
//
// Use:
//
//	sp, _ := spool.Open(dropFolder, spool.Options{...})
//	srv, err := dicomweb.New(dicomweb.Options{Spool: sp, TokenFile: ..., CertFile: ..., KeyFile: ...})
//	ln, _ := net.Listen("tcp", "127.0.0.1:8043")
//	err = srv.Serve(ctx, ln) // returns when ctx ends, every request finished or cut off
//
// Stats returns counters for metrics. Logs carry the client address, the
// credential's label, counts, bytes and the outcome: never a UID, a patient
// attribute or a file name chosen by the sender.
package dicomweb

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"mime"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/ingest/spool"
)

// Options configure a Server. Zero values take the defaults named.
type Options struct {
	// Spool receives the instances (required).
	Spool *spool.Spool
	// BasePath is the DICOMweb service root; default "/dicomweb".
	BasePath string
	// CertFile and KeyFile turn TLS on. ClientCAFile (requires TLS) makes
	// a client certificate signed by that CA a credential.
	CertFile, KeyFile, ClientCAFile string
	// TokenFile holds the bearer tokens (see loadTokens for its format).
	TokenFile string
	// MaxRequestBytes bounds a request body; default 2 GiB.
	MaxRequestBytes int64
	// MaxInstanceBytes bounds one instance (part); default 512 MiB.
	MaxInstanceBytes int64
	// MaxConcurrent bounds requests being received at once; default 16.
	MaxConcurrent int
	// ReadHeaderTimeout bounds reading a request's headers; default 10s.
	ReadHeaderTimeout time.Duration
	// BodyTimeout is the longest a request body may stall; default 60s.
	BodyTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections; default 120s.
	IdleTimeout time.Duration
	// ShutdownGrace is how long requests in flight may finish once the
	// context ends; default 10s. Cut-off senders were never told "stored".
	ShutdownGrace time.Duration
	// AcceptSOPClass, if set, refuses instances of other SOP classes
	// (failure reason 0122).
	AcceptSOPClass func(uid string) bool
	// Log receives one line per request; the zero value logs nothing.
	Log zerolog.Logger
}

func (o *Options) defaults() {
	if o.BasePath == "" {
		o.BasePath = "/dicomweb"
	}
	o.BasePath = "/" + strings.Trim(o.BasePath, "/")
	if o.BasePath == "/" {
		o.BasePath = ""
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 2 << 30
	}
	if o.MaxInstanceBytes <= 0 {
		o.MaxInstanceBytes = 512 << 20
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 16
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
}

// Server is a STOW-RS intake.
type Server struct {
	o        Options
	tokens   *tokens
	clientCA bool
	tlsConf  *tls.Config
	st       *stats
	sem      chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond
	active  int
	closed  bool
	serving bool
}

// New checks the options and loads the token file and certificates.
func New(o Options) (*Server, error) {
	o.defaults()
	if o.Spool == nil {
		return nil, errors.New("dicomweb: a spool is required")
	}
	s := &Server{o: o, st: newStats(), sem: make(chan struct{}, o.MaxConcurrent)}
	s.cond = sync.NewCond(&s.mu)
	if o.TokenFile != "" {
		ds, ls, err := loadTokens(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("dicomweb: %w", err)
		}
		s.tokens = &tokens{}
		s.tokens.set(ds, ls)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("dicomweb: TLS needs both a certificate and a key file")
	}
	if o.ClientCAFile != "" && o.CertFile == "" {
		return nil, errors.New("dicomweb: client certificates need TLS (a certificate and a key file)")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("dicomweb: load TLS certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
		}
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if o.ClientCAFile != "" {
			pem, err := os.ReadFile(o.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("dicomweb: read client CA %s: %w", o.ClientCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("dicomweb: client CA %s holds no PEM certificate", o.ClientCAFile)
			}
			s.tlsConf.ClientCAs = pool
			s.clientCA = true
			// With tokens as well, a client may use either credential.
			s.tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
			if s.tokens != nil {
				s.tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
			}
		}
	}
	return s, nil
}

// ReloadTokens re-reads the token file (for a reload signal); on error the
// tokens in use stay.
func (s *Server) ReloadTokens() error {
	if s.tokens == nil {
		return nil
	}
	ds, ls, err := loadTokens(s.o.TokenFile)
	if err != nil {
		return fmt.Errorf("dicomweb: %w", err)
	}
	s.tokens.set(ds, ls)
	return nil
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats { return s.st.snapshot() }

// Anonymous reports whether the server accepts requests without a
// credential (then only a loopback listener is served).
func (s *Server) Anonymous() bool { return s.tokens == nil && !s.clientCA }

// Serve answers STOW-RS requests on ln (wrapped in TLS if configured)
// until ctx ends; then requests in flight get ShutdownGrace to finish and
// the rest are cut off. It returns once every handler has returned, with
// nil after ctx ended, or the listener's error. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Anonymous() && !isLoopback(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("dicomweb: refusing to serve %s without authentication: anonymous access is allowed only on a loopback address; configure a token file or a client CA", ln.Addr())
	}
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		ln.Close()
		return errors.New("dicomweb: Serve called twice")
	}
	s.serving = true
	s.mu.Unlock()
	if s.tlsConf != nil {
		ln = tls.NewListener(ln, s.tlsConf)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.o.ReadHeaderTimeout,
		IdleTimeout:       s.o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(s.o.Log.With().Str("intake", "dicomweb").Logger(), "", 0),
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
		}
		sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(ln)
	close(done)
	<-stopped
	s.mu.Lock()
	s.closed = true
	for s.active > 0 {
		s.cond.Wait()
	}
	s.mu.Unlock()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("dicomweb: serve %s: %w", ln.Addr(), err)
}

func isLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// errTooLarge ends a request with 413.
var errTooLarge = errors.New("request or instance too large")

// ServeHTTP handles one request (Serve uses it; exported so that a test
// or an embedding server can mount it).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.cond.Broadcast()
		s.mu.Unlock()
	}()

	start := time.Now()
	status, user, results, bytes := s.handle(w, r)
	s.st.request(status)
	stored, failed := 0, map[string]int{}
	for _, res := range results {
		if res.reason == 0 {
			stored++
		} else {
			failed[fmt.Sprintf("%04X", res.reason)]++
		}
	}
	reasons := make([]string, 0, len(failed))
	for k, n := range failed {
		reasons = append(reasons, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(reasons)
	ev := s.o.Log.Info()
	if status >= 400 {
		ev = s.o.Log.Warn()
	}
	ev.Str("intake", "dicomweb").Str("client", r.RemoteAddr).Str("user", user).Int("status", status).
		Int("stored", stored).Int("failed", len(results)-stored).Str("failure_reasons", strings.Join(reasons, ",")).
		Int64("bytes", bytes).Int64("ms", time.Since(start).Milliseconds()).Msg("stow-rs request")
}

// handle answers a request and reports its outcome for the log.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) (status int, user string, results []result, bytes int64) {
	fail := func(code int, msg string) {
		status = code
		if code == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		http.Error(w, msg, code)
	}
	user, ok := s.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="triaged"`)
		fail(http.StatusUnauthorized, "a valid bearer token or client certificate is required")
		return
	}
	base := s.o.BasePath + "/studies"
	var study string
	switch p := r.URL.Path; {
	case p == base || p == base+"/":
	case strings.HasPrefix(p, base+"/"):
		study = strings.TrimSuffix(p[len(base)+1:], "/")
		if !validUID(study) {
			fail(http.StatusBadRequest, "the study in the URL is not a valid UID")
			return
		}
	default:
		fail(http.StatusNotFound, "not found: this service stores instances at "+base)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "only POST (STOW-RS) is served")
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "multipart/related") {
		fail(http.StatusUnsupportedMediaType, `Content-Type must be multipart/related; type="application/dicom"`)
		return
	}
	if t := params["type"]; t != "" && !strings.EqualFold(t, "application/dicom") {
		fail(http.StatusUnsupportedMediaType, `only type="application/dicom" is accepted (no metadata and bulk data)`)
		return
	}
	boundary := params["boundary"]
	if boundary == "" {
		fail(http.StatusBadRequest, "Content-Type has no boundary")
		return
	}
	if r.ContentLength > s.o.MaxRequestBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", s.o.MaxRequestBytes))
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "too many requests being received; retry later")
		return
	}

	body := &stallGuard{r: http.MaxBytesReader(w, r.Body, s.o.MaxRequestBytes), rc: http.NewResponseController(w), idle: s.o.BodyTimeout}
	body.extend()
	// Read the connection in large gulps (a tenth of the system calls of
	// 4 KiB reads for a 10 MB film); multipart.go says why not mime/multipart.
	mr, err := newMultipartReader(body, boundary, 256<<10)
	if err != nil {
		fail(http.StatusBadRequest, "Content-Type's boundary is empty or too long")
		return
	}
	wrongType := 0
	var tooLarge, malformed bool
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge = true
			} else {
				malformed = true
			}
			break
		}
		res, n, stop := s.storePart(part, study, user)
		bytes += n
		results = append(results, res)
		if res.wrongType {
			wrongType++
		}
		if errors.Is(stop, errTooLarge) {
			tooLarge = true
		}
		if stop != nil {
			break
		}
	}
	switch {
	case tooLarge:
		status = http.StatusRequestEntityTooLarge
		w.Header().Set("Connection", "close")
	case malformed && len(results) == 0:
		fail(http.StatusBadRequest, "the body is not a multipart/related message with that boundary")
		return
	default:
		status = responseStatus(results, wrongType)
	}
	writeJSON(w, status, results)
	return
}

// storePart receives one part. n is the part's size; stop ends the request (errTooLarge: 413;
// any other: the body cannot be read any further).
func (s *Server) storePart(part *mpart, study, user string) (res result, n int64, stop error) {
	mt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "application/dicom") {
		m := &meter{r: part, max: s.o.MaxInstanceBytes}
		_, err := io.Copy(io.Discard, m)
		res := result{reason: ReasonUnderstand, wrongType: true}
		s.st.part(res, m.n, 0)
		return res, m.n, m.stopErr(err)
	}
	m := &meter{r: part, max: s.o.MaxInstanceBytes}
	wr, cerr := s.o.Spool.Create("dicomweb", user)
	var bw *bufio.Writer
	t := &tee{r: m, w: io.Discard}
	if cerr == nil {
		// Spool writes of 256 KiB, not the multipart reader's 4 KiB reads.
		bw = bufio.NewWriterSize(wr, 256<<10)
		t.w = bw
	}
	inst, err := checkPart(t, defaultPartLimits)
	res.inst = inst
	abort := func(reason uint16) (result, int64, error) {
		if wr != nil {
			wr.Abort()
		}
		res.reason = reason
		// Read the rest of the part (not stored) to reach the next one.
		_, derr := io.Copy(io.Discard, m)
		s.st.part(res, m.n, 0)
		return res, m.n, m.stopErr(derr)
	}
	switch {
	case m.over || errors.Is(t.werr, spool.ErrTooLarge):
		if wr != nil {
			wr.Abort()
		}
		res.reason = ReasonResources
		s.st.part(res, m.n, 0)
		return res, m.n, errTooLarge
	case t.werr != nil:
		if spool.IsResource(t.werr) {
			return abort(ReasonResources)
		}
		s.o.Log.Error().Str("intake", "dicomweb").Err(t.werr).Msg("stow-rs: writing an instance to the spool failed")
		return abort(ReasonProcessing)
	case isTransport(err):
		// The body cannot be read further (cut connection, malformed
		// multipart, stalled sender): this part is incomplete.
		if wr != nil {
			wr.Abort()
		}
		res.reason = ReasonUnderstand
		s.st.part(res, m.n, 0)
		return res, m.n, m.stopErr(err)
	case err != nil:
		return abort(ReasonUnderstand)
	case cerr != nil:
		if spool.IsResource(cerr) {
			return abort(ReasonResources)
		}
		s.o.Log.Error().Str("intake", "dicomweb").Err(cerr).Msg("stow-rs: creating a spool file failed")
		return abort(ReasonProcessing)
	case study != "" && inst.StudyInstanceUID != study:
		return abort(ReasonMismatch)
	case s.o.AcceptSOPClass != nil && !s.o.AcceptSOPClass(inst.SOPClassUID):
		return abort(ReasonSOPClass)
	}
	if err := bw.Flush(); err != nil {
		if spool.IsResource(err) {
			return abort(ReasonResources)
		}
		return abort(ReasonProcessing)
	}
	if _, err := wr.Commit(); err != nil {
		wr = nil // Commit removed it
		if spool.IsResource(err) {
			return abort(ReasonResources)
		}
		s.o.Log.Error().Str("intake", "dicomweb").Err(err).Msg("stow-rs: committing an instance to the spool failed")
		return abort(ReasonProcessing)
	}
	s.st.part(res, m.n, time.Since(m.first))
	return res, m.n, nil
}

// meter counts a part's bytes, notes its first byte, refuses it past the
// instance limit, and marks the reader's errors as the transport's.
type meter struct {
	r     io.Reader
	n     int64
	max   int64
	first time.Time
	over  bool
}

func (m *meter) Read(p []byte) (int, error) {
	if m.over {
		return 0, &transportError{errTooLarge}
	}
	k, err := m.r.Read(p)
	if k > 0 && m.n == 0 {
		m.first = time.Now()
	}
	m.n += int64(k)
	if m.n > m.max {
		m.over = true
		return k, &transportError{errTooLarge}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = &transportError{err}
	}
	return k, err
}

// stopErr says whether an error reading the part ends the request.
func (m *meter) stopErr(err error) error {
	if m.over {
		return errTooLarge
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return err
}

// tee writes what it reads to w; a write error stops the read and is kept
// apart from the reader's errors.
type tee struct {
	r    io.Reader
	w    io.Writer
	werr error
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && t.werr == nil {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.werr = werr
			return n, &transportError{werr}
		}
	}
	return n, err
}

// stallGuard moves the connection's read deadline forward while a body
// makes progress, so a sender may take as long as its films need but not
// stall for more than idle.
type stallGuard struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	last time.Time
}

func (g *stallGuard) extend() {
	g.last = time.Now()
	_ = g.rc.SetReadDeadline(g.last.Add(g.idle))
}

func (g *stallGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if n > 0 && time.Since(g.last) > g.idle/8 {
		g.extend()
	}
	return n, err
}
