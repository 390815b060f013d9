package dimse

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestCrashChild is the SCP process that TestKill9DuringSend kills; it
// runs only when that test starts it.
func TestCrashChild(t *testing.T) {
	dir, addr := os.Getenv("DIMSE_CRASH_DIR"), os.Getenv("DIMSE_CRASH_ADDR")
	if dir == "" {
		t.Skip("only run as TestKill9DuringSend's child process")
	}
	sp, err := spool.Open(dir, spool.Options{MinFreeBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{AETitle: "TRIAGED", Spool: sp, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(context.Background(), ln)
}

func startChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "DIMSE_CRASH_DIR="+dir, "DIMSE_CRASH_ADDR="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("SCP child did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKill9DuringSend kills the SCP process with SIGKILL in the middle of
// a multi-film storescu send: every film storescu was told is stored is in
// the drop folder, complete; nothing half-written is visible; after a
// restart the spool is clean and sends succeed again.
func TestKill9DuringSend(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs dcmtk's storescu against a child process")
	}
	needTool(t, "storescu", "dcmtk")
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	child := startChild(t, dir, addr)
	var films []string
	for _, f := range chestFilms(t) {
		switch header(t, f).TransferSyntax {
		case "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2":
			for range 10 {
				films = append(films, f)
			}
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// +II: a new SOP instance UID per send, so every film is distinct.
	sc := exec.CommandContext(ctx, "storescu", append([]string{"-v", "+II", "-aec", "TRIAGED", host, port}, films...)...)
	out, _ := sc.StdoutPipe()
	sc.Stderr = sc.Stdout
	if err := sc.Start(); err != nil {
		t.Fatal(err)
	}
	successes, killed := 0, false
	var transcript strings.Builder
	sr := bufio.NewScanner(out)
	for sr.Scan() {
		line := sr.Text()
		transcript.WriteString(line + "\n")
		if strings.Contains(line, "Received Store Response") && strings.Contains(line, "Success") {
			successes++
			if successes == 5 && !killed {
				child.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
	}
	sc.Wait()
	child.Wait()
	if !killed {
		t.Fatalf("storescu finished before the kill (%d successes):\n%s", successes, transcript.String())
	}
	committed, _ := os.ReadDir(dir)
	n := 0
	for _, e := range committed {
		if e.Type().IsRegular() {
			n++
			header(t, filepath.Join(dir, e.Name())) // complete and parseable
		}
	}
	// Every Success is in the folder; at most one more film was made
	// durable whose response the kill cut off.
	if n < successes || n > successes+1 {
		t.Errorf("%d films in the drop folder, storescu was told %d were stored", n, successes)
	}
	// Restart: the temporary area is cleaned, new sends succeed.
	child = startChild(t, dir, addr)
	defer func() { child.Process.Kill(); child.Wait() }()
	if ents, _ := os.ReadDir(filepath.Join(dir, ".spool")); len(ents) != 0 {
		t.Errorf("%d temporary files after the restart", len(ents))
	}
	if o, err := run(t, "storescu", "-aec", "TRIAGED", host, port, films[0]); err != nil {
		t.Errorf("send after restart: %v\n%s", err, o)
	}
	t.Logf("killed after %d successes; %d films durable", successes, n)
}
