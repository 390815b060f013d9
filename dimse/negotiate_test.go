package dimse

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestNegotiation: what an SCP answers to a request proposing an
// asynchronous window, an unknown abstract syntax and transfer syntaxes in
// the sender's order.
func TestNegotiation(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	go func() {
		a, err := Accept(context.Background(), srv, &AcceptPolicy{AETitle: "TRIAGED",
			TransferSyntaxes: func(abs string) []string {
				if abs == VerificationSOPClass {
					return nil
				}
				return []string{"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
			},
			Limits: Limits{MaxPDULength: 32768, ARTIM: time.Second}})
		if err == nil {
			a.Close()
		}
	}()
	rq := sampleRQ()
	cli.Write(EncodeAssociate(rq, false))
	typ, body, err := ReadPDU(cli, 1<<20, nil)
	if err != nil || typ != pduAssociateAC {
		t.Fatalf("answer: type %d, %v", typ, err)
	}
	ac, err := DecodeAssociate(body, true)
	if err != nil {
		t.Fatal(err)
	}
	if ac.AsyncInvoked != 1 || ac.AsyncPerformed != 1 {
		t.Errorf("asynchronous window answered %d/%d, want 1/1", ac.AsyncInvoked, ac.AsyncPerformed)
	}
	if ac.MaxPDULength != 32768 || ac.ImplClassUID != ImplementationClassUID || ac.ImplVersion != ImplementationVersion {
		t.Errorf("user information %+v", ac)
	}
	if len(ac.Contexts) != 2 {
		t.Fatalf("contexts %+v", ac.Contexts)
	}
	// The sender listed explicit VR first: that one is taken.
	if c := ac.Contexts[0]; c.ID != 1 || c.Result != PCAccepted || c.Transfer[0] != "1.2.840.10008.1.2.1" {
		t.Errorf("context 1: %+v", c)
	}
	if c := ac.Contexts[1]; c.ID != 3 || c.Result != PCAbstractSyntaxNotSupported {
		t.Errorf("context 3: %+v", c)
	}
}

func TestCalledAERejected(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := Accept(context.Background(), srv, &AcceptPolicy{AETitle: "OTHER", TransferSyntaxes: func(string) []string { return nil },
			Limits: Limits{ARTIM: time.Second}})
		errc <- err
	}()
	cli.Write(EncodeAssociate(sampleRQ(), false))
	typ, body, err := ReadPDU(cli, 1<<20, nil)
	if err != nil || typ != pduAssociateRJ || body[1] != RJPermanent || body[2] != RJSourceUser || body[3] != RJCalledAENotKnown {
		t.Fatalf("answer type %d body %v err %v", typ, body, err)
	}
	cli.Close()
	var rj RJ
	if err := <-errc; !errors.As(err, &rj) {
		t.Errorf("Accept returned %v", err)
	}
}

// TestCancelAbortsAssociation: ending the context aborts an idle
// association at once (shutdown), not after the idle timeout.
func TestCancelAbortsAssociation(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		a, err := Accept(ctx, srv, &AcceptPolicy{TransferSyntaxes: func(string) []string { return []string{"1.2.840.10008.1.2"} },
			Limits: Limits{IdleTimeout: time.Minute}})
		if err != nil {
			done <- err
			return
		}
		done <- a.Serve(checkHandler{})
	}()
	cli.Write(EncodeAssociate(sampleRQ(), false))
	if _, _, err := ReadPDU(cli, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, cli)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Serve returned nil after cancellation")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5s after its context ended")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
}
