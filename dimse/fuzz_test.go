package dimse

import (
	"bytes"
	"io"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

// FuzzReadPDU reads any bytes as a PDU stream the way an SCP would: no
// panic, no allocation beyond the limit, and an association request that
// decodes encodes back to the same thing.
func FuzzReadPDU(f *testing.F) {
	rq := sampleRQ()
	f.Add(EncodeAssociate(rq, false))
	ac := *rq
	ac.Contexts = []PresentationContext{{ID: 1, Transfer: []string{"1.2.840.10008.1.2.1"}}}
	f.Add(EncodeAssociate(&ac, true))
	f.Add(EncodeRJ(RJ{1, 1, 3}))
	f.Add(EncodeAbort(2, 6))
	f.Add(encodeRelease(pduReleaseRQ))
	cmd := (&Command{Field: CEchoRQ, MessageID: 1, AffectedClass: VerificationSOPClass, DataSetType: NoDataSet}).Encode()
	f.Add(append(appendPDataHeader(nil, 1, true, true, len(cmd)), cmd...))
	f.Add([]byte{4, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var buf []byte
		for {
			typ, body, err := ReadPDU(r, 64<<10, buf)
			if err != nil {
				return
			}
			if cap(body) > 64<<10 {
				t.Fatalf("buffer of %d bytes for a 64 KiB limit", cap(body))
			}
			buf = body[:0]
			switch typ {
			case pduAssociateRQ, pduAssociateAC:
				a, err := DecodeAssociate(body, typ == pduAssociateAC)
				if err != nil {
					continue
				}
				if len(a.CalledAE) > 16 || len(a.CallingAE) > 16 || len(a.Contexts) > maxContexts {
					t.Fatalf("decoded beyond bounds: %+v", a)
				}
				if typ == pduAssociateRQ && a.ImplClassUID != "" && validForReencode(a) {
					_, body2, err := ReadPDU(bytes.NewReader(EncodeAssociate(a, false)), maxAssociatePDU, nil)
					if err != nil {
						t.Fatal(err)
					}
					a2, err := DecodeAssociate(body2, false)
					if err != nil {
						t.Fatalf("re-encoded request does not decode: %v", err)
					}
					if len(a2.Contexts) != len(a.Contexts) || a2.CallingAE != a.CallingAE || a2.MaxPDULength != a.MaxPDULength {
						t.Fatalf("re-encoded request differs: %+v vs %+v", a2, a)
					}
				}
			case pduPData:
				rest := body
				for len(rest) > 0 {
					var err error
					_, rest, err = NextPDV(rest)
					if err != nil {
						break
					}
				}
			}
		}
	})
}

// validForReencode: the encoder writes what the decoder reads only for
// values that fit their fields.
func validForReencode(a *AssociateRQ) bool {
	ok := func(s string) bool { return len(s) < 1<<15 && !bytes.ContainsAny([]byte(s), "\x00 ") }
	if !ok(a.AppContext) || !ok(a.ImplClassUID) || len(a.ImplVersion) > 16 || a.AppContext == "" {
		return false
	}
	for _, pc := range a.Contexts {
		if !ok(pc.Abstract) {
			return false
		}
		for _, ts := range pc.Transfer {
			if !ok(ts) {
				return false
			}
		}
	}
	return len(a.CalledAE) > 0 && len(a.CallingAE) > 0
}

// FuzzDecodeCommand: any command set decodes or fails cleanly, and one
// that decodes encodes to one that decodes the same.
func FuzzDecodeCommand(f *testing.F) {
	f.Add((&Command{Field: CStoreRQ, MessageID: 7, AffectedClass: "1.2.840.10008.5.1.4.1.1.1", AffectedInst: "1.2.3.44", Priority: 2}).Encode())
	f.Add((&Command{Field: CStoreRSP, RespondedTo: 7, Status: 0xA700, ErrorComment: "full"}).Encode())
	f.Add((&Command{Field: CEchoRQ, MessageID: 1, AffectedClass: VerificationSOPClass, DataSetType: NoDataSet}).Encode())
	f.Add([]byte{0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if bytes.ContainsAny([]byte(c.AffectedClass+c.AffectedInst+c.ErrorComment+c.MoveOriginator), "\x00 ") || len(c.ErrorComment) > 64 {
			return
		}
		c2, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if c2.Field != c.Field || c2.AffectedClass != c.AffectedClass || c2.AffectedInst != c.AffectedInst || (c.Field&0x8000 != 0 && c2.Status != c.Status) || c2.HasDataSet() != c.HasDataSet() {
			t.Fatalf("re-encoded command differs:\n%+v\n%+v", c2, c)
		}
	})
}

// FuzzCheckDataSet: any bytes in any syntax are walked to their end or
// refused, never a panic, never reading past the input.
func FuzzCheckDataSet(f *testing.F) {
	syntaxes := []string{dicomtest.ImplicitLE, dicomtest.ExplicitLE, dicomtest.ExplicitBE, dicomtest.DeflatedLE, "1.2.840.10008.1.2.5"}
	for i, ts := range syntaxes[:4] {
		file := dicomtest.Image{TransferSyntax: ts, Rows: 4, Columns: 4, Pixels: make([]int, 16),
			Extra: []dicomtest.Elem{dicomtest.Seq(dicomtest.Tag(0x0008, 0x1140), []dicomtest.Elem{dicomtest.Str(dicomtest.Tag(0x0008, 0x1150), "UI", "1.2.3")})}}.Bytes()
		n := int(file[140]) | int(file[141])<<8
		f.Add(file[144+n:], uint8(i))
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		r := bytes.NewReader(b)
		_, _ = CheckDataSet(r, syntaxes[int(which)%len(syntaxes)], DataSetLimits{MaxElements: 10000, MaxInflated: 1 << 20})
		if rest, _ := io.ReadAll(r); len(rest) != 0 {
			t.Fatalf("%d bytes left unread", len(rest))
		}
	})
}
