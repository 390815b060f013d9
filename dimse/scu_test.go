package dimse

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// freePort asks the OS for a free loopback port for a tool that needs a
// number.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func fileMeta(t *testing.T, path string) FileMeta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadFileMeta(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSCUAgainstStorescp sends shared films with our SCU to dcmtk's
// storescp and checks every status and what storescp wrote.
func TestSCUAgainstStorescp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's storescp")
	}
	if _, err := exec.LookPath("storescp"); err != nil {
		t.Skip("skipping: storescp not found (install the Debian package dcmtk)")
	}
	films := []string{
		testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"),
		testenv.DICOM(t, "original/pydicom_tiny_CR_6154.dcm"),
		testenv.DICOM(t, "original/RG1_J2KI.dcm"),
	}
	out := t.TempDir()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "storescp", "-aet", "STORESCP", "+xa", "-od", out, strconv.Itoa(port))
	logf, _ := os.Create(filepath.Join(t.TempDir(), "storescp.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("storescp did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ctxs []PresentationContext
	for _, f := range films {
		m := fileMeta(t, f)
		ctxs = append(ctxs, PresentationContext{Abstract: m.SOPClass, Transfer: []string{m.TransferSyntax}})
	}
	ctxs = append(ctxs, PresentationContext{Abstract: VerificationSOPClass, Transfer: []string{"1.2.840.10008.1.2"}})
	a, err := Dial(context.Background(), addr, SCUOptions{CallingAE: "TRIAGED", CalledAE: "STORESCP", Contexts: ctxs,
		Limits: Limits{MaxPDULength: 16384}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Echo(); err != nil {
		t.Fatal(err)
	}
	for _, f := range films {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, rsp, err := a.StorePart10(fh)
		fh.Close()
		if err != nil || rsp.Status != StatusSuccess {
			t.Errorf("%s (%s): status %04X %v", filepath.Base(f), m.TransferSyntax, rsp.Status, err)
		}
	}
	if err := a.Release(); err != nil {
		t.Errorf("release: %v", err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != len(films) {
		t.Fatalf("storescp wrote %d files, want %d", len(ents), len(films))
	}
	for _, e := range ents {
		m := fileMeta(t, filepath.Join(out, e.Name()))
		found := false
		for _, f := range films {
			fm := fileMeta(t, f)
			if fm.SOPInstance == m.SOPInstance && fm.TransferSyntax == m.TransferSyntax {
				found = true
			}
		}
		if !found {
			t.Errorf("storescp wrote %s, which matches no film sent", e.Name())
		}
	}
}
