// Package dimse is the DICOM C-STORE intake: a storage SCP that writes each
// received film as a DICOM Part 10 file into a drop folder through
// ingest/spool, and answers Success only once the film is fsynced and its
// directory entry too. From there the drop folder takes it (claim, score,
// result, acknowledge), so a film a sender was told is stored survives a
// crash the next instant.
//
// Use:
//
//	sp, _ := spool.Open(dir, spool.Options{MinFreeBytes: ..., MaxFileSize: ...})
//	srv, err := dimse.New(dimse.Options{AETitle: "TRIAGED", Spool: sp, Log: log})
//	ln, _ := net.Listen("tcp", "127.0.0.1:11112")
//	err = srv.Serve(ctx, ln) // returns once ctx ends and every association is closed
//
// or provision.DIMSE for the config section ingest.dimse. Stats returns
// counters for metrics. Associations: called AE title checked, calling AE
// titles (and their source addresses) against an allow-list, optional TLS,
// a bound on associations at once and on bytes received but not yet
// durable. Presentation contexts are accepted one by one: a storage SOP
// class we do not take, or a transfer syntax the decoder cannot read, is
// refused in its context, never by dropping the association. Every
// association is logged (calling/called AE, peer address, instances, bytes,
// outcome); no patient data is ever logged. docs/conformance.md is the
// conformance statement.
package dimse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/decode"
	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
)

// Storage SOP classes a chest film arrives as.
const (
	SOPClassCR               = "1.2.840.10008.5.1.4.1.1.1"
	SOPClassDXPresentation   = "1.2.840.10008.5.1.4.1.1.1.1"
	SOPClassDXProcessing     = "1.2.840.10008.5.1.4.1.1.1.1.1"
	SOPClassSecondaryCapture = "1.2.840.10008.5.1.4.1.1.7"
)

// DefaultSOPClasses are the storage SOP classes accepted by default.
var DefaultSOPClasses = []string{SOPClassCR, SOPClassDXPresentation, SOPClassDXProcessing, SOPClassSecondaryCapture}

// verificationSyntaxes are accepted for C-ECHO (no data set is sent).
var verificationSyntaxes = []string{"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}

// Caller is one allowed calling AE title, optionally only from some
// source addresses.
type Caller struct {
	AETitle   string
	Addresses []netip.Prefix
}

// Options configure the SCP. Spool is required.
type Options struct {
	// AETitle is the called AE title we answer to ("" accepts any).
	AETitle string
	Spool   *spool.Spool
	// AllowedCallers: empty lets any calling AE title in.
	AllowedCallers []Caller
	// SOPClasses accepted for storage (default DefaultSOPClasses).
	SOPClasses []string
	// TransferSyntaxes accepted for storage, default the decoder's
	// supported set (decode.SupportedTransferSyntaxes).
	TransferSyntaxes []string
	// TLS, when set, makes the listener DICOM TLS; set ClientAuth and
	// ClientCAs in it to verify callers' certificates.
	TLS *tls.Config
	// MaxAssociations at once (default 32); beyond, A-ASSOCIATE-RJ
	// transient "local limit exceeded".
	MaxAssociations int
	// MaxBytesInFlight: data set bytes received and not yet durable,
	// across associations (default 2 GiB); past it, A700.
	MaxBytesInFlight int64
	Limits           ul.Limits
	Log              zerolog.Logger
	// OnInstance, if set, is called after each C-STORE is answered (for
	// error events: Status C000 means the data set could not be parsed).
	OnInstance func(Instance)
}

// Instance is the outcome of one C-STORE, without patient data.
type Instance struct {
	CallingAE string
	Peer      string
	Status    uint16
	// Reason explains a failure status.
	Reason string
	// Path of the committed film (Success only).
	Path  string
	Bytes int64
	// Durable is the time from the C-STORE request to the fsynced film.
	Durable time.Duration
}

// Server is the storage SCP.
type Server struct {
	o        Options
	classes  map[string]bool
	syntaxes []string
	inflight atomic.Int64
	stats    stats
}

// New checks the options and fills defaults.
func New(o Options) (*Server, error) {
	if o.Spool == nil {
		return nil, errors.New("ingest/dimse: Options.Spool is required")
	}
	if len(o.SOPClasses) == 0 {
		o.SOPClasses = DefaultSOPClasses
	}
	if len(o.TransferSyntaxes) == 0 {
		o.TransferSyntaxes = decode.SupportedTransferSyntaxes()
	}
	if o.MaxAssociations <= 0 {
		o.MaxAssociations = 32
	}
	if o.MaxBytesInFlight <= 0 {
		o.MaxBytesInFlight = 2 << 30
	}
	o.Limits = o.Limits.WithDefaults()
	s := &Server{o: o, classes: map[string]bool{}, syntaxes: o.TransferSyntaxes}
	for _, c := range o.SOPClasses {
		s.classes[c] = true
	}
	s.stats.init()
	return s, nil
}

// Serve accepts associations on ln until ctx ends, then closes ln, aborts
// the associations still open (a film not yet durable was never reported
// stored) and returns once every one has finished.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.o.TLS != nil {
		ln = tls.NewListener(ln, s.o.TLS)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	active := make(chan struct{}, s.o.MaxAssociations)
	refusing := make(chan struct{}, s.o.MaxAssociations)
	s.o.Log.Info().Str("listen", ln.Addr().String()).Str("ae_title", s.o.AETitle).Bool("tls", s.o.TLS != nil).
		Str("spool", s.o.Spool.Dir()).Msg("DICOM storage SCP listening")
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("ingest/dimse: accept on %s: %w", ln.Addr(), err)
		}
		select {
		case active <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-active }()
				s.handle(ctx, conn)
			}()
		default:
			select {
			case refusing <- struct{}{}:
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-refusing }()
					stop := context.AfterFunc(ctx, func() { conn.Close() })
					defer stop()
					ul.Refuse(conn, ul.RJ{Result: ul.RJTransient, Source: ul.RJSourcePresentn, Reason: ul.RJPresentnLocalLimit}, min(s.o.Limits.ARTIM, 5*time.Second))
				}()
			default:
				conn.Close()
			}
			s.stats.association("rejected_busy")
			s.o.Log.Warn().Str("peer", conn.RemoteAddr().String()).Int("max_associations", s.o.MaxAssociations).
				Msg("DICOM association rejected: too many at once")
		}
	}
}

// check applies the calling AE allow-list.
func (s *Server) check(rq *ul.AssociateRQ, peer net.Addr) *ul.RJ {
	if len(s.o.AllowedCallers) == 0 {
		return nil
	}
	var ip netip.Addr
	if ta, ok := peer.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
		ip = ip.Unmap()
	}
	for _, c := range s.o.AllowedCallers {
		if c.AETitle != rq.CallingAE {
			continue
		}
		if len(c.Addresses) == 0 {
			return nil
		}
		for _, p := range c.Addresses {
			if ip.IsValid() && p.Contains(ip) {
				return nil
			}
		}
	}
	return &ul.RJ{Result: ul.RJPermanent, Source: ul.RJSourceUser, Reason: ul.RJCallingAENotKnown}
}

func (s *Server) transferSyntaxes(abstract string) []string {
	if abstract == ul.VerificationSOPClass {
		return verificationSyntaxes
	}
	if s.classes[abstract] {
		return s.syntaxes
	}
	return nil
}

// association is what one association did, for its log line.
type association struct {
	s         *Server
	callingAE string
	peer      string
	instances int
	stored    int
	failed    int
}

func (s *Server) handle(ctx context.Context, conn net.Conn) {
	start := time.Now()
	peer := conn.RemoteAddr().String()
	a, err := ul.Accept(ctx, conn, &ul.AcceptPolicy{
		AETitle: s.o.AETitle, Check: s.check, TransferSyntaxes: s.transferSyntaxes, Limits: s.o.Limits,
	})
	if err != nil {
		outcome := "failed"
		var rj ul.RJ
		switch {
		case errors.As(err, &rj) && rj.Reason == ul.RJCalledAENotKnown && rj.Source == ul.RJSourceUser:
			outcome = "rejected_called_ae"
		case errors.As(err, &rj) && rj.Reason == ul.RJCallingAENotKnown && rj.Source == ul.RJSourceUser:
			outcome = "rejected_calling_ae"
		case errors.As(err, &rj):
			outcome = "rejected_other"
		case ctx.Err() != nil:
			outcome = "aborted_shutdown"
		}
		s.stats.association(outcome)
		s.o.Log.Warn().Str("peer", peer).Str("outcome", outcome).Err(err).Msg("DICOM association not established")
		return
	}
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	st := &association{s: s, callingAE: a.RQ.CallingAE, peer: peer}
	accepted, refused := 0, 0
	for _, pc := range a.RQ.Contexts {
		if _, ok := a.Context(pc.ID); ok {
			accepted++
		} else {
			refused++
		}
	}
	err = a.Serve(st)
	var pe *ul.ProtocolError
	var ae ul.AbortError
	var ne net.Error
	outcome := "released"
	switch {
	case err == nil:
	case ctx.Err() != nil:
		outcome = "aborted_shutdown"
	case errors.As(err, &ae):
		outcome = "aborted_by_peer"
	case errors.As(err, &pe):
		outcome = "aborted_protocol"
	case errors.As(err, &ne) && ne.Timeout():
		outcome = "aborted_idle"
	default:
		outcome = "failed"
	}
	s.stats.association(outcome)
	ev := s.o.Log.Info()
	if err != nil {
		ev = s.o.Log.Warn().Err(err)
	}
	ev.Str("calling_ae", a.RQ.CallingAE).Str("called_ae", a.RQ.CalledAE).Str("peer", peer).
		Str("impl_version", a.RQ.ImplVersion).Int("contexts_accepted", accepted).Int("contexts_refused", refused).
		Int("instances", st.instances).Int("stored", st.stored).Int("failed", st.failed).
		Int64("bytes", a.BytesIn()).Dur("duration", time.Since(start)).Str("outcome", outcome).
		Msg("DICOM association ended")
}

// countingWriter writes to the spool and keeps the bytes in flight.
type countingWriter struct {
	s   *Server
	w   *spool.Writer
	n   int64
	err error
}

var errInFlight = errors.New("ingest/dimse: bytes received and not yet durable exceed max_bytes_in_flight")

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.s.inflight.Add(int64(len(p))) > c.s.o.MaxBytesInFlight {
		c.s.inflight.Add(-int64(len(p)))
		c.err = errInFlight
		return 0, c.err
	}
	c.n += int64(len(p))
	n, err := c.w.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// Store receives one instance: file meta, then the data set streamed into
// the spool while its structure is checked, then Commit. Success only
// after Commit returned nil.
func (st *association) Store(ctx context.Context, req *ul.StoreRequest, data io.Reader) ul.Response {
	s := st.s
	start := time.Now()
	st.instances++
	in := Instance{CallingAE: st.callingAE, Peer: st.peer}
	finish := func(status uint16, reason string) ul.Response {
		in.Status, in.Reason = status, reason
		key := statusKey(status)
		s.stats.instance(key)
		if status == ul.StatusSuccess {
			st.stored++
			in.Durable = time.Since(start)
			s.stats.durable(in.Durable)
		} else {
			st.failed++
			s.o.Log.Warn().Str("calling_ae", st.callingAE).Str("peer", st.peer).Str("status", fmt.Sprintf("%04X", status)).
				Str("reason", reason).Msg("DICOM C-STORE refused")
		}
		if s.o.OnInstance != nil {
			s.o.OnInstance(in)
		}
		return ul.Response{Status: status, Comment: reason}
	}
	if s.inflight.Load() >= s.o.MaxBytesInFlight {
		return finish(ul.StatusOutOfResources, "out of resources: too many bytes being received")
	}
	w, err := s.o.Spool.Create("dimse", st.callingAE)
	if err != nil {
		return finish(ul.StatusOutOfResources, resourceReason(err))
	}
	cw := &countingWriter{s: s, w: w}
	defer func() { s.inflight.Add(-cw.n) }()
	if _, err := cw.Write(ul.EncodeFileMeta(ul.FileMeta{SOPClass: req.SOPClass, SOPInstance: req.SOPInstance, TransferSyntax: req.TransferSyntax, SourceAE: st.callingAE})); err != nil {
		w.Abort()
		return finish(ul.StatusOutOfResources, resourceReason(err))
	}
	info, err := ul.CheckDataSet(io.TeeReader(data, cw), req.TransferSyntax, ul.DataSetLimits{})
	in.Bytes = cw.n
	s.stats.bytes.Add(uint64(cw.n))
	switch {
	case cw.err != nil:
		w.Abort()
		return finish(ul.StatusOutOfResources, resourceReason(cw.err))
	case err != nil && !errors.Is(err, ul.ErrDataSet):
		// The association is failing (abort, limit, timeout): nothing is
		// answered; the sender sees the abort.
		w.Abort()
		return finish(ul.StatusProcessingFailure, "association failed while receiving")
	case err != nil:
		w.Abort()
		return finish(ul.StatusCannotUnderstand, "cannot understand: "+trimReason(err))
	case info.SOPClass != "" && info.SOPClass != req.SOPClass:
		w.Abort()
		return finish(ul.StatusDataSetMismatch, "data set SOP Class UID differs from the request")
	case info.SOPInstance != "" && info.SOPInstance != req.SOPInstance:
		w.Abort()
		return finish(ul.StatusDataSetMismatch, "data set SOP Instance UID differs from the request")
	}
	path, err := w.Commit()
	if err != nil {
		return finish(ul.StatusOutOfResources, resourceReason(err))
	}
	in.Path = path
	s.o.Log.Debug().Str("calling_ae", st.callingAE).Str("file", baseName(path)).Int64("bytes", cw.n).
		Dur("durable", time.Since(start)).Msg("DICOM instance stored")
	return finish(ul.StatusSuccess, "")
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if os.IsPathSeparator(p[i]) {
			return p[i+1:]
		}
	}
	return p
}

// resourceReason is the error comment for an A700: short, no paths.
func resourceReason(err error) string {
	switch {
	case errors.Is(err, spool.ErrNoSpace):
		return "out of resources: disk space"
	case errors.Is(err, spool.ErrTooLarge):
		return "out of resources: instance too large"
	case errors.Is(err, spool.ErrBusy):
		return "out of resources: too many instances at once"
	case errors.Is(err, errInFlight):
		return "out of resources: too many bytes being received"
	}
	return "out of resources: storage failed"
}

func trimReason(err error) string {
	s := err.Error()
	if len(s) > 50 {
		s = s[:50]
	}
	return s
}

func statusKey(s uint16) string {
	switch {
	case s == ul.StatusSuccess:
		return "success"
	case s == ul.StatusOutOfResources:
		return "out_of_resources"
	case s == ul.StatusDataSetMismatch:
		return "data_set_mismatch"
	case s&0xF000 == 0xC000:
		return "cannot_understand"
	case s == ul.StatusSOPClassNotSupport:
		return "sop_class_not_supported"
	}
	return "failed"
}
