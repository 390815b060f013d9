package dimse

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// SCUOptions configure an outgoing association.
type SCUOptions struct {
	CallingAE, CalledAE string
	// Contexts to propose: abstract syntax and transfer syntaxes in order
	// of preference. IDs are assigned here.
	Contexts []PresentationContext
	// TLS, when set, wraps the connection (DICOM TLS).
	TLS    *tls.Config
	Limits Limits
}

// Dial connects to addr and negotiates an association as requestor. An
// association the peer rejected returns its RJ as the error.
func Dial(ctx context.Context, addr string, o SCUOptions) (*Assoc, error) {
	lim := o.Limits.WithDefaults()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, lim.ARTIM)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dimse: connect to %s: %w", addr, err)
	}
	if o.TLS != nil {
		tc := tls.Client(conn, o.TLS)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("dimse: TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	return Associate(ctx, conn, o)
}

// Associate negotiates an association as requestor over conn.
func Associate(ctx context.Context, conn net.Conn, o SCUOptions) (*Assoc, error) {
	lim := o.Limits.WithDefaults()
	a := newAssoc(ctx, conn, lim)
	rq := &AssociateRQ{
		CalledAE: o.CalledAE, CallingAE: o.CallingAE, AppContext: ApplicationContext,
		MaxPDULength: lim.MaxPDULength, ImplClassUID: ImplementationClassUID, ImplVersion: ImplementationVersion,
	}
	if len(o.Contexts) > maxContexts {
		a.Close()
		return nil, fmt.Errorf("dimse: %d presentation contexts proposed, at most %d", len(o.Contexts), maxContexts)
	}
	for i, pc := range o.Contexts {
		pc.ID = byte(2*i + 1)
		rq.Contexts = append(rq.Contexts, pc)
	}
	a.RQ = rq
	if err := a.write(EncodeAssociate(rq, false)); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.setReadDeadline(lim.ARTIM); err != nil {
		a.Close()
		return nil, err
	}
	typ, body, err := ReadPDU(a.r, maxAssociatePDU, nil)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("dimse: read the answer to A-ASSOCIATE-RQ from %s: %w", conn.RemoteAddr(), err)
	}
	switch typ {
	case pduAssociateAC:
	case pduAssociateRJ:
		a.Close()
		if len(body) < 4 {
			return nil, fmt.Errorf("dimse: %s: short A-ASSOCIATE-RJ", conn.RemoteAddr())
		}
		return nil, RJ{Result: body[1], Source: body[2], Reason: body[3]}
	case pduAbort:
		a.Close()
		return nil, AbortError{}
	default:
		a.Abort(AbortSourceUser, AbortUnexpectedPDU)
		return nil, fmt.Errorf("dimse: %s answered A-ASSOCIATE-RQ with PDU type 0x%02x", conn.RemoteAddr(), typ)
	}
	acc, err := DecodeAssociate(body, true)
	if err != nil {
		a.Abort(AbortSourceUser, AbortInvalidParam)
		return nil, fmt.Errorf("dimse: A-ASSOCIATE-AC from %s: %w", conn.RemoteAddr(), err)
	}
	a.peerMax = acc.MaxPDULength
	for _, pc := range acc.Contexts {
		if pc.Result != PCAccepted || len(pc.Transfer) != 1 {
			continue
		}
		for _, p := range rq.Contexts {
			if p.ID == pc.ID {
				a.ctxs[pc.ID] = PresentationContext{ID: pc.ID, Abstract: p.Abstract, Transfer: pc.Transfer, Result: PCAccepted}
			}
		}
	}
	return a, nil
}

// ErrNoContext: no accepted presentation context fits the request.
var ErrNoContext = errors.New("dimse: no accepted presentation context for this SOP class and transfer syntax")

// FindContext returns an accepted context for the abstract syntax, with
// transfer syntax ts (any if ts is "").
func (a *Assoc) FindContext(abstract, ts string) (PresentationContext, bool) {
	var best PresentationContext
	found := false
	for _, pc := range a.ctxs {
		if pc.Abstract == abstract && (ts == "" || pc.Transfer[0] == ts) && (!found || pc.ID < best.ID) {
			best, found = pc, true
		}
	}
	return best, found
}

// request sends one request and waits for its response.
func (a *Assoc) request(pcid byte, cmd *Command, data io.Reader) (*Command, error) {
	a.msgID++
	cmd.MessageID = a.msgID
	if err := a.SendMessage(pcid, cmd, data); err != nil {
		a.Close()
		return nil, err
	}
	m, err := a.ReadMessage()
	if err != nil {
		var pe *ProtocolError
		if errors.As(err, &pe) {
			a.Abort(AbortSourceUser, pe.Reason)
		} else {
			a.Close()
		}
		return nil, fmt.Errorf("dimse: wait for the response to message %d: %w", cmd.MessageID, err)
	}
	rsp := m.Command
	if rsp.Field != cmd.Field|0x8000 || rsp.RespondedTo != cmd.MessageID || m.Data != nil {
		a.Abort(AbortSourceUser, AbortUnexpectedParam)
		return nil, fmt.Errorf("dimse: response 0x%04x to message %d does not answer request 0x%04x message %d", rsp.Field, rsp.RespondedTo, cmd.Field, cmd.MessageID)
	}
	return rsp, nil
}

// Echo sends a C-ECHO and checks its status.
func (a *Assoc) Echo() error {
	pc, ok := a.FindContext(VerificationSOPClass, "")
	if !ok {
		return fmt.Errorf("%w (Verification)", ErrNoContext)
	}
	rsp, err := a.request(pc.ID, &Command{Field: CEchoRQ, AffectedClass: VerificationSOPClass}, nil)
	if err != nil {
		return err
	}
	if rsp.Status != StatusSuccess {
		return fmt.Errorf("dimse: C-ECHO status 0x%04x", rsp.Status)
	}
	return nil
}

// Store sends one C-STORE: data is the data set (no file meta) encoded in
// transfer syntax ts. It returns the peer's status; an error means the
// association is gone and the instance's fate is unknown.
func (a *Assoc) Store(sopClass, sopInstance, ts string, data io.Reader) (Response, error) {
	pc, ok := a.FindContext(sopClass, ts)
	if !ok {
		return Response{}, fmt.Errorf("%w (%s in %s)", ErrNoContext, sopClass, ts)
	}
	rsp, err := a.request(pc.ID, &Command{Field: CStoreRQ, AffectedClass: sopClass, AffectedInst: sopInstance}, data)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: rsp.Status, Comment: rsp.ErrorComment}, nil
}

// Release asks the peer to release the association and waits (ARTIM) for
// its A-RELEASE-RP.
func (a *Assoc) Release() error {
	defer a.Close()
	if err := a.write(encodeRelease(pduReleaseRQ)); err != nil {
		return err
	}
	deadline := time.Now().Add(a.lim.ARTIM)
	for {
		_ = a.conn.SetReadDeadline(deadline)
		typ, _, err := ReadPDU(a.r, a.lim.MaxPDULength, a.buf)
		if err != nil {
			return fmt.Errorf("dimse: wait for A-RELEASE-RP from %s: %w", a.conn.RemoteAddr(), err)
		}
		switch typ {
		case pduReleaseRP:
			return nil
		case pduReleaseRQ: // release collision: answer and finish
			_ = a.write(encodeRelease(pduReleaseRP))
			return nil
		case pduAbort:
			return AbortError{}
		}
	}
}

// StorePart10 sends a DICOM Part 10 file (its data set, in the file's own
// transfer syntax, which must have been accepted) with C-STORE.
func (a *Assoc) StorePart10(r io.Reader) (FileMeta, Response, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	m, err := ReadFileMeta(br)
	if err != nil {
		return m, Response{}, err
	}
	rsp, err := a.Store(m.SOPClass, m.SOPInstance, m.TransferSyntax, br)
	return m, rsp, err
}
