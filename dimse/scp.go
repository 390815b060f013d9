package dimse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// AcceptPolicy decides what an SCP accepts.
type AcceptPolicy struct {
	// AETitle is our AE title; "" accepts any called AE title.
	AETitle string
	// Check vets the request (calling AE allow-list, source address...)
	// after the called AE title passed; a non-nil RJ rejects it.
	Check func(rq *AssociateRQ, peer net.Addr) *RJ
	// TransferSyntaxes returns the transfer syntaxes accepted for an
	// abstract syntax, nil when the abstract syntax is not supported.
	TransferSyntaxes func(abstract string) []string
	Limits           Limits
}

// Accept reads the A-ASSOCIATE-RQ from a freshly accepted connection
// (within ARTIM) and answers it: -AC with each presentation context
// accepted or refused on its own, or -RJ (returned as an RJ error after
// the peer closed or ARTIM ran out). On any error the connection is closed.
func Accept(ctx context.Context, conn net.Conn, p *AcceptPolicy) (*Assoc, error) {
	lim := p.Limits.WithDefaults()
	a := newAssoc(ctx, conn, lim)
	if err := a.setReadDeadline(lim.ARTIM); err != nil {
		a.Close()
		return nil, err
	}
	typ, body, err := ReadPDU(a.r, maxAssociatePDU, nil)
	if err != nil {
		if errors.Is(err, ErrPDUTooLarge) || errors.Is(err, errMalformed) {
			a.Abort(AbortSourceProvider, AbortInvalidParam)
		} else {
			a.Close()
		}
		return nil, fmt.Errorf("dimse: read A-ASSOCIATE-RQ from %s: %w", conn.RemoteAddr(), err)
	}
	a.bytesIn += int64(len(body)) + 6
	if typ != pduAssociateRQ {
		a.Abort(AbortSourceProvider, AbortUnexpectedPDU)
		return nil, fmt.Errorf("dimse: %s sent PDU type 0x%02x before associating", conn.RemoteAddr(), typ)
	}
	rq, err := DecodeAssociate(body, false)
	if err != nil {
		a.Abort(AbortSourceProvider, AbortInvalidParam)
		return nil, fmt.Errorf("dimse: A-ASSOCIATE-RQ from %s: %w", conn.RemoteAddr(), err)
	}
	a.RQ = rq
	reject := func(r RJ) (*Assoc, error) {
		_ = a.write(EncodeRJ(r))
		a.waitClose()
		return nil, r
	}
	switch {
	case rq.ProtocolVersion&1 == 0:
		return reject(RJ{RJPermanent, RJSourceACSE, RJACSEProtocolVersion})
	case rq.AppContext != ApplicationContext:
		return reject(RJ{RJPermanent, RJSourceUser, RJAppContextUnsupported})
	case p.AETitle != "" && rq.CalledAE != p.AETitle:
		return reject(RJ{RJPermanent, RJSourceUser, RJCalledAENotKnown})
	}
	if p.Check != nil {
		if r := p.Check(rq, conn.RemoteAddr()); r != nil {
			return reject(*r)
		}
	}
	ac := &AssociateRQ{
		CalledAE: rq.CalledAE, CallingAE: rq.CallingAE, AppContext: ApplicationContext,
		MaxPDULength: lim.MaxPDULength, ImplClassUID: ImplementationClassUID, ImplVersion: ImplementationVersion,
	}
	if rq.AsyncInvoked != 0 || rq.AsyncPerformed != 0 {
		// We perform one operation at a time, whatever was proposed.
		ac.AsyncInvoked, ac.AsyncPerformed = 1, 1
	}
	seen := map[byte]bool{}
	for _, pc := range rq.Contexts {
		if pc.ID%2 == 0 || seen[pc.ID] {
			a.Abort(AbortSourceProvider, AbortInvalidParam)
			return nil, fmt.Errorf("dimse: A-ASSOCIATE-RQ from %s: presentation context ID %d is even or repeated", conn.RemoteAddr(), pc.ID)
		}
		seen[pc.ID] = true
		res := PresentationContext{ID: pc.ID, Abstract: pc.Abstract, Result: PCAbstractSyntaxNotSupported}
		if len(pc.Transfer) > 0 {
			res.Transfer = pc.Transfer[:1]
		}
		if ours := p.TransferSyntaxes(pc.Abstract); ours != nil {
			res.Result = PCTransferSyntaxNotSupported
		pick:
			for _, ts := range pc.Transfer { // the sender's order of preference
				for _, o := range ours {
					if ts == o {
						res.Result, res.Transfer = PCAccepted, []string{ts}
						break pick
					}
				}
			}
		}
		ac.Contexts = append(ac.Contexts, res)
		if res.Result == PCAccepted {
			a.ctxs[pc.ID] = res
		}
	}
	a.peerMax = rq.MaxPDULength
	if err := a.write(EncodeAssociate(ac, true)); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Refuse answers a connection with an A-ASSOCIATE-RJ without looking at
// the request beyond reading it (over a concurrency limit, say).
func Refuse(conn net.Conn, r RJ, artim time.Duration) {
	_ = conn.SetReadDeadline(time.Now().Add(artim))
	if _, _, err := ReadPDU(conn, maxAssociatePDU, nil); err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(artim))
	_, _ = conn.Write(EncodeRJ(r))
	waitClose(conn, artim)
}

// StoreRequest is one C-STORE as the SCP received it.
type StoreRequest struct {
	Context        byte
	MessageID      uint16
	Priority       uint16
	SOPClass       string
	SOPInstance    string
	TransferSyntax string
	MoveOriginator string
}

// Response is a DIMSE status with an optional comment (64 chars max).
type Response struct {
	Status  uint16
	Comment string
}

// StoreHandler takes C-STOREs. Store reads the data set from data as it
// arrives and returns the status to send; it must not return Success
// before the data set is durable. Whatever it leaves unread is discarded.
// A read error from data means the association is being aborted.
type StoreHandler interface {
	Store(ctx context.Context, req *StoreRequest, data io.Reader) Response
}

// Serve runs the SCP side of an accepted association: C-ECHO answered,
// C-STORE given to h, other operations answered "unrecognized". It returns
// nil once the peer released, the peer's AbortError, or the error for
// which it aborted the association. The connection is closed on return.
func (a *Assoc) Serve(h StoreHandler) error {
	for {
		m, err := a.ReadMessage()
		if err != nil {
			return a.end(err)
		}
		c := m.Command
		rsp := &Command{Field: c.Field | 0x8000, RespondedTo: c.MessageID, AffectedClass: c.AffectedClass, AffectedInst: c.AffectedInst}
		pc := a.ctxs[m.Context]
		switch c.Field {
		case CEchoRQ:
			rsp.Status = StatusSuccess
		case CStoreRQ:
			switch {
			case m.Data == nil:
				return a.end(protoErr(AbortInvalidParam, "dimse: C-STORE-RQ without a data set"))
			case c.AffectedClass != pc.Abstract:
				rsp.Status = StatusSOPClassNotSupport
				rsp.ErrorComment = "SOP class differs from the presentation context"
			case c.AffectedInst == "":
				rsp.Status = StatusCannotUnderstand
				rsp.ErrorComment = "no Affected SOP Instance UID"
			default:
				r := h.Store(a.ctx, &StoreRequest{
					Context: m.Context, MessageID: c.MessageID, Priority: c.Priority,
					SOPClass: c.AffectedClass, SOPInstance: c.AffectedInst, TransferSyntax: pc.Transfer[0],
					MoveOriginator: c.MoveOriginator,
				}, m.Data)
				rsp.Status, rsp.ErrorComment = r.Status, r.Comment
			}
		default:
			if c.Field&0x8000 != 0 {
				return a.end(protoErr(AbortUnexpectedParam, "dimse: unsolicited response 0x%04x", c.Field))
			}
			rsp.Status = StatusUnrecognizedOp
		}
		if m.Data != nil && !m.Data.done {
			if _, err := io.Copy(io.Discard, m.Data); err != nil {
				return a.end(err)
			}
		}
		if err := a.SendMessage(m.Context, rsp, nil); err != nil {
			return a.end(err)
		}
	}
}

// end closes the association after err: released, aborted by the peer, a
// protocol error or idle timeout (we abort), or a connection failure.
func (a *Assoc) end(err error) error {
	var pe *ProtocolError
	var ae AbortError
	switch {
	case errors.Is(err, ErrReleased):
		a.waitClose()
		return nil
	case errors.As(err, &ae):
		a.Close()
	case errors.As(err, &pe):
		a.Abort(AbortSourceProvider, pe.Reason)
	default:
		// Idle timeout, cancellation, or a broken connection: an A-ABORT
		// tells a live peer not to wait.
		a.Abort(AbortSourceProvider, AbortNotSpecified)
	}
	return err
}
