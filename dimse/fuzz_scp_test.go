package dimse

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

type checkHandler struct{}

func (checkHandler) Store(ctx context.Context, req *StoreRequest, data io.Reader) Response {
	if _, err := CheckDataSet(data, req.TransferSyntax, DataSetLimits{MaxElements: 1000, MaxInflated: 1 << 20}); err != nil {
		return Response{Status: StatusCannotUnderstand}
	}
	return Response{}
}

// FuzzSCP drives the whole acceptor (negotiation, message loop, data set
// check) with a valid association request followed by any bytes: it must
// end, without a panic, whatever the peer sends.
func FuzzSCP(f *testing.F) {
	cmd := (&Command{Field: CStoreRQ, MessageID: 1, AffectedClass: "1.2.840.10008.5.1.4.1.1.1", AffectedInst: "1.2.3", DataSetType: 0}).Encode()
	echo := (&Command{Field: CEchoRQ, MessageID: 2, AffectedClass: VerificationSOPClass, DataSetType: NoDataSet}).Encode()
	ds := []byte{0x08, 0, 0x18, 0, 'U', 'I', 6, 0, '1', '.', '2', '.', '3', 0}
	var seed []byte
	seed = append(appendPDataHeader(seed, 1, true, true, len(cmd)), cmd...)
	seed = append(appendPDataHeader(seed, 1, false, true, len(ds)), ds...)
	seed = append(appendPDataHeader(seed, 3, true, true, len(echo)), echo...)
	seed = append(seed, encodeRelease(pduReleaseRQ)...)
	f.Add(seed)
	f.Add(append(appendPDataHeader(nil, 1, true, false, len(cmd)), cmd...))
	f.Add(EncodeAbort(0, 0))
	rq := sampleRQ()
	hello := EncodeAssociate(rq, false)
	policy := &AcceptPolicy{
		TransferSyntaxes: func(string) []string { return []string{"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"} },
		Limits:           Limits{ARTIM: time.Second, IdleTimeout: time.Second, MaxPDULength: 64 << 10, MaxFragments: 100, MaxDataSetBytes: 1 << 20},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		srv, cli := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			a, err := Accept(context.Background(), srv, policy)
			if err != nil {
				return
			}
			a.Serve(checkHandler{})
		}()
		go io.Copy(io.Discard, cli)
		cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		cli.Write(hello)
		cli.Write(b)
		cli.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the SCP did not end after the peer closed")
		}
	})
}
