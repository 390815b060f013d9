package dimse

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/decode"
	ul "github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// needTool skips a test whose Debian program is absent, naming the package.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s not found (install the Debian package %s)", name, pkg)
	}
	return p
}

type scp struct {
	srv  *Server
	addr string
	host string
	port string
	dir  string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSCP runs a storage SCP on a loopback port from the OS until the
// test ends.
func startSCP(t testing.TB, mutate func(*Options, *spool.Options)) *scp {
	t.Helper()
	dir := t.TempDir()
	so := spool.Options{MinFreeBytes: 1 << 20}
	o := Options{AETitle: "TRIAGED", Limits: ul.Limits{ARTIM: 5 * time.Second, IdleTimeout: 10 * time.Second}}
	if mutate != nil {
		mutate(&o, &so)
	}
	sp, err := spool.Open(dir, so)
	if err != nil {
		t.Fatal(err)
	}
	o.Spool = sp
	logs := &syncBuffer{}
	o.Log = zerolog.New(logs)
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln := testenv.Serve(t, srv.Serve)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return &scp{srv: srv, addr: ln.Addr().String(), host: host, port: port, dir: dir, logs: logs}
}

// stored lists the films committed into the drop folder.
func (s *scp) stored(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(s.dir, e.Name()))
		}
	}
	return out
}

// noTemporaries checks that nothing half-written is left in the spool.
func (s *scp) noTemporaries(t testing.TB) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.dir, ".spool"))
	if len(ents) != 0 {
		t.Errorf("%d temporary files left in the spool", len(ents))
	}
}

func header(t testing.TB, path string) *decode.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	h, err := decode.ReadHeader(f, fi.Size(), decode.Limits{})
	if err != nil {
		t.Fatalf("stored film %s does not parse: %v", filepath.Base(path), err)
	}
	return h
}

func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func TestEchoSCU(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's echoscu")
	}
	needTool(t, "echoscu", "dcmtk")
	s := startSCP(t, nil)
	if out, err := run(t, "echoscu", "-aet", "MODALITY", "-aec", "TRIAGED", s.host, s.port); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
	// A wrong called AE title is rejected (called AE title not recognized).
	out, err := run(t, "echoscu", "-aet", "MODALITY", "-aec", "OTHER", s.host, s.port)
	if err == nil || !strings.Contains(strings.ToLower(out), "called ae title not recognized") {
		t.Errorf("echoscu to a wrong called AE: err %v, output:\n%s", err, out)
	}
	st := s.srv.Stats()
	if st.Associations["released"] != 1 || st.Associations["rejected_called_ae"] != 1 {
		t.Errorf("associations %v, want 1 released and 1 rejected_called_ae", st.Associations)
	}
}

// chestFilms are the shared films a chest intake takes, by file name.
func chestFilms(t testing.TB) []string {
	d := testenv.DICOM(t, "")
	var out []string
	for _, sub := range []string{"original", "derived"} {
		ents, err := os.ReadDir(filepath.Join(d, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "RG3") { // extremity, fine too, but keep the run short
				continue
			}
			out = append(out, filepath.Join(d, sub, e.Name()))
		}
	}
	return out
}

func TestStorescuEverySyntax(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's storescu")
	}
	needTool(t, "storescu", "dcmtk")
	s := startSCP(t, nil)
	films := chestFilms(t)
	want := map[string]string{} // SOP instance of each stored film -> TS
	for _, f := range films {
		src := header(t, f)
		// The file's own syntax first (storescu proposes it), then the
		// uncompressed ones in turn for the uncompressed films.
		opts := [][]string{{proposeOption[src.TransferSyntax]}}
		if src.TransferSyntax == "1.2.840.10008.1.2.1" {
			opts = append(opts, []string{"-xi"}, []string{"-xb"}, []string{"-xd"})
		}
		for _, o := range opts {
			args := append([]string{"-aet", "MODALITY", "-aec", "TRIAGED", "-R"}, o...)
			args = append(args, s.host, s.port, f)
			if out, err := run(t, "storescu", args...); err != nil {
				t.Errorf("storescu %v %s: %v\n%s", o, filepath.Base(f), err, out)
			}
		}
		want[src.SOPInstanceUID] = src.TransferSyntax
	}
	stored := s.stored(t)
	seen := map[string]bool{}
	for _, p := range stored {
		h := header(t, p)
		seen[h.TransferSyntax] = true
		if _, ok := want[h.SOPInstanceUID]; !ok {
			t.Errorf("stored film %s: unexpected SOP instance", filepath.Base(p))
		}
		// Every stored film decodes to pixels, like a dropped one.
		f, _ := os.Open(p)
		fi, _ := f.Stat()
		if _, err := decode.Decode(f, fi.Size(), decode.Limits{}); err != nil {
			t.Errorf("stored film %s (%s) does not decode: %v", filepath.Base(p), h.TransferSyntax, err)
		}
		f.Close()
	}
	for _, ts := range []string{"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
		"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"} {
		if !seen[ts] {
			t.Errorf("no film stored in transfer syntax %s", ts)
		}
	}
	st := s.srv.Stats()
	if int(st.Instances["success"]) != len(stored) || st.Durable.Count != uint64(len(stored)) {
		t.Errorf("stats %+v, want %d successes", st.Instances, len(stored))
	}
	t.Logf("%d films stored from %d files; stats %+v", len(stored), len(films), st.Associations)
	s.noTemporaries(t)
	if strings.Contains(s.logs.String(), want2(want)) {
		t.Errorf("a SOP instance UID appears in the logs")
	}
}

// proposeOption is storescu's option that proposes a file's syntax
// (storescu sends a compressed film only in its own syntax).
var proposeOption = map[string]string{
	"1.2.840.10008.1.2": "-xi", "1.2.840.10008.1.2.1": "-xe", "1.2.840.10008.1.2.2": "-xb", "1.2.840.10008.1.2.1.99": "-xd",
	"1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx", "1.2.840.10008.1.2.4.70": "-xs",
	"1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.90": "-xv",
	"1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr",
}

// want2 returns one SOP instance UID of the map (for the privacy check).
func want2(m map[string]string) string {
	for k := range m {
		return k
	}
	return "\x00"
}

func TestStorescuParallelAndMultiFile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's storescu")
	}
	needTool(t, "storescu", "dcmtk")
	s := startSCP(t, nil)
	var uncompressed []string
	for _, f := range chestFilms(t) {
		switch header(t, f).TransferSyntax {
		case "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2":
			uncompressed = append(uncompressed, f)
		}
	}
	films := uncompressed
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One association per sender proposing every syntax of the
			// films (storescu's config file profile would too; -x options
			// are exclusive), so send the uncompressed films together.
			args := append([]string{"-aet", "SENDER" + strconv.Itoa(i), "-aec", "TRIAGED"}, s.host, s.port)
			args = append(args, uncompressed...)
			if out, err := run(t, "storescu", args...); err != nil {
				errs <- err.Error() + "\n" + out
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := len(s.stored(t)); got != 4*len(films) {
		t.Errorf("%d films stored, want %d", got, 4*len(films))
	}
	if st := s.srv.Stats(); st.Associations["released"] != 4 {
		t.Errorf("associations %v, want 4 released", st.Associations)
	}
}

func TestStorescuRefusedSOPClass(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's storescu")
	}
	needTool(t, "storescu", "dcmtk")
	s := startSCP(t, nil)
	ct := filepath.Join(testenv.SharedData(t), "dicom-corpora", "pydicom+pydicom-data", "data_store", "data", "693_UNCI.dcm")
	cr := testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm")
	// The CT context is refused; the DX film in the same association is
	// stored and the association is released normally.
	out, err := run(t, "storescu", "-v", "-nh", "-aet", "MODALITY", "-aec", "TRIAGED", s.host, s.port, ct, cr)
	if !strings.Contains(out, "No presentation context") && !strings.Contains(out, "no presentation context") {
		t.Errorf("storescu did not report the CT context as refused (err %v):\n%s", err, out)
	}
	if got := len(s.stored(t)); got != 1 {
		t.Errorf("%d films stored, want 1 (the DX film)\n%s", got, out)
	}
	if st := s.srv.Stats(); st.Associations["released"] != 1 {
		t.Errorf("associations %v, want 1 released", st.Associations)
	}
}

func TestCallingAEAllowList(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's echoscu")
	}
	needTool(t, "echoscu", "dcmtk")
	lo := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	other := []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	s := startSCP(t, func(o *Options, _ *spool.Options) {
		o.AllowedCallers = []Caller{{AETitle: "GOOD"}, {AETitle: "LOCAL", Addresses: lo}, {AETitle: "REMOTE", Addresses: other}}
	})
	for _, c := range []struct {
		ae string
		ok bool
	}{{"GOOD", true}, {"LOCAL", true}, {"REMOTE", false}, {"STRANGER", false}} {
		out, err := run(t, "echoscu", "-aet", c.ae, "-aec", "TRIAGED", s.host, s.port)
		if (err == nil) != c.ok {
			t.Errorf("calling AE %s: err %v, want ok=%v\n%s", c.ae, err, c.ok, out)
		}
		if !c.ok && !strings.Contains(strings.ToLower(out), "calling ae title not recognized") {
			t.Errorf("calling AE %s: rejection does not say calling AE not recognized:\n%s", c.ae, out)
		}
	}
	if st := s.srv.Stats(); st.Associations["rejected_calling_ae"] != 2 {
		t.Errorf("associations %v, want 2 rejected_calling_ae", st.Associations)
	}
}
