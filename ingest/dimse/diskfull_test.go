package dimse

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// A real full disk (a 3 MiB tmpfs, no free-space floor): the films that
// fit are stored, the next ones are refused A700 within the same
// association, nothing half-written stays behind, the SCP stays up, and
// once space is freed new films are stored again.
func TestRealDiskFullDuringASend(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: mounts a tmpfs (runs in make test)")
	}
	dir := testenv.Tmpfs(t, "3m")
	path := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	film, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := header(t, path)
	sp, err := spool.Open(dir, spool.Options{MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{AETitle: "TRIAGED", Spool: sp, Log: zerolog.Nop(), Limits: ul.Limits{ARTIM: 5 * time.Second, IdleTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ln := testenv.Serve(t, srv.Serve)

	dial := func() *ul.Assoc {
		a, err := ul.Dial(context.Background(), ln.Addr().String(), ul.SCUOptions{CallingAE: "FULLDISK", CalledAE: "TRIAGED",
			Contexts: []ul.PresentationContext{{Abstract: h.SOPClassUID, Transfer: []string{dicomtest.ImplicitLE}}}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	send := func(a *ul.Assoc, i int) uint16 {
		// The same instance again: the spool gives every copy its own name.
		r, err := a.Store(h.SOPClassUID, h.SOPInstanceUID, dicomtest.ImplicitLE, bytesReader(dataSet(t, film)))
		if err != nil {
			t.Fatalf("film %d: %v", i, err)
		}
		return r.Status
	}
	a := dial()
	stored, refused := 0, 0
	for i := range 6 { // 6 x ~1 MiB into 3 MiB
		switch st := send(a, i); st {
		case 0:
			stored++
		case ul.StatusOutOfResources:
			refused++
		default:
			t.Fatalf("film %d: status %04X, want 0000 or A700", i, st)
		}
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	t.Logf("stored %d, refused %d on a 3 MiB disk", stored, refused)
	if stored == 0 || refused == 0 || len(files) != stored {
		t.Fatalf("stored %d, refused %d, %d files in the folder", stored, refused, len(files))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".spool")); len(ents) != 0 {
		t.Errorf("%d temporary files left on the full disk", len(ents))
	}
	for _, f := range files {
		os.Remove(f)
	}
	a = dial()
	if st := send(a, 50); st != 0 {
		t.Errorf("after space was freed: status %04X, want 0000", st)
	}
	a.Release()
}
