package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// TestMain lets the test binary act as the triaged binary: the subprocess
// tests run it with TRIAGED_TEST_MAIN=1, so the daemon they kill is the real
// program, race detector included.
func TestMain(m *testing.M) {
	if os.Getenv("TRIAGED_TEST_MAIN") == "1" {
		enableTestFailpoints()
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	// The embedded defaults name paths relative to the repository root, as
	// `make run` uses them.
	if err := os.Chdir(testenv.Root()); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// daemonProc is a triaged subprocess.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	ready  chan struct{}
	exited chan error
}

func startProc(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TRIAGED_TEST_MAIN=1")
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	p := &daemonProc{cmd: cmd, stderr: &bytes.Buffer{}, ready: make(chan struct{}), exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.stderr.WriteString(line + "\n")
			if !once && strings.Contains(line, "triaged is ready") {
				once = true
				close(p.ready)
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	select {
	case <-p.ready:
	case err := <-p.exited:
		t.Fatalf("triaged exited before ready: %v\n%s", err, p.stderr)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("triaged not ready\n%s", p.stderr)
	}
	return p
}

func writeConfig(t *testing.T, dir string, port int) string {
	t.Helper()
	cfg := fmt.Sprintf(`
log: {level: info}
nats:
  embedded: {listen: "127.0.0.1:%d", store_dir: %s}
ingest:
  folders: [{path: %s}]
  settle: 100ms
pipeline: {workers: 4, drain_timeout: 20s}
http: {listen: "127.0.0.1:0"} # several daemons run at once in tests
models: [{path: %s}]
`, port, filepath.Join(dir, "nats"), filepath.Join(dir, "incoming"), testenv.Model(t, "squeezenet1_1"))
	p := filepath.Join(dir, "triaged.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// films makes n copies of a real chest film, each a distinct instance: the
// SOP Instance UID's last digits are replaced in place (same length).
func films(t *testing.T, n int) [][]byte {
	t.Helper()
	src, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte("1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888")
	if bytes.Count(src, uid) < 2 {
		t.Fatal("expected the SOP Instance UID in the file meta and the data set")
	}
	out := make([][]byte, n)
	for i := range out {
		nu := append(append([]byte(nil), uid[:len(uid)-4]...), []byte(fmt.Sprintf("%04d", i))...)
		out[i] = bytes.ReplaceAll(src, uid, nu)
	}
	return out
}

func count(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".reason.json") {
			n++
		}
	}
	return n
}

// Kill -9 with films in flight, restart: every film ends in done/ with
// exactly one result message.
func TestKill9WhileInFlightLosesNothingAndDoublesNothing(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cfgPath := writeConfig(t, dir, port)
	drop := filepath.Join(dir, "incoming")
	const n = 40

	p := startProc(t, "run", "-config", cfgPath)
	for i, f := range films(t, n) {
		tmp := filepath.Join(drop, fmt.Sprintf(".f%02d.tmp", i))
		os.WriteFile(tmp, f, 0o644)
		os.Rename(tmp, filepath.Join(drop, fmt.Sprintf("f%02d.dcm", i)))
	}
	testenv.Eventually(t, 60*time.Second, "some films done", func() bool { return count(filepath.Join(drop, "done")) >= 5 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	doneAtKill, inFlight := count(filepath.Join(drop, "done")), count(filepath.Join(drop, ".processing"))
	t.Logf("killed with %d done, %d in processing", doneAtKill, inFlight)
	if doneAtKill == n {
		t.Fatal("all films finished before the kill; the test proves nothing")
	}

	p2 := startProc(t, "run", "-config", cfgPath)
	testenv.Eventually(t, 120*time.Second, "all films done", func() bool { return count(filepath.Join(drop, "done")) == n })
	if c := count(filepath.Join(drop, ".processing")); c != 0 {
		t.Errorf("%d films left in processing", c)
	}
	if c := count(filepath.Join(drop, "failed")); c != 0 {
		t.Errorf("%d films failed", c)
	}
	per := map[string]int{}
	for _, r := range testenv.Stored[publish.Result](t, fmt.Sprintf("nats://127.0.0.1:%d", port), "TRIAGED_RESULTS", "triaged.result") {
		per[r.Film.SOPInstanceUID]++
	}
	if len(per) != n {
		t.Errorf("results for %d instances, want %d", len(per), n)
	}
	for uid, c := range per {
		if c != 1 {
			t.Errorf("instance %s has %d results", uid, c)
		}
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p2.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, p2.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Error("no exit after SIGTERM")
	}
}
