package dimse

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/dicomtest"
)

func pdata(ctx byte, command, last bool, data []byte) []byte {
	b := []byte{0x04, 0}
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)+6))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)+2))
	h := byte(0)
	if command {
		h |= 1
	}
	if last {
		h |= 2
	}
	return append(append(b, ctx, h), data...)
}

// associate opens an association to s proposing CR in explicit VR little
// endian and Verification.
func associate(t *testing.T, s *scp, extra ...ul.PresentationContext) *ul.Assoc {
	t.Helper()
	ctxs := append([]ul.PresentationContext{
		{Abstract: SOPClassCR, Transfer: []string{dicomtest.ExplicitLE}},
		{Abstract: ul.VerificationSOPClass, Transfer: []string{dicomtest.ImplicitLE}},
	}, extra...)
	a, err := ul.Dial(context.Background(), s.addr, ul.SCUOptions{CallingAE: "HOSTILE", CalledAE: "TRIAGED", Contexts: ctxs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// expectAbort reads until the SCP's A-ABORT (or the connection closes).
func expectAbort(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		typ, _, err := ul.ReadPDU(conn, 1<<20, nil)
		if err != nil {
			t.Fatalf("connection ended without an A-ABORT: %v", err)
		}
		if typ == 0x07 {
			break
		}
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && err == nil {
		t.Errorf("connection still open after the A-ABORT")
	}
}

func crFilm(uid string) []byte {
	f := dicomtest.Image{Rows: 64, Columns: 64, BitsAllocated: 16, BitsStored: 12, Pixels: make([]int, 64*64),
		Modality: "CR", BodyPart: "CHEST", View: "PA", SOPInstanceUID: uid}.File()
	f.SOPClassUID = SOPClassCR
	return f.Bytes()
}

// dataSet strips the preamble and file meta of a Part 10 file.
func dataSet(t testing.TB, file []byte) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint32(file[132+8:])
	return file[132+12+int(n):]
}

func storeCmd(class, inst string) []byte {
	return (&ul.Command{Field: ul.CStoreRQ, MessageID: 1, AffectedClass: class, AffectedInst: inst, DataSetType: 0}).Encode()
}

func TestHostilePDUClaiming4GiB(t *testing.T) {
	s := startSCP(t, nil)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// Before association: an A-ASSOCIATE-RQ claiming 4 GiB.
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{0x01, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	expectAbort(t, conn)
	// Established: a P-DATA-TF claiming 4 GiB.
	a := associate(t, s)
	a.Conn().Write([]byte{0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0})
	expectAbort(t, a.Conn())
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<20 {
		t.Errorf("heap grew %d MiB after PDUs claiming 4 GiB", grew>>20)
	}
	waitStat(t, s, "aborted_protocol", 1)
}

func waitStat(t *testing.T, s *scp, outcome string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.srv.Stats().Associations[outcome] < n {
		if time.Now().After(deadline) {
			t.Fatalf("associations %v, want %d %s", s.srv.Stats().Associations, n, outcome)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHostileFragmentFlood(t *testing.T) {
	s := startSCP(t, func(o *Options, _ *spool.Options) { o.Limits.MaxFragments = 1000 })
	a := associate(t, s)
	pc, _ := a.FindContext(SOPClassCR, "")
	conn := a.Conn()
	conn.Write(pdata(pc.ID, true, true, storeCmd(SOPClassCR, "1.2.3.4")))
	go func() {
		// Empty fragments, never the last: no progress, only CPU.
		frag := pdata(pc.ID, false, false, nil)
		var burst []byte
		for range 100 {
			burst = append(burst, frag...)
		}
		for range 1000 {
			if _, err := conn.Write(burst); err != nil {
				return
			}
		}
	}()
	expectAbort(t, conn)
	waitStat(t, s, "aborted_protocol", 1)
	if n := len(s.stored(t)); n != 0 {
		t.Errorf("%d films stored from a flood", n)
	}
	s.noTemporaries(t)
}

func TestHostileIdleAssociation(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: waits for a 1s idle timeout")
	}
	s := startSCP(t, func(o *Options, _ *spool.Options) { o.Limits.IdleTimeout = time.Second })
	a := associate(t, s)
	start := time.Now()
	expectAbort(t, a.Conn())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle association aborted after %s, want about 1s", d)
	}
	waitStat(t, s, "aborted_idle", 1)
}

func TestHostileTruncatedDataSet(t *testing.T) {
	s := startSCP(t, nil)
	a := associate(t, s)
	ds := dataSet(t, crFilm("1.2.826.0.1.3680043.10.1234.77"))
	// Cut inside the pixel data: the element claims more than arrives.
	r, err := a.Store(SOPClassCR, "1.2.826.0.1.3680043.10.1234.77", dicomtest.ExplicitLE, bytesReader(ds[:len(ds)-100]))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status&0xF000 != 0xC000 {
		t.Errorf("truncated data set: status %04X, want Cxxx (cannot understand)", r.Status)
	}
	// The association goes on: a C-ECHO and a good film still work.
	if err := a.Echo(); err != nil {
		t.Fatalf("C-ECHO after a refused instance: %v", err)
	}
	r, err = a.Store(SOPClassCR, "1.2.826.0.1.3680043.10.1234.77", dicomtest.ExplicitLE, bytesReader(ds))
	if err != nil || r.Status != 0 {
		t.Fatalf("good film after a truncated one: %04X %v", r.Status, err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.stored(t)); n != 1 {
		t.Errorf("%d films stored, want 1", n)
	}
	s.noTemporaries(t)
	if st := s.srv.Stats(); st.Instances["cannot_understand"] != 1 || st.Instances["success"] != 1 {
		t.Errorf("instances %v", st.Instances)
	}
}

func TestHostileUnknownSOPClass(t *testing.T) {
	s := startSCP(t, nil)
	a := associate(t, s, ul.PresentationContext{Abstract: "1.2.826.0.1.3680043.10.1234.999", Transfer: []string{dicomtest.ExplicitLE}},
		ul.PresentationContext{Abstract: SOPClassDXPresentation, Transfer: []string{"1.2.840.10008.1.2.4.100"}})
	if _, ok := a.FindContext("1.2.826.0.1.3680043.10.1234.999", ""); ok {
		t.Errorf("unknown SOP class accepted")
	}
	if _, ok := a.FindContext(SOPClassDXPresentation, ""); ok {
		t.Errorf("DX accepted in MPEG2, which the decoder does not read")
	}
	if _, ok := a.FindContext(SOPClassCR, ""); !ok {
		t.Fatalf("CR refused alongside an unknown SOP class")
	}
	// A C-STORE whose SOP class is not its context's.
	pc, _ := a.FindContext(SOPClassCR, "")
	conn := a.Conn()
	conn.Write(pdata(pc.ID, true, true, storeCmd("1.2.826.0.1.3680043.10.1234.999", "1.2.3")))
	conn.Write(pdata(pc.ID, false, true, dataSet(t, crFilm("1.2.3"))))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, body, err := ul.ReadPDU(conn, 1<<20, nil)
	if err != nil || typ != 0x04 {
		t.Fatalf("no response: %v type %d", err, typ)
	}
	pdv, _, err := ul.NextPDV(body)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ul.DecodeCommand(pdv.Data)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Status != ul.StatusSOPClassNotSupport {
		t.Errorf("status %04X, want 0122", cmd.Status)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskFullRefusedA700(t *testing.T) {
	s := startSCP(t, func(_ *Options, so *spool.Options) { so.MinFreeBytes = 1 << 62 })
	a := associate(t, s)
	r, err := a.Store(SOPClassCR, "1.2.826.0.1.3680043.10.1234.78", dicomtest.ExplicitLE, bytesReader(dataSet(t, crFilm("1.2.826.0.1.3680043.10.1234.78"))))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != ul.StatusOutOfResources {
		t.Errorf("disk full: status %04X, want A700", r.Status)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.stored(t)); n != 0 {
		t.Errorf("%d films stored on a full disk", n)
	}
	s.noTemporaries(t)
}

func TestAssociationLimit(t *testing.T) {
	s := startSCP(t, func(o *Options, _ *spool.Options) { o.MaxAssociations = 1 })
	a := associate(t, s)
	_, err := ul.Dial(context.Background(), s.addr, ul.SCUOptions{CallingAE: "SECOND", CalledAE: "TRIAGED",
		Contexts: []ul.PresentationContext{{Abstract: ul.VerificationSOPClass, Transfer: []string{dicomtest.ImplicitLE}}}})
	var rj ul.RJ
	if !errors.As(err, &rj) || rj.Result != ul.RJTransient || rj.Reason != ul.RJPresentnLocalLimit {
		t.Errorf("second association: %v, want a transient local-limit rejection", err)
	}
	if err := a.Echo(); err != nil {
		t.Fatal(err)
	}
	a.Release()
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestBytesInFlightRefusedA700(t *testing.T) {
	s := startSCP(t, func(o *Options, _ *spool.Options) { o.MaxBytesInFlight = 4096 })
	a := associate(t, s)
	r, err := a.Store(SOPClassCR, "1.2.826.0.1.3680043.10.1234.79", dicomtest.ExplicitLE, bytesReader(dataSet(t, crFilm("1.2.826.0.1.3680043.10.1234.79"))))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != ul.StatusOutOfResources {
		t.Errorf("over max bytes in flight: status %04X, want A700", r.Status)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.stored(t)); n != 0 {
		t.Errorf("%d films stored", n)
	}
	s.noTemporaries(t)
}

func TestFloodCountedAsFailureNotCannotUnderstand(t *testing.T) {
	s := startSCP(t, func(o *Options, _ *spool.Options) { o.Limits.MaxFragments = 10 })
	a := associate(t, s)
	pc, _ := a.FindContext(SOPClassCR, "")
	conn := a.Conn()
	conn.Write(pdata(pc.ID, true, true, storeCmd(SOPClassCR, "1.2.3.4")))
	for range 20 {
		conn.Write(pdata(pc.ID, false, false, nil))
	}
	expectAbort(t, conn)
	waitStat(t, s, "aborted_protocol", 1)
	if st := s.srv.Stats(); st.Instances["cannot_understand"] != 0 || st.Instances["failed"] != 1 {
		t.Errorf("instances %v, want 1 failed", st.Instances)
	}
}
