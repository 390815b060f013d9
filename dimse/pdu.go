package dimse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PDU types (PS3.8 9.3).
const (
	pduAssociateRQ = 0x01
	pduAssociateAC = 0x02
	pduAssociateRJ = 0x03
	pduPData       = 0x04
	pduReleaseRQ   = 0x05
	pduReleaseRP   = 0x06
	pduAbort       = 0x07
)

// Item types of the association PDUs.
const (
	itemAppContext  = 0x10
	itemPresCtxRQ   = 0x20
	itemPresCtxAC   = 0x21
	itemAbstract    = 0x30
	itemTransfer    = 0x40
	itemUserInfo    = 0x50
	itemMaxLength   = 0x51
	itemImplClass   = 0x52
	itemAsyncWindow = 0x53
	itemRoleSelect  = 0x54
	itemImplVersion = 0x55
)

// ApplicationContext is the DICOM application context name.
const ApplicationContext = "1.2.840.10008.3.1.1.1"

// Presentation context results (PS3.8 9.3.3.2).
const (
	PCAccepted                          = 0
	PCUserRejection                     = 1
	PCNoReason                          = 2
	PCAbstractSyntaxNotSupported        = 3
	PCTransferSyntaxNotSupported        = 4
	associateHeaderLen                  = 68 // version, reserved, AE titles, reserved
	maxAssociatePDU              uint32 = 1 << 20
)

// A-ASSOCIATE-RJ result, source and reason (PS3.8 9.3.4).
const (
	RJPermanent = 1
	RJTransient = 2

	RJSourceUser     = 1 // service user
	RJSourceACSE     = 2 // service provider, ACSE
	RJSourcePresentn = 3 // service provider, presentation

	RJUserNoReason          = 1
	RJAppContextUnsupported = 2
	RJCallingAENotKnown     = 3
	RJCalledAENotKnown      = 7
	RJACSEProtocolVersion   = 2
	RJPresentnCongestion    = 1
	RJPresentnLocalLimit    = 2
)

// A-ABORT sources and reasons (PS3.8 9.3.8).
const (
	AbortSourceUser     = 0
	AbortSourceProvider = 2

	AbortNotSpecified      = 0
	AbortUnrecognizedPDU   = 1
	AbortUnexpectedPDU     = 2
	AbortUnrecognizedParam = 4
	AbortUnexpectedParam   = 5
	AbortInvalidParam      = 6
)

// ErrPDUTooLarge: a PDU header claims more bytes than the limit. The
// claimed length is never allocated.
var ErrPDUTooLarge = errors.New("dimse: PDU longer than the negotiated maximum")

// errMalformed marks a PDU whose contents contradict its own lengths.
var errMalformed = errors.New("dimse: malformed PDU")

// PresentationContext is one proposed or accepted presentation context.
type PresentationContext struct {
	ID       byte
	Abstract string
	// Transfer: the proposed syntaxes (request), or the one accepted.
	Transfer []string
	// Result is the acceptor's answer (PCAccepted...).
	Result byte
}

// AssociateRQ is an A-ASSOCIATE-RQ (or, with Result fields, an -AC).
type AssociateRQ struct {
	ProtocolVersion uint16
	CalledAE        string
	CallingAE       string
	AppContext      string
	Contexts        []PresentationContext
	MaxPDULength    uint32
	ImplClassUID    string
	ImplVersion     string
	// AsyncOps is the proposed window (invoked, performed); 0,0 when absent.
	AsyncInvoked, AsyncPerformed uint16
	// Roles holds the SOP classes with an SCP/SCU role selection item.
	Roles []RoleSelection
}

// RoleSelection is an SCP/SCU role selection sub-item.
type RoleSelection struct {
	SOPClass string
	SCU, SCP byte
}

// RJ is an A-ASSOCIATE-RJ.
type RJ struct{ Result, Source, Reason byte }

func (r RJ) Error() string {
	return fmt.Sprintf("association rejected (result %d, source %d, reason %d: %s)", r.Result, r.Source, r.Reason, r.text())
}

func (r RJ) text() string {
	switch {
	case r.Source == RJSourceUser && r.Reason == RJCallingAENotKnown:
		return "calling AE title not recognized"
	case r.Source == RJSourceUser && r.Reason == RJCalledAENotKnown:
		return "called AE title not recognized"
	case r.Source == RJSourceUser && r.Reason == RJAppContextUnsupported:
		return "application context not supported"
	case r.Source == RJSourcePresentn && r.Reason == RJPresentnLocalLimit:
		return "local limit exceeded"
	case r.Source == RJSourcePresentn && r.Reason == RJPresentnCongestion:
		return "temporary congestion"
	case r.Source == RJSourceACSE && r.Reason == RJACSEProtocolVersion:
		return "protocol version not supported"
	}
	return "no reason given"
}

// AbortError is an A-ABORT received from the peer.
type AbortError struct{ Source, Reason byte }

func (a AbortError) Error() string {
	return fmt.Sprintf("association aborted by the peer (source %d, reason %d)", a.Source, a.Reason)
}

// readPDUHeader reads the 6-byte header and checks the claimed length
// against max before anything is allocated for it.
func readPDUHeader(r io.Reader, max uint32) (typ byte, n uint32, err error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, err
	}
	typ, n = h[0], binary.BigEndian.Uint32(h[2:])
	if typ < pduAssociateRQ || typ > pduAbort {
		return typ, n, fmt.Errorf("%w: unknown PDU type 0x%02x", errMalformed, typ)
	}
	if n > max {
		return typ, n, fmt.Errorf("%w: PDU type 0x%02x claims %d bytes, limit %d", ErrPDUTooLarge, typ, n, max)
	}
	return typ, n, nil
}

// ReadPDU reads one PDU whose body is at most limit bytes into buf (grown
// as needed, never beyond limit) and returns its type and body.
func ReadPDU(r io.Reader, limit uint32, buf []byte) (byte, []byte, error) {
	typ, n, err := readPDUHeader(r, limit)
	if err != nil {
		return typ, nil, err
	}
	// Memory follows the bytes that actually arrive, not the length
	// claimed: a peer claiming the maximum and sending little costs little.
	buf = buf[:0]
	for uint32(len(buf)) < n {
		k := int(min(n-uint32(len(buf)), readChunk))
		if cap(buf)-len(buf) < k {
			grown := make([]byte, len(buf), min(int(n), max(2*cap(buf), len(buf)+k)))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+k])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return typ, nil, fmt.Errorf("dimse: read PDU body (type 0x%02x, %d bytes): %w", typ, n, err)
		}
	}
	return typ, buf, nil
}

// readChunk is how much of a PDU body is read (and allocated) at a time.
const readChunk = 64 << 10

func appendPDUHeader(b []byte, typ byte, n int) []byte {
	b = append(b, typ, 0)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func appendItem(b []byte, typ byte, v []byte) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func aeField(s string) []byte {
	b := []byte(fmt.Sprintf("%-16s", s))
	return b[:16]
}

// trimAE strips the padding of an AE title field.
func trimAE(b []byte) string { return strings.TrimSpace(strings.TrimRight(string(b), "\x00")) }

// trimUID strips the trailing NUL padding a UID may carry.
func trimUID(b []byte) string { return strings.TrimRight(string(b), "\x00 ") }

// EncodeAssociate encodes an A-ASSOCIATE-RQ (ac false) or -AC (ac true).
func EncodeAssociate(a *AssociateRQ, ac bool) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint16(body, 1)
	body = append(body, 0, 0)
	body = append(body, aeField(a.CalledAE)...)
	body = append(body, aeField(a.CallingAE)...)
	body = append(body, make([]byte, 32)...)
	app := a.AppContext
	if app == "" {
		app = ApplicationContext
	}
	body = appendItem(body, itemAppContext, []byte(app))
	for _, pc := range a.Contexts {
		var v []byte
		if ac {
			v = append(v, pc.ID, 0, pc.Result, 0)
			ts := ""
			if len(pc.Transfer) > 0 {
				ts = pc.Transfer[0]
			}
			v = appendItem(v, itemTransfer, []byte(ts))
			body = appendItem(body, itemPresCtxAC, v)
			continue
		}
		v = append(v, pc.ID, 0, 0, 0)
		v = appendItem(v, itemAbstract, []byte(pc.Abstract))
		for _, ts := range pc.Transfer {
			v = appendItem(v, itemTransfer, []byte(ts))
		}
		body = appendItem(body, itemPresCtxRQ, v)
	}
	var ui []byte
	ui = appendItem(ui, itemMaxLength, binary.BigEndian.AppendUint32(nil, a.MaxPDULength))
	ui = appendItem(ui, itemImplClass, []byte(a.ImplClassUID))
	if a.AsyncInvoked != 0 || a.AsyncPerformed != 0 {
		w := binary.BigEndian.AppendUint16(nil, a.AsyncInvoked)
		ui = appendItem(ui, itemAsyncWindow, binary.BigEndian.AppendUint16(w, a.AsyncPerformed))
	}
	if a.ImplVersion != "" {
		ui = appendItem(ui, itemImplVersion, []byte(a.ImplVersion))
	}
	body = appendItem(body, itemUserInfo, ui)
	typ := byte(pduAssociateRQ)
	if ac {
		typ = pduAssociateAC
	}
	return append(appendPDUHeader(nil, typ, len(body)), body...)
}

// items walks the items of b, calling fn with each type and value.
func items(b []byte, fn func(typ byte, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: item header cut short (%d bytes left)", errMalformed, len(b))
		}
		typ, n := b[0], int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) {
			return fmt.Errorf("%w: item 0x%02x claims %d bytes, %d left", errMalformed, typ, n, len(b)-4)
		}
		if err := fn(typ, b[4:4+n]); err != nil {
			return err
		}
		b = b[4+n:]
	}
	return nil
}

// maxContexts bounds the presentation contexts of one association: the
// IDs are odd bytes, so there can be no more than 128.
const maxContexts = 128

// DecodeAssociate decodes the body of an A-ASSOCIATE-RQ or -AC.
func DecodeAssociate(body []byte, ac bool) (*AssociateRQ, error) {
	if len(body) < associateHeaderLen {
		return nil, fmt.Errorf("%w: A-ASSOCIATE body of %d bytes", errMalformed, len(body))
	}
	a := &AssociateRQ{
		ProtocolVersion: binary.BigEndian.Uint16(body),
		CalledAE:        trimAE(body[4:20]),
		CallingAE:       trimAE(body[20:36]),
	}
	err := items(body[associateHeaderLen:], func(typ byte, v []byte) error {
		switch typ {
		case itemAppContext:
			a.AppContext = trimUID(v)
		case itemPresCtxRQ, itemPresCtxAC:
			if (typ == itemPresCtxAC) != ac {
				return fmt.Errorf("%w: presentation context item 0x%02x in the wrong PDU", errMalformed, typ)
			}
			if len(v) < 4 {
				return fmt.Errorf("%w: presentation context item of %d bytes", errMalformed, len(v))
			}
			if len(a.Contexts) >= maxContexts {
				return fmt.Errorf("%w: more than %d presentation contexts", errMalformed, maxContexts)
			}
			pc := PresentationContext{ID: v[0], Result: v[2]}
			if !ac {
				pc.Result = 0
			}
			if err := items(v[4:], func(st byte, sv []byte) error {
				switch st {
				case itemAbstract:
					pc.Abstract = trimUID(sv)
				case itemTransfer:
					if len(pc.Transfer) >= 64 {
						return fmt.Errorf("%w: more than 64 transfer syntaxes in context %d", errMalformed, pc.ID)
					}
					pc.Transfer = append(pc.Transfer, trimUID(sv))
				}
				return nil
			}); err != nil {
				return err
			}
			a.Contexts = append(a.Contexts, pc)
		case itemUserInfo:
			return items(v, func(st byte, sv []byte) error {
				switch st {
				case itemMaxLength:
					if len(sv) != 4 {
						return fmt.Errorf("%w: maximum length item of %d bytes", errMalformed, len(sv))
					}
					a.MaxPDULength = binary.BigEndian.Uint32(sv)
				case itemImplClass:
					a.ImplClassUID = trimUID(sv)
				case itemImplVersion:
					a.ImplVersion = strings.TrimSpace(string(sv))
				case itemAsyncWindow:
					if len(sv) == 4 {
						a.AsyncInvoked, a.AsyncPerformed = binary.BigEndian.Uint16(sv), binary.BigEndian.Uint16(sv[2:])
					}
				case itemRoleSelect:
					if len(sv) >= 2 {
						n := int(binary.BigEndian.Uint16(sv))
						if 2+n+2 <= len(sv) && len(a.Roles) < maxContexts {
							a.Roles = append(a.Roles, RoleSelection{SOPClass: trimUID(sv[2 : 2+n]), SCU: sv[2+n], SCP: sv[3+n]})
						}
					}
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// EncodeRJ encodes an A-ASSOCIATE-RJ.
func EncodeRJ(r RJ) []byte {
	return append(appendPDUHeader(nil, pduAssociateRJ, 4), 0, r.Result, r.Source, r.Reason)
}

// EncodeAbort encodes an A-ABORT.
func EncodeAbort(source, reason byte) []byte {
	return append(appendPDUHeader(nil, pduAbort, 4), 0, 0, source, reason)
}

func encodeRelease(typ byte) []byte {
	return append(appendPDUHeader(nil, typ, 4), 0, 0, 0, 0)
}

// PDV is one presentation data value of a P-DATA-TF PDU.
type PDV struct {
	Context byte
	// Command: the fragment belongs to a command set (else a data set).
	Command bool
	// Last: the last fragment of its command or data set.
	Last bool
	Data []byte
}

// NextPDV splits the first PDV off a P-DATA-TF body.
func NextPDV(body []byte) (PDV, []byte, error) {
	if len(body) < 6 {
		return PDV{}, nil, fmt.Errorf("%w: PDV header cut short (%d bytes)", errMalformed, len(body))
	}
	n := binary.BigEndian.Uint32(body)
	if n < 2 || uint64(n) > uint64(len(body)-4) {
		return PDV{}, nil, fmt.Errorf("%w: PDV claims %d bytes, %d left", errMalformed, n, len(body)-4)
	}
	h := body[5]
	if h&^3 != 0 {
		return PDV{}, nil, fmt.Errorf("%w: PDV message control header 0x%02x", errMalformed, h)
	}
	return PDV{Context: body[4], Command: h&1 != 0, Last: h&2 != 0, Data: body[6 : 4+n]}, body[4+n:], nil
}

// appendPDataHeader appends the headers of a P-DATA-TF PDU holding one PDV
// of n data bytes.
func appendPDataHeader(b []byte, ctx byte, command, last bool, n int) []byte {
	b = appendPDUHeader(b, pduPData, n+6)
	b = binary.BigEndian.AppendUint32(b, uint32(n+2))
	var h byte
	if command {
		h |= 1
	}
	if last {
		h |= 2
	}
	return append(b, ctx, h)
}
