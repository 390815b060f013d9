package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// A daemon started while NATS is unreachable (a host rebooted during an
// outage) does not exit, which with the unit's start limit would leave it
// down for good: it stays up, healthy but not ready with the reason,
// claims nothing, and starts by itself once NATS is there.
func TestStartsWithoutNATSAndProceedsWhenItAppears(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	dir := t.TempDir()
	natsPort, httpPort := testenv.FreePort(t), testenv.FreePort(t)
	drop := filepath.Join(dir, "incoming")
	cfg := fmt.Sprintf(`
nats: {url: "nats://127.0.0.1:%d", connect_timeout: 2s}
ingest: {folders: [{path: %s}], settle: 100ms}
pipeline: {workers: 2, drain_timeout: 20s}
http: {listen: "127.0.0.1:%d"}
models: [{path: %s}]
`, natsPort, drop, httpPort, testenv.Model(t, "squeezenet1_1"))
	cfgPath := filepath.Join(dir, "triaged.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(drop, 0o750); err != nil {
		t.Fatal(err)
	}
	film := films(t, 1)[0]
	if err := os.WriteFile(filepath.Join(drop, "waiting.dcm"), film, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "TRIAGED_TEST_MAIN=1")
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "triaged is ready") {
				once = true
				close(ready)
			}
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", httpPort, path))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 60*time.Second, "/readyz says it waits for NATS", func() bool {
		code, body := get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "waiting for NATS")
	})
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %s", code, body)
	}
	time.Sleep(3 * time.Second) // several connection attempts fail meanwhile
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited while NATS was unreachable: %v", err)
	default:
	}
	if _, err := os.Stat(filepath.Join(drop, "waiting.dcm")); err != nil {
		t.Errorf("a film was claimed while NATS was unreachable: %v", err)
	}

	srv := testenv.NATSWith(t, &server.Options{Port: natsPort})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("the daemon exited: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("the daemon did not become ready after NATS appeared")
	}
	testenv.Eventually(t, 60*time.Second, "the waiting film scored", func() bool {
		return len(testenv.Stored[publish.Result](t, srv.ClientURL(), "TRIAGED_RESULTS", "triaged.result")) == 1
	})
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after NATS came: %d %s", code, body)
	}
}
