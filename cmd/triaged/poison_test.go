package main

import (
	"encoding/json"
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

// A film that kills the daemon whenever it is decoded (a segfault in a C
// codec cannot be recovered in Go) would make systemd restart the daemon
// for ever, the film processed first at every start. The daemon marks a
// film durably before decoding it, counts a crash for each mark found at
// start, decodes a suspect alone, and quarantines it as poison_film after
// pipeline.poison_after (3) crashes; every other film is scored once.
func TestPoisonFilmIsQuarantinedAfterRepeatedCrashes(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, testenv.FreePort(t))
	drop := filepath.Join(dir, "incoming")
	if err := os.MkdirAll(drop, 0o750); err != nil {
		t.Fatal(err)
	}
	const good = 6
	fs := films(t, good+1)
	for i, f := range fs[:good] {
		if err := os.WriteFile(filepath.Join(drop, fmt.Sprintf("f%02d.dcm", i)), f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(drop, "poison.dcm"), fs[good], 0o644); err != nil {
		t.Fatal(err)
	}
	reasonFile := filepath.Join(drop, "failed", "poison.dcm.reason.json")
	finished := func() bool {
		_, err := os.Stat(reasonFile)
		return err == nil && count(filepath.Join(drop, "done")) == good
	}
	starts := 0
	for ; starts < 6 && !finished(); starts++ {
		// As systemd would: start, and start again after a crash.
		cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
		cmd.Env = append(os.Environ(), "TRIAGED_TEST_MAIN=1", "TRIAGED_TEST_CRASH_FILE=poison.dcm")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(120 * time.Second)
	wait:
		for {
			select {
			case err := <-exited:
				t.Logf("start %d: the daemon exited: %v", starts+1, err)
				break wait
			case <-deadline:
				cmd.Process.Kill()
				<-exited
				t.Fatalf("start %d: neither a crash nor every film settled within 2 minutes", starts+1)
			case <-time.After(100 * time.Millisecond):
				if finished() {
					cmd.Process.Signal(syscall.SIGTERM)
					<-exited
					break wait
				}
			}
		}
	}
	if !finished() {
		t.Fatalf("after %d starts the poison film is not quarantined (done %d of %d)", starts, count(filepath.Join(drop, "done")), good)
	}
	if starts != 4 {
		t.Errorf("%d starts, want 4 (three crashes, then the quarantine)", starts)
	}
	b, err := os.ReadFile(reasonFile)
	if err != nil {
		t.Fatal(err)
	}
	var reason struct{ Code, Reason string }
	if err := json.Unmarshal(b, &reason); err != nil || reason.Code != "poison_film" || !strings.Contains(reason.Reason, "died 3 times") {
		t.Errorf("reason file: %s (%v)", b, err)
	}
	if c := count(filepath.Join(drop, "failed")); c != 1 {
		t.Errorf("%d films failed, want only the poison film", c)
	}
	// The results are read from the store the last daemon left behind.
	srvDir := filepath.Join(dir, "nats")
	if _, err := os.Stat(srvDir); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "run", "-config", cfgPath)
	defer func() { p.cmd.Process.Signal(syscall.SIGTERM); <-p.exited }()
	per := map[string]int{}
	for _, r := range testenv.Stored[publish.Result](t, embeddedURL(t, cfgPath), "TRIAGED_RESULTS", "triaged.result") {
		per[r.Film.SOPInstanceUID]++
	}
	if len(per) != good {
		t.Errorf("%d instances have results, want %d", len(per), good)
	}
	for uid, n := range per {
		if n != 1 {
			t.Errorf("instance %s has %d results, want 1", uid, n)
		}
	}
	errs := testenv.Stored[publish.Event](t, embeddedURL(t, cfgPath), "TRIAGED_RESULTS", "triaged.error")
	if len(errs) != 1 || errs[0].Code != "poison_film" {
		t.Errorf("error events: %+v", errs)
	}
}

// embeddedURL is the embedded server's client URL from a config writeConfig made.
func embeddedURL(t *testing.T, cfgPath string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), `listen: "127.0.0.1:`)
	port, _, _ := strings.Cut(rest, `"`)
	return "nats://127.0.0.1:" + port
}
