package dimse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// startTLSSCP runs the SCP with DICOM TLS and client certificate
// verification (provision.DIMSE builds the same from ingest.dimse.tls).
func startTLSSCP(t *testing.T) (*Server, net.Listener, *natstest.PKI) {
	t.Helper()
	pki := natstest.NewPKI(t)
	sp, err := spool.Open(t.TempDir(), spool.Options{MinFreeBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki.CAFile)
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(caPEM)
	o := Options{AETitle: "TRIAGED", Spool: sp, SOPClasses: DefaultSOPClasses, Log: zerolog.Nop(),
		AllowedCallers: []Caller{{AETitle: "SECURE", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		TLS:            &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert}}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln := testenv.Serve(t, srv.Serve)
	return srv, ln, pki
}

func TestTLSWithClientCertificates(t *testing.T) {
	srv, ln, pki := startTLSSCP(t)
	caPEM, _ := os.ReadFile(pki.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := ul.SCUOptions{CallingAE: "SECURE", CalledAE: "TRIAGED", Limits: ul.Limits{ARTIM: 5 * time.Second},
		Contexts: []ul.PresentationContext{{Abstract: SOPClassCR, Transfer: []string{dicomtest.ExplicitLE}}, {Abstract: ul.VerificationSOPClass, Transfer: []string{dicomtest.ImplicitLE}}}}
	opts.TLS = &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	a, err := ul.Dial(context.Background(), ln.Addr().String(), opts)
	if err != nil {
		t.Fatalf("TLS association with a client certificate: %v", err)
	}
	if err := a.Echo(); err != nil {
		t.Fatal(err)
	}
	rsp, err := a.Store(SOPClassCR, "1.2.826.0.1.3680043.10.1234.90", dicomtest.ExplicitLE, bytesReader(dataSet(t, crFilm("1.2.826.0.1.3680043.10.1234.90"))))
	if err != nil || rsp.Status != 0 {
		t.Fatalf("C-STORE over TLS: %04X %v", rsp.Status, err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	// No client certificate: no association.
	opts.TLS = &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if a, err := ul.Dial(context.Background(), ln.Addr().String(), opts); err == nil {
		a.Close()
		t.Errorf("association without a client certificate succeeded")
	}
	// Plain TCP to the TLS port: no association either.
	opts.TLS = nil
	if a, err := ul.Dial(context.Background(), ln.Addr().String(), opts); err == nil {
		a.Close()
		t.Errorf("association without TLS succeeded")
	}
	if n := srv.Stats().Instances["success"]; n != 1 {
		t.Errorf("%d instances stored, want 1", n)
	}
}

// TestTLSWithDcmtk: dcmtk's echoscu and storescu over DICOM TLS (BCP 195
// profile) with a client certificate; without one they are refused.
func TestTLSWithDcmtk(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's echoscu and storescu")
	}
	needTool(t, "storescu", "dcmtk")
	srv, ln, pki := startTLSSCP(t)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	tlsArgs := []string{"+tls", pki.ClientKey, pki.ClientCert, "+cf", pki.CAFile, "-aet", "SECURE", "-aec", "TRIAGED"}
	if out, err := run(t, "echoscu", append(tlsArgs, host, port)...); err != nil {
		t.Fatalf("echoscu over TLS: %v\n%s", err, out)
	}
	film := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	if out, err := run(t, "storescu", append(tlsArgs, host, port, film)...); err != nil {
		t.Fatalf("storescu over TLS: %v\n%s", err, out)
	}
	if out, err := run(t, "echoscu", "+tla", "+cf", pki.CAFile, "-aet", "SECURE", "-aec", "TRIAGED", host, port); err == nil {
		t.Errorf("echoscu without a client certificate succeeded:\n%s", out)
	}
	if n := srv.Stats().Instances["success"]; n != 1 {
		t.Errorf("%d instances stored, want 1", n)
	}
}
