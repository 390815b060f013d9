package dimse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ImplementationClassUID identifies this implementation in associations
// and file meta (a UUID-derived UID, PS3.5 B.2: no registration needed).
const ImplementationClassUID = "2.25.20366578370210861715348063958378646286"

// ImplementationVersion is the implementation version name (16 chars max).
const ImplementationVersion = "TRIAGED_DIMSE_1"

// VerificationSOPClass is the Verification (C-ECHO) SOP class.
const VerificationSOPClass = "1.2.840.10008.1.1"

// Limits bound what one association may cost. Zero fields take defaults.
type Limits struct {
	// MaxPDULength is the largest P-DATA-TF PDU we receive (advertised to
	// the peer); a PDU claiming more gets an A-ABORT. Default 256 KiB.
	MaxPDULength uint32
	// MaxSendPDU caps the PDUs we send even if the peer takes larger
	// (a peer's 0 means unlimited). Default 1 MiB.
	MaxSendPDU uint32
	// MaxDataSetBytes bounds one data set; beyond it the association is
	// aborted. Default 2 GiB.
	MaxDataSetBytes int64
	// MaxFragments bounds the PDVs of one data set (a flood of tiny
	// fragments costs CPU without progress). Default 262144.
	MaxFragments int
	// ARTIM bounds the wait for an A-ASSOCIATE-RQ after connecting, and for
	// the peer to close after a rejection or release. Default 30s.
	ARTIM time.Duration
	// IdleTimeout bounds the wait for the next PDU of an established
	// association (and for a response, as an SCU). Default 60s.
	IdleTimeout time.Duration
}

// WithDefaults fills zero fields.
func (l Limits) WithDefaults() Limits {
	if l.MaxPDULength == 0 {
		l.MaxPDULength = 256 << 10
	}
	if l.MaxSendPDU == 0 {
		l.MaxSendPDU = 1 << 20
	}
	if l.MaxDataSetBytes == 0 {
		l.MaxDataSetBytes = 2 << 30
	}
	if l.MaxFragments == 0 {
		l.MaxFragments = 1 << 18
	}
	if l.ARTIM == 0 {
		l.ARTIM = 30 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 60 * time.Second
	}
	return l
}

// ErrReleased is returned by ReadMessage when the peer asked to release
// the association (and the release was answered).
var ErrReleased = errors.New("dimse: association released by the peer")

// ProtocolError is a violation by the peer; the association is aborted
// with the given reason.
type ProtocolError struct {
	Reason byte
	Err    error
}

func (e *ProtocolError) Error() string { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

func protoErr(reason byte, format string, args ...any) error {
	return &ProtocolError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Assoc is an established association, either side.
type Assoc struct {
	conn net.Conn
	r    *bufio.Reader
	lim  Limits
	// RQ is the association request (received as SCP, sent as SCU).
	RQ *AssociateRQ
	// Peer's answer as seen by an SCU; the accepted contexts by ID.
	ctxs    map[byte]PresentationContext
	peerMax uint32

	buf  []byte // current P-DATA-TF PDU
	rest []byte // its PDVs not yet consumed
	data *DataReader
	// stop ends the watch of ctx on the connection.
	stop func() bool
	ctx  context.Context

	mu       sync.Mutex
	closed   bool
	bytesIn  int64
	bytesOut int64
	msgID    uint16
}

func newAssoc(ctx context.Context, conn net.Conn, lim Limits) *Assoc {
	a := &Assoc{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), lim: lim, ctxs: map[byte]PresentationContext{}, ctx: ctx}
	// Cancelling ctx unblocks a read or write in progress; the caller then
	// aborts the association.
	a.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return a
}

// Conn is the underlying connection.
func (a *Assoc) Conn() net.Conn { return a.conn }

// Contexts returns the accepted presentation contexts.
func (a *Assoc) Contexts() []PresentationContext {
	out := make([]PresentationContext, 0, len(a.ctxs))
	for _, pc := range a.ctxs {
		out = append(out, pc)
	}
	return out
}

// Context returns an accepted presentation context by ID.
func (a *Assoc) Context(id byte) (PresentationContext, bool) {
	pc, ok := a.ctxs[id]
	return pc, ok
}

// BytesIn is the number of bytes received on the association so far.
func (a *Assoc) BytesIn() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytesIn
}

// setReadDeadline arms the idle timer; a cancelled ctx wins over it.
func (a *Assoc) setReadDeadline(d time.Duration) error {
	_ = a.conn.SetReadDeadline(time.Now().Add(d))
	if err := a.ctx.Err(); err != nil {
		return err
	}
	return nil
}

// readPDU reads the next PDU with the idle timeout.
func (a *Assoc) readPDU(max uint32) (byte, []byte, error) {
	if err := a.setReadDeadline(a.lim.IdleTimeout); err != nil {
		return 0, nil, err
	}
	typ, body, err := ReadPDU(a.r, max, a.buf)
	if err != nil {
		if errors.Is(err, ErrPDUTooLarge) {
			return typ, nil, &ProtocolError{Reason: AbortInvalidParam, Err: err}
		}
		if errors.Is(err, errMalformed) {
			return typ, nil, &ProtocolError{Reason: AbortUnrecognizedPDU, Err: err}
		}
		return typ, nil, err
	}
	if cap(body) > cap(a.buf) {
		a.buf = body[:0]
	}
	a.mu.Lock()
	a.bytesIn += int64(len(body)) + 6
	a.mu.Unlock()
	return typ, body, nil
}

// nextPDV returns the next PDV, reading P-DATA-TF PDUs as needed. The
// peer's A-RELEASE-RQ is answered and reported as ErrReleased; its A-ABORT
// as AbortError.
func (a *Assoc) nextPDV() (PDV, error) {
	for len(a.rest) == 0 {
		typ, body, err := a.readPDU(a.lim.MaxPDULength)
		if err != nil {
			return PDV{}, err
		}
		switch typ {
		case pduPData:
			if len(body) == 0 {
				return PDV{}, protoErr(AbortInvalidParam, "dimse: empty P-DATA-TF PDU")
			}
			a.rest = body
		case pduReleaseRQ:
			if a.data != nil && !a.data.done {
				return PDV{}, protoErr(AbortUnexpectedPDU, "dimse: A-RELEASE-RQ in the middle of a data set")
			}
			_ = a.write(encodeRelease(pduReleaseRP))
			return PDV{}, ErrReleased
		case pduAbort:
			ae := AbortError{}
			if len(body) >= 4 {
				ae.Source, ae.Reason = body[2], body[3]
			}
			return PDV{}, ae
		default:
			return PDV{}, protoErr(AbortUnexpectedPDU, "dimse: unexpected PDU type 0x%02x on an established association", typ)
		}
	}
	pdv, rest, err := NextPDV(a.rest)
	if err != nil {
		return PDV{}, &ProtocolError{Reason: AbortInvalidParam, Err: err}
	}
	a.rest = rest
	if _, ok := a.ctxs[pdv.Context]; !ok {
		return PDV{}, protoErr(AbortInvalidParam, "dimse: PDV on presentation context %d, which was not accepted", pdv.Context)
	}
	return pdv, nil
}

// Message is one DIMSE message: its command, and its data set streamed as
// it arrives (nil when the command has none).
type Message struct {
	Context byte
	Command *Command
	Data    *DataReader
}

// maxCommandFragments bounds the PDVs of one command set.
const maxCommandFragments = 256

// ReadMessage reads the next command. The previous message's data set, if
// not read to its end, is read and discarded first.
func (a *Assoc) ReadMessage() (*Message, error) {
	if a.data != nil && !a.data.done {
		if _, err := io.Copy(io.Discard, a.data); err != nil {
			return nil, err
		}
	}
	a.data = nil
	var cmd []byte
	var ctx byte
	for frags := 0; ; frags++ {
		pdv, err := a.nextPDV()
		if err != nil {
			return nil, err
		}
		if !pdv.Command {
			return nil, protoErr(AbortUnexpectedParam, "dimse: data set fragment where a command was expected")
		}
		if frags > 0 && pdv.Context != ctx {
			return nil, protoErr(AbortInvalidParam, "dimse: command fragments on presentation contexts %d and %d", ctx, pdv.Context)
		}
		ctx = pdv.Context
		if len(cmd)+len(pdv.Data) > MaxCommandSize || frags >= maxCommandFragments {
			return nil, protoErr(AbortInvalidParam, "dimse: command set beyond %d bytes or %d fragments", MaxCommandSize, maxCommandFragments)
		}
		cmd = append(cmd, pdv.Data...)
		if pdv.Last {
			break
		}
	}
	c, err := DecodeCommand(cmd)
	if err != nil {
		return nil, &ProtocolError{Reason: AbortInvalidParam, Err: err}
	}
	m := &Message{Context: ctx, Command: c}
	if c.HasDataSet() {
		a.data = &DataReader{a: a, ctx: ctx}
		m.Data = a.data
	}
	return m, nil
}

// DataReader streams a data set from its P-DATA fragments; only the
// current PDU is ever held.
type DataReader struct {
	a     *Assoc
	ctx   byte
	cur   []byte
	last  bool
	done  bool
	n     int64
	frags int
	err   error
}

// Read implements io.Reader; io.EOF after the last fragment.
func (d *DataReader) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.last {
			d.done = true
			return 0, io.EOF
		}
		pdv, err := d.a.nextPDV()
		if err == nil {
			switch {
			case pdv.Command:
				err = protoErr(AbortUnexpectedParam, "dimse: command fragment inside a data set")
			case pdv.Context != d.ctx:
				err = protoErr(AbortInvalidParam, "dimse: data set fragments on presentation contexts %d and %d", d.ctx, pdv.Context)
			}
		}
		if err == nil {
			d.frags++
			d.n += int64(len(pdv.Data))
			if d.frags > d.a.lim.MaxFragments {
				err = protoErr(AbortInvalidParam, "dimse: data set in more than %d fragments", d.a.lim.MaxFragments)
			} else if d.n > d.a.lim.MaxDataSetBytes {
				err = protoErr(AbortInvalidParam, "dimse: data set larger than %d bytes", d.a.lim.MaxDataSetBytes)
			}
		}
		if err != nil {
			if errors.Is(err, ErrReleased) {
				err = protoErr(AbortUnexpectedPDU, "dimse: A-RELEASE-RQ in the middle of a data set")
			}
			d.err = err
			return 0, err
		}
		d.cur, d.last = pdv.Data, pdv.Last
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}

// Err is the error that ended the data set early (nil if it was complete
// or is still being read).
func (d *DataReader) Err() error { return d.err }

// Size is the number of data set bytes received so far.
func (d *DataReader) Size() int64 { return d.n }

func (a *Assoc) write(b ...[]byte) error {
	_ = a.conn.SetWriteDeadline(time.Now().Add(a.lim.IdleTimeout))
	if err := a.ctx.Err(); err != nil {
		return err
	}
	bufs := net.Buffers(b)
	n, err := bufs.WriteTo(a.conn)
	a.mu.Lock()
	a.bytesOut += n
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("dimse: write to %s: %w", a.conn.RemoteAddr(), err)
	}
	return nil
}

// maxPDVData is the most data one PDV we send may carry.
func (a *Assoc) maxPDVData() int {
	max := a.lim.MaxSendPDU
	if a.peerMax != 0 && a.peerMax < max {
		max = a.peerMax
	}
	if max < 512 {
		// Fragments of a few bytes would multiply PDUs for no one's good;
		// no real peer asks for less than 4 KiB.
		max = 512
	}
	return int(max) - 6
}

// SendMessage sends a command and, if data is not nil, its data set read
// to EOF, fragmented to the peer's maximum PDU length.
func (a *Assoc) SendMessage(ctx byte, cmd *Command, data io.Reader) error {
	if data != nil {
		if cmd.DataSetType == NoDataSet || cmd.DataSetType == 0 {
			cmd.DataSetType = 0x0000
		}
	} else {
		cmd.DataSetType = NoDataSet
	}
	max := a.maxPDVData()
	c := cmd.Encode()
	for len(c) > 0 {
		n := min(len(c), max)
		if err := a.write(appendPDataHeader(nil, ctx, true, n == len(c), n), c[:n]); err != nil {
			return err
		}
		c = c[n:]
	}
	if data == nil {
		return nil
	}
	// Two buffers: the next chunk is read before the current one is sent,
	// so the last fragment is known without copying through a bufio.
	cur, next := make([]byte, max), make([]byte, max)
	n, err := io.ReadFull(data, cur)
	for {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("dimse: read data set to send: %w", err)
		}
		last := err != nil
		var m int
		var nerr error
		if !last {
			m, nerr = io.ReadFull(data, next)
			if nerr == io.EOF {
				last = true
			}
		}
		if err := a.write(appendPDataHeader(nil, ctx, false, last, n), cur[:n]); err != nil {
			return err
		}
		if last {
			return nil
		}
		cur, next, n, err = next, cur, m, nerr
	}
}

// Abort sends an A-ABORT (best effort) and closes the connection.
func (a *Assoc) Abort(source, reason byte) {
	_ = a.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = a.conn.Write(EncodeAbort(source, reason))
	a.Close()
}

// Close closes the connection without any PDU.
func (a *Assoc) Close() {
	a.mu.Lock()
	done := a.closed
	a.closed = true
	a.mu.Unlock()
	if done {
		return
	}
	a.stop()
	_ = a.conn.Close()
}

// waitClose waits up to ARTIM for the peer to close, or until ctx ends,
// then closes the connection.
func (a *Assoc) waitClose() {
	_ = a.conn.SetReadDeadline(time.Now().Add(a.lim.ARTIM))
	if a.ctx.Err() == nil {
		_, _ = io.CopyN(io.Discard, a.conn, 1<<16)
	}
	a.Close()
}

// waitClose waits up to d for the peer to close the connection (ARTIM
// after a release or rejection), then closes it.
func waitClose(conn net.Conn, d time.Duration) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, _ = io.CopyN(io.Discard, conn, 1<<16)
	_ = conn.Close()
}
