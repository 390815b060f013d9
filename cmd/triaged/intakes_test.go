package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// The network intakes (C-STORE, STOW-RS) end to end through the real daemon
// subprocess: what a sender is told was stored must come out of the record
// exactly once per SOP instance (issue 14, "Done when").

// intakeDaemon is the config of a daemon with every intake on: the drop
// folder, C-STORE (AE TRIAGED) and STOW-RS (bearer token "ward7"), both
// spooling into the drop folder.
type intakeDaemon struct {
	*serviceConfig
	dimsePort, stowPort int
	path                string
}

const stowToken = "s3cret-token-for-ward7"

// filmUID is the SOP Instance UID of films(t, n)[i].
func filmUID(i int) string {
	const nih = "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888"
	return nih[:len(nih)-4] + fmt.Sprintf("%04d", i)
}

func newIntakeDaemon(t *testing.T, extra string) *intakeDaemon {
	t.Helper()
	d := &intakeDaemon{serviceConfig: newServiceConfig(t), dimsePort: testenv.FreePort(t), stowPort: testenv.FreePort(t)}
	d.write(t, extra)
	return d
}

// write renders the config file; extra is appended YAML (top-level keys
// other than those written here).
func (d *intakeDaemon) write(t *testing.T, extra string) {
	t.Helper()
	tokens := filepath.Join(d.dir, "stow.tokens")
	if err := os.WriteFile(tokens, []byte("ward7 "+stowToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// max_pdu_length at its floor (4KiB) makes a send many PDUs long, so
	// a kill lands mid-send; min_free_space low so a full /tmp elsewhere
	// on the machine does not refuse films here.
	y := fmt.Sprintf(`
log: {level: info}
nats:
  embedded: {listen: "127.0.0.1:%d", store_dir: %s, sync_always: false}
  publish_timeout: 5s
ingest:
  folders: [{path: %s}]
  settle: 100ms
  dimse: {enabled: true, listen: "127.0.0.1:%d", spool_dir: %s, max_pdu_length: 4KiB, min_free_space: 16MiB}
  dicomweb: {enabled: true, listen: "127.0.0.1:%d", token_file: %s, min_free_space: 16MiB}
pipeline: {workers: 2, drain_timeout: 20s}
models: [{path: %s}]
http: {listen: "127.0.0.1:%d"}
`, d.port, filepath.Join(d.dir, "nats"), d.drop, d.dimsePort, d.drop, d.stowPort, tokens,
		testenv.Model(t, "squeezenet1_1"), d.httpPort) + extra
	d.path = filepath.Join(d.dir, "triaged.yaml")
	if err := os.WriteFile(d.path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs the daemon and waits for READY.
func (d *intakeDaemon) start(t *testing.T) *service {
	t.Helper()
	ns := listenNotify(t)
	s := startService(t, ns, nil, d.path)
	ns.waitFor(t, 0, 120*time.Second, "READY=1")
	return s
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("skipping: %s not found (Debian package %s)", tool, pkg)
	}
}

// sopUID reads a file's SOP Instance UID with dcmtk's dcmdump, an
// implementation independent of ours.
func sopUID(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("dcmdump", "-q", "+P", "0008,0018", path).Output()
	if err != nil {
		t.Fatalf("dcmdump %s: %v", path, err)
	}
	m := regexp.MustCompile(`\[([0-9.]+)\]`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("dcmdump %s: no SOP Instance UID in %q", path, out)
	}
	return string(m[1])
}

// storeRun is a storescu send: the files it reported stored (status
// Success), in order, and its whole output.
type storeRun struct {
	stored []string
	out    string
	err    error
}

var (
	sendingRe = regexp.MustCompile(`Sending file: (.+)$`)
	successRe = regexp.MustCompile(`Received Store Response \(Success\)`)
)

// storescu sends files over one association as AE aet, proposing only the
// files' SOP classes (-R) with the transfer syntaxes xfer chooses (for
// example -xw: JPEG 2000 and the uncompressed ones), and goes on after a
// failed store (-nh). onStored, if set, is called with the count of files
// stored so far.
func storescu(t *testing.T, port int, aet, xfer string, files []string, onStored func(int)) storeRun {
	t.Helper()
	args := append([]string{"-v", "-R", xfer, "-nh", "-aet", aet, "-aec", "TRIAGED", "127.0.0.1", fmt.Sprint(port)}, files...)
	cmd := exec.Command("storescu", args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); waited <- err }()
	var r storeRun
	var out strings.Builder
	cur := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if m := sendingRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
		} else if successRe.MatchString(line) && cur != "" {
			r.stored = append(r.stored, cur)
			cur = ""
			if onStored != nil {
				onStored(len(r.stored))
			}
		}
	}
	r.err, r.out = <-waited, out.String()
	return r
}

// record is what the daemon stored for each SOP instance.
type record struct {
	results map[string][]publish.Result
	skipped map[string][]publish.Event
	errors  []publish.Event
}

func readRecord(t *testing.T, url string) record {
	t.Helper()
	r := record{results: map[string][]publish.Result{}, skipped: map[string][]publish.Event{}}
	for _, m := range testenv.StreamMessages(t, url, "TRIAGED_RESULTS") {
		switch m.Subject {
		case "triaged.result":
			var v publish.Result
			if err := json.Unmarshal(m.Data, &v); err != nil {
				t.Fatal(err)
			}
			r.results[v.Film.SOPInstanceUID] = append(r.results[v.Film.SOPInstanceUID], v)
		case "triaged.skipped", "triaged.error":
			var v publish.Event
			if err := json.Unmarshal(m.Data, &v); err != nil {
				t.Fatal(err)
			}
			if m.Subject == "triaged.error" || v.Film == nil {
				r.errors = append(r.errors, v)
				continue
			}
			r.skipped[v.Film.SOPInstanceUID] = append(r.skipped[v.Film.SOPInstanceUID], v)
		}
	}
	return r
}

// waitRecord polls the record (gently: the machine is shared) until every
// uid has a result or a skipped event.
func waitRecord(t *testing.T, url string, uids map[string]bool, timeout time.Duration) record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := readRecord(t, url)
		missing := 0
		for u := range uids {
			if len(r.results[u])+len(r.skipped[u]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d instances have neither a result nor a skipped event (errors: %+v)", timeout, missing, len(uids), r.errors)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// settled waits until the drop folder holds nothing waiting or in process,
// so late duplicates would be in the record before it is checked.
func settled(t *testing.T, drop string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, "the drop folder to drain", func() bool {
		time.Sleep(100 * time.Millisecond)
		return count(drop) == 0 && count(filepath.Join(drop, ".processing")) == 0 && count(filepath.Join(drop, ".spool")) == 0
	})
}

// A multi-file storescu send of the shared films: every instance the
// sender was told was stored has exactly one result, or one skipped event
// when the routing filter turns it away (the extremity film), marked as
// received by C-STORE from the calling AE. Lossless transcodes keep their
// original's UID: two files, one result.
func TestStorescuSendYieldsOneResultPerInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon and dcmtk's storescu (tens of seconds)")
	}
	needTool(t, "storescu", "dcmtk")
	needTool(t, "dcmdump", "dcmtk")
	testenv.ORT(t)
	files := []string{
		testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"),
		testenv.DICOM(t, "derived/nih_dx_bigendian.dcm"), // same instance, explicit big endian
		testenv.DICOM(t, "original/RG1_J2KI.dcm"),        // chest CR, JPEG 2000, MONOCHROME1
		testenv.DICOM(t, "derived/RG1_chest_CR_mono1_explicitLE.dcm"),
		testenv.DICOM(t, "original/RG3_J2KI.dcm"), // extremity: skipped
	}
	uids := map[string]bool{}
	for _, f := range files {
		uids[sopUID(t, f)] = true
	}
	if len(uids) != 3 {
		t.Fatalf("expected 3 distinct instances among the shared films, got %d", len(uids))
	}

	d := newIntakeDaemon(t, "")
	s := d.start(t)
	run := storescu(t, d.dimsePort, "TESTSCU", "-xw", files, nil)
	if run.err != nil || len(run.stored) != len(files) {
		t.Fatalf("storescu: %v, %d of %d stored\n%s", run.err, len(run.stored), len(files), run.out)
	}
	r := waitRecord(t, d.url(), uids, 180*time.Second)
	settled(t, d.drop, 60*time.Second)
	r = readRecord(t, d.url())

	skippedOnes := 0
	for u := range uids {
		res, sk := r.results[u], r.skipped[u]
		if len(res)+len(sk) != 1 {
			t.Errorf("instance %s: %d results and %d skipped events, want exactly one of them", u, len(res), len(sk))
			continue
		}
		var src publish.Source
		if len(res) == 1 {
			src = res[0].Source
		} else {
			skippedOnes++
			src = sk[0].Source
			if sk[0].Film.BodyPart == "CHEST" {
				t.Errorf("chest instance %s skipped: %s %s", u, sk[0].Code, sk[0].Reason)
			}
		}
		if src.Kind != "dimse" || src.Sender != "TESTSCU" {
			t.Errorf("instance %s: source %+v, want kind dimse, sender TESTSCU", u, src)
		}
	}
	if skippedOnes != 1 {
		t.Errorf("%d instances skipped, want 1 (the extremity film)", skippedOnes)
	}
	if len(r.errors) != 0 {
		t.Errorf("error events: %+v", r.errors)
	}
	if n := count(filepath.Join(d.drop, "done")); n != len(files) {
		t.Errorf("%d files in done/, want %d (one per file received)", n, len(files))
	}
	s.stop(t, 60*time.Second)
}

// Kill -9 of the daemon in the middle of a multi-film storescu send,
// restart on the same folders and NATS store, resend what storescu did not
// report stored: every film it was told was stored has exactly one
// result; none lost, none doubled.
func TestKill9DuringStorescuSendLosesNothingAndDoublesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon twice and dcmtk's storescu (a minute or more)")
	}
	needTool(t, "storescu", "dcmtk")
	testenv.ORT(t)
	const n = 40
	src := t.TempDir()
	var files []string
	uids := map[string]bool{}
	uidOf := map[string]string{}
	for i, f := range films(t, n) {
		p := filepath.Join(src, fmt.Sprintf("film%02d.dcm", i))
		if err := os.WriteFile(p, f, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		u := filmUID(i)
		uids[u], uidOf[p] = true, u
	}

	d := newIntakeDaemon(t, "")
	s := d.start(t)
	const killAfter = 3
	killed := make(chan struct{})
	first := storescu(t, d.dimsePort, "MODALITY1", "-xe", files, func(stored int) {
		if stored == killAfter {
			s.cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		}
	})
	select {
	case <-killed:
	default:
		t.Fatalf("storescu stored only %d films; the kill never happened\n%s", len(first.stored), first.out)
	}
	<-s.exited
	t.Logf("kill -9 after %d stored; storescu reported %d of %d stored before it gave up (exit: %v)", killAfter, len(first.stored), n, first.err)
	if len(first.stored) == n {
		t.Fatalf("every film was stored before the kill took effect; the test proves nothing\n%s", first.out)
	}
	told := map[string]bool{}
	for _, f := range first.stored {
		told[f] = true
	}
	var resend []string
	for _, f := range files {
		if !told[f] {
			resend = append(resend, f)
		}
	}

	s2 := d.start(t)
	second := storescu(t, d.dimsePort, "MODALITY1", "-xe", resend, nil)
	if second.err != nil || len(second.stored) != len(resend) {
		t.Fatalf("resend after the restart: %v, %d of %d stored\n%s", second.err, len(second.stored), len(resend), second.out)
	}
	waitRecord(t, d.url(), uids, 240*time.Second)
	settled(t, d.drop, 60*time.Second)
	r := readRecord(t, d.url())
	for _, f := range files {
		u := uidOf[f]
		if c := len(r.results[u]); c != 1 {
			t.Errorf("%s (instance %s, told stored in the first send: %v): %d results", filepath.Base(f), u, told[f], c)
		}
		for _, res := range r.results[u] {
			if res.Source.Kind != "dimse" || res.Source.Sender != "MODALITY1" {
				t.Errorf("instance %s: source %+v", u, res.Source)
			}
		}
	}
	if len(r.results) != n || len(r.skipped) != 0 || len(r.errors) != 0 {
		t.Errorf("record: %d instances with results (want %d), %d skipped, %d errors", len(r.results), n, len(r.skipped), len(r.errors))
	}
	if c := count(filepath.Join(d.drop, "failed")); c != 0 {
		t.Errorf("%d films failed", c)
	}
	// A film made durable just before the kill but never confirmed was
	// sent again: two files, one result.
	t.Logf("%d files in done/ for %d instances", count(filepath.Join(d.drop, "done")), n)
	s2.stop(t, 60*time.Second)
}

// STOW-RS through the daemon: one multipart/related request with two
// films, answered 200 with both in ReferencedSOPSequence; each yields one
// result marked dicomweb from the token's label.
func TestStowRSYieldsOneResultPerInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon (tens of seconds)")
	}
	testenv.ORT(t)
	fs := films(t, 2)
	uids := map[string]bool{}
	for i := range fs {
		uids[filmUID(i)] = true
	}
	d := newIntakeDaemon(t, "")
	s := d.start(t)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fs {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(f)
	}
	mw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/dicomweb/studies", d.stowPort), &body)
	req.Header.Set("Content-Type", fmt.Sprintf(`multipart/related; type="application/dicom"; boundary=%s`, mw.Boundary()))
	req.Header.Set("Accept", "application/dicom+json")
	req.Header.Set("Authorization", "Bearer "+stowToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("STOW-RS: %d %s", resp.StatusCode, rb)
	}
	var ans map[string]struct {
		VR    string           `json:"vr"`
		Value []map[string]any `json:"Value"`
	}
	if err := json.Unmarshal(rb, &ans); err != nil {
		t.Fatalf("STOW-RS response is not DICOM JSON: %v\n%s", err, rb)
	}
	refs := ans["00081199"].Value
	if len(refs) != 2 || len(ans["00081198"].Value) != 0 {
		t.Fatalf("ReferencedSOPSequence has %d items, FailedSOPSequence %d, want 2 and 0:\n%s", len(refs), len(ans["00081198"].Value), rb)
	}
	for _, it := range refs {
		v, _ := json.Marshal(it["00081155"])
		found := false
		for u := range uids {
			found = found || strings.Contains(string(v), u)
		}
		if !found {
			t.Errorf("ReferencedSOPInstanceUID %s is not one of the films sent", v)
		}
	}

	waitRecord(t, d.url(), uids, 120*time.Second)
	settled(t, d.drop, 60*time.Second)
	r := readRecord(t, d.url())
	for u := range uids {
		if len(r.results[u]) != 1 {
			t.Errorf("instance %s: %d results", u, len(r.results[u]))
			continue
		}
		if src := r.results[u][0].Source; src.Kind != "dicomweb" || src.Sender != "ward7" {
			t.Errorf("instance %s: source %+v, want kind dicomweb, sender ward7", u, src)
		}
	}
	if len(r.results) != 2 || len(r.errors) != 0 {
		t.Errorf("record: %d instances with results, %d errors", len(r.results), len(r.errors))
	}
	s.stop(t, 60*time.Second)
}

// startOrthanc runs Orthanc on loopback with a temporary database, the
// daemon as DICOM modality "triaged" (AE TRIAGED) and as DICOMweb server
// "triaged" (with the STOW-RS token); it returns the REST root.
func startOrthanc(t *testing.T, d *intakeDaemon) string {
	t.Helper()
	return orthanc.Start(t, orthanc.Options{DICOM: true, DICOMweb: true, Config: map[string]any{
		"DicomModalities": map[string]any{"triaged": []any{"TRIAGED", "127.0.0.1", d.dimsePort}},
		"DicomWeb": map[string]any{"Enable": true, "Servers": map[string]any{"triaged": map[string]any{
			"Url":         fmt.Sprintf("http://127.0.0.1:%d/dicomweb/", d.stowPort),
			"HttpHeaders": map[string]string{"Authorization": "Bearer " + stowToken},
		}}},
	}}).URL
}

// orthancPost posts to Orthanc's REST API and decodes its JSON answer.
func orthancPost(t *testing.T, url, ctype string, body []byte) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, raw)
	}
	return m
}

// Orthanc, with the daemon configured as a DICOM modality and as a
// DICOMweb server, pushes films through its REST API by C-STORE and by
// STOW-RS: Orthanc is told they were stored, and each instance yields
// exactly one result, marked with the intake and the sender.
func TestOrthancPushesByCStoreAndSTOWThroughTheDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon and Orthanc (tens of seconds)")
	}
	testenv.ORT(t)
	d := newIntakeDaemon(t, "")
	root := startOrthanc(t, d)
	s := d.start(t)

	rg1, err := os.ReadFile(testenv.DICOM(t, "original/RG1_J2KI.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	copies := films(t, 2)
	upload := func(b []byte) (id, uid string) {
		m := orthancPost(t, root+"/instances", "application/dicom", b)
		id, _ = m["ID"].(string)
		tags := map[string]any{}
		r, err := http.Get(root + "/instances/" + id + "/simplified-tags")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(r.Body).Decode(&tags)
		r.Body.Close()
		uid, _ = tags["SOPInstanceUID"].(string)
		return id, uid
	}
	idA, uidA := upload(copies[0])
	idB, uidB := upload(rg1)
	idC, uidC := upload(copies[1])

	req, _ := json.Marshal(map[string]any{"Resources": []string{idA, idB}, "Synchronous": true})
	st := orthancPost(t, root+"/modalities/triaged/store", "application/json", req)
	if st["InstancesCount"] != float64(2) || st["FailedInstancesCount"] != float64(0) {
		t.Fatalf("Orthanc's C-STORE push: %v", st)
	}
	req, _ = json.Marshal(map[string]any{"Resources": []string{idC}, "Synchronous": true})
	orthancPost(t, root+"/dicom-web/servers/triaged/stow", "application/json", req)

	want := map[string]publish.Source{uidA: {Kind: "dimse", Sender: "ORTHANC"}, uidB: {Kind: "dimse", Sender: "ORTHANC"}, uidC: {Kind: "dicomweb", Sender: "ward7"}}
	uids := map[string]bool{uidA: true, uidB: true, uidC: true}
	if len(uids) != 3 {
		t.Fatalf("instance UIDs from Orthanc: %q %q %q", uidA, uidB, uidC)
	}
	waitRecord(t, d.url(), uids, 180*time.Second)
	settled(t, d.drop, 60*time.Second)
	r := readRecord(t, d.url())
	for u, w := range want {
		if len(r.results[u]) != 1 {
			t.Errorf("instance %s: %d results, want 1", u, len(r.results[u]))
			continue
		}
		if src := r.results[u][0].Source; src.Kind != w.Kind || src.Sender != w.Sender {
			t.Errorf("instance %s: source %+v, want kind %s, sender %s", u, src, w.Kind, w.Sender)
		}
	}
	if len(r.results) != 3 || len(r.skipped) != 0 || len(r.errors) != 0 {
		t.Errorf("record: %d instances with results, %d skipped, %d errors", len(r.results), len(r.skipped), len(r.errors))
	}
	s.stop(t, 60*time.Second)
}
