package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/ingest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// enableTestFailpoints runs in the re-executed test binary (the daemon under
// test). TRIAGED_TEST_WEDGE_FILE names a file: while it exists, every film
// a worker takes hangs before decoding, as it would on a stuck disk or a
// hung accelerator. Production binaries have no such switch.
func enableTestFailpoints() {
	// TRIAGED_TEST_CRASH_FILE names a dropped file: the daemon kills itself
	// (SIGKILL, as a segfault in a C codec would end it) whenever it starts
	// decoding that film.
	if crash := os.Getenv("TRIAGED_TEST_CRASH_FILE"); crash != "" {
		daemonOptions = append(daemonOptions, daemon.WithBeforeProcess(func(_ context.Context, f ingest.Film) {
			if f.Origin().File == crash {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}))
	}
	wedge := os.Getenv("TRIAGED_TEST_WEDGE_FILE")
	if wedge == "" {
		return
	}
	daemonOptions = append(daemonOptions, daemon.WithBeforeProcess(func(ctx context.Context, _ ingest.Film) {
		for {
			if _, err := os.Stat(wedge); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
}

// notifySocket is the service manager's side of sd_notify: a real unixgram
// socket recording every datagram in order.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// Short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &notifySocket{path: filepath.Join(dir, "notify")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 8192)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(b[:n]))
			ns.mu.Unlock()
		}
	}()
	return ns
}

func (ns *notifySocket) snapshot() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]string(nil), ns.msgs...)
}

// waitFor returns the index of the first message at or after from that
// contains every one of parts.
func (ns *notifySocket) waitFor(t *testing.T, from int, timeout time.Duration, parts ...string) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := ns.snapshot()
		for i := from; i < len(ms); i++ {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(ms[i], p)
			}
			if ok {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification with %q after #%d within %s; got:\n%s", parts, from, timeout, strings.Join(ms, "\n--\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingsAfter counts WATCHDOG=1 messages after index i.
func (ns *notifySocket) pingsAfter(i int) int {
	n := 0
	for _, m := range ns.snapshot()[i+1:] {
		if m == "WATCHDOG=1" {
			n++
		}
	}
	return n
}

// service is a triaged subprocess run as systemd would run it.
type service struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan error
}

func (s *service) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func startService(t *testing.T, ns *notifySocket, env []string, cfgPath string) *service {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "TRIAGED_TEST_MAIN=1", "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=400000")
	cmd.Env = append(cmd.Env, env...)
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	s := &service{cmd: cmd, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	go func() { err := cmd.Wait(); <-copied; s.exited <- err }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", s.log())
		}
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *service) stop(t *testing.T, within time.Duration) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("no exit within %s of SIGTERM", within)
	}
}

type serviceConfig struct {
	dir, drop      string
	port, httpPort int
}

func newServiceConfig(t *testing.T) *serviceConfig {
	dir := t.TempDir()
	return &serviceConfig{dir: dir, port: testenv.FreePort(t), httpPort: testenv.FreePort(t), drop: filepath.Join(dir, "incoming")}
}

// write renders the config file; extra is appended YAML (top-level keys).
func (c *serviceConfig) write(t *testing.T, extra string) string {
	t.Helper()
	y := fmt.Sprintf(`
log: {level: info}
nats:
  embedded: {listen: "127.0.0.1:%d", store_dir: %s, sync_always: false}
  publish_timeout: 2s
ingest:
  folders: [{path: %s}]
  settle: 100ms
models: [{path: %s}]
http: {listen: "127.0.0.1:%d"}
`, c.port, filepath.Join(c.dir, "nats"), c.drop, testenv.Model(t, "squeezenet1_1"), c.httpPort) + extra
	p := filepath.Join(c.dir, "triaged.yaml")
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *serviceConfig) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.port) }

func (c *serviceConfig) get(t *testing.T, path string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	r, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", c.httpPort, path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

func dropFilms(t *testing.T, dir string, fs [][]byte, first int) {
	t.Helper()
	for i, f := range fs {
		tmp := filepath.Join(dir, fmt.Sprintf(".s%03d.tmp", first+i))
		if err := os.WriteFile(tmp, f, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("s%03d.dcm", first+i))); err != nil {
			t.Fatal(err)
		}
	}
}

// resultsByFile reads every stored result, keyed by the dropped file name.
func resultsByFile(t *testing.T, url string) map[string][]publish.Result {
	t.Helper()
	out := map[string][]publish.Result{}
	for _, r := range testenv.Stored[publish.Result](t, url, "TRIAGED_RESULTS", "triaged.result") {
		out[r.Source.File] = append(out[r.Source.File], r)
	}
	return out
}

func names(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".reason.json") {
			out = append(out, e.Name())
		}
	}
	return out
}

// The systemd protocol end to end, on a real notify socket: READY once
// ready, WATCHDOG pings, RELOADING then READY around a SIGHUP that applies
// new thresholds at once, the same around a broken config that is rejected
// with its reasons while the old one stays in force, /metrics, /healthz and
// /readyz, then STOPPING and a drain on SIGTERM with films in flight that
// acknowledges nothing early and leaves the rest for the next start.
func TestServiceNotifyReloadAndDrain(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	ns := listenNotify(t)
	c := newServiceConfig(t)
	cfgPath := c.write(t, "")
	all := films(t, 24)
	os.MkdirAll(c.drop, 0o755)
	dropFilms(t, c.drop, all[:1], 0) // waiting before the start: part of the start-up scan

	s := startService(t, ns, nil, cfgPath)
	starting := ns.waitFor(t, 0, 60*time.Second, "STATUS=starting")
	ready := ns.waitFor(t, starting, 90*time.Second, "READY=1")
	if ns.pingsAfter(-1) > ns.pingsAfter(ready) {
		t.Error("watchdog pinged before READY")
	}
	if code, body := c.get(t, "/readyz"); code != 200 || !strings.Contains(body, "squeezenet1_1") || !strings.Contains(body, ": CPUExecutionProvider") {
		t.Errorf("/readyz after READY (with the models' providers): %d %s", code, body)
	}
	if code, body := c.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, "3 watchdog pings", func() bool { return ns.pingsAfter(ready) >= 3 })
	testenv.Eventually(t, 60*time.Second, "the film found by the start-up scan", func() bool { return len(names(filepath.Join(c.drop, "done"))) == 1 })

	// SIGHUP with new thresholds.
	c.write(t, "triage: {urgent_threshold: 0.01, critical_threshold: 0.999}\n")
	s.cmd.Process.Signal(syscall.SIGHUP)
	rl := ns.waitFor(t, ready, 60*time.Second, "RELOADING=1", "MONOTONIC_USEC=")
	ns.waitFor(t, rl, 60*time.Second, "READY=1", "configuration reloaded")
	dropFilms(t, c.drop, all[1:2], 1)
	testenv.Eventually(t, 60*time.Second, "film after the reload", func() bool { return len(names(filepath.Join(c.drop, "done"))) == 2 })
	res := resultsByFile(t, c.url())
	if r := res["s001.dcm"]; len(r) != 1 || r[0].Thresholds.Urgent != 0.01 || r[0].Thresholds.Critical != 0.999 || r[0].Priority != "urgent" {
		t.Fatalf("result after the reload does not use the new thresholds: %+v", r)
	}
	if r := res["s000.dcm"]; len(r) != 1 || r[0].Thresholds.Urgent == 0.01 {
		t.Fatalf("result before the reload: %+v", r)
	}

	// SIGHUP with a broken config: rejected, with every reason.
	c.write(t, "triage: {urgent_threshold: 2, critical_threshold: 0.5}\npipeline: {wrokers: 3}\n")
	s.cmd.Process.Signal(syscall.SIGHUP)
	rl = ns.waitFor(t, rl+1, 60*time.Second, "RELOADING=1")
	ns.waitFor(t, rl, 60*time.Second, "READY=1", "last reload rejected")
	lg := s.log()
	for _, want := range []string{"triage.urgent_threshold: must be a probability", `pipeline.wrokers: unknown key (did you mean \"workers\"?)`, "reload rejected; the configuration in force is unchanged"} {
		if !strings.Contains(lg, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	dropFilms(t, c.drop, all[2:3], 2)
	testenv.Eventually(t, 60*time.Second, "film after the rejected reload", func() bool { return len(names(filepath.Join(c.drop, "done"))) == 3 })
	if r := resultsByFile(t, c.url())["s002.dcm"]; len(r) != 1 || r[0].Thresholds.Urgent != 0.01 {
		t.Fatalf("the rejected reload changed the thresholds in force: %+v", r)
	}

	// Metrics: parse with the Prometheus text parser.
	code, body := c.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		f := fams[name]
		if f == nil {
			t.Fatalf("/metrics lacks %s", name)
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			ok := true
			for _, l := range m.GetLabel() {
				if v, want := labels[l.GetName()]; want && v != l.GetValue() {
					ok = false
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return total
	}
	if v := value("triaged_films_total", map[string]string{"source_kind": "folder", "source": c.drop, "outcome": "acked"}); v != 3 {
		t.Errorf("triaged_films_total acked = %v, want 3", v)
	}
	if v := value("triaged_config_reloads_total", map[string]string{"result": "rejected"}); v != 1 {
		t.Errorf("rejected reloads = %v", v)
	}
	if v := value("triaged_stage_duration_seconds", map[string]string{"stage": "decode"}); v != 3 {
		t.Errorf("decode observations = %v", v)
	}
	if v := value("triaged_threshold", map[string]string{"priority": "urgent"}); v != 0.01 {
		t.Errorf("urgent threshold gauge = %v", v)
	}
	for _, n := range []string{"triaged_nats_connected", "triaged_ready", "triaged_queue_depth", "triaged_inference_duration_seconds", "triaged_score", "triaged_batch_size", "triaged_quarantine_files", "triaged_model_info"} {
		value(n, nil)
	}
	if v := value("triaged_nats_connected", nil); v != 1 {
		t.Errorf("triaged_nats_connected = %v", v)
	}

	// SIGTERM with films in flight.
	dropFilms(t, c.drop, all[3:], 3)
	testenv.Eventually(t, 60*time.Second, "films in flight", func() bool { return len(names(filepath.Join(c.drop, ".processing"))) > 0 })
	before := len(ns.snapshot())
	s.stop(t, 60*time.Second)
	ns.waitFor(t, before, time.Second, "STOPPING=1")
	done := names(filepath.Join(c.drop, "done"))
	left := len(names(filepath.Join(c.drop, ".processing"))) + len(names(c.drop))
	t.Logf("SIGTERM: %d of %d films done, %d left for the next start", len(done), len(all), left)
	if lg := s.log(); !strings.Contains(lg, `"message":"drained"`) || strings.Contains(lg, "drain timeout reached") {
		t.Error("the films in flight were not drained within the drain timeout")
	}
	if len(done)+left != len(all) || len(names(filepath.Join(c.drop, "failed"))) != 0 {
		t.Fatalf("%d done + %d left != %d films", len(done), left, len(all))
	}

	// The next start (with a valid file again) finishes the rest; every
	// film has exactly one result, so nothing was acknowledged without one.
	c.write(t, "")
	ns2 := listenNotify(t)
	s2 := startService(t, ns2, nil, cfgPath)
	ns2.waitFor(t, 0, 90*time.Second, "READY=1")
	testenv.Eventually(t, 120*time.Second, "every film done", func() bool { return len(names(filepath.Join(c.drop, "done"))) == len(all) })
	res = resultsByFile(t, c.url())
	for i := range all {
		if n := len(res[fmt.Sprintf("s%03d.dcm", i)]); n != 1 {
			t.Errorf("film %d has %d results", i, n)
		}
	}
	s2.stop(t, 60*time.Second)
}

// A wedged pipeline (films in flight, none finishing) stops the watchdog
// pings and fails /healthz; they resume once it moves again. SIGTERM with
// wedged films exits after the drain timeout and leaves them, unacknowledged,
// for the next start.
func TestWatchdogGoesSilentWhenWedged(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	ns := listenNotify(t)
	c := newServiceConfig(t)
	cfgPath := c.write(t, "pipeline: {drain_timeout: 3s, stall_timeout: 12s}\n")
	wedge := filepath.Join(c.dir, "wedge")
	os.WriteFile(wedge, nil, 0o644)
	all := films(t, 4)

	s := startService(t, ns, []string{"TRIAGED_TEST_WEDGE_FILE=" + wedge}, cfgPath)
	ready := ns.waitFor(t, 0, 90*time.Second, "READY=1")
	testenv.Eventually(t, 30*time.Second, "watchdog pings", func() bool { return ns.pingsAfter(ready) >= 2 })
	dropFilms(t, c.drop, all[:2], 0)
	wedged := ns.waitFor(t, ready, 60*time.Second, "STATUS=pipeline wedged")
	time.Sleep(2 * time.Second) // five watchdog intervals
	if n := ns.pingsAfter(wedged); n != 0 {
		t.Fatalf("%d watchdog pings while wedged", n)
	}
	if code, body := c.get(t, "/healthz"); code != 503 || !strings.Contains(body, "pipeline wedged: 2 films in flight") {
		t.Fatalf("/healthz while wedged: %d %q", code, body)
	}

	os.Remove(wedge)
	moving := ns.waitFor(t, wedged, 30*time.Second, "STATUS=running")
	testenv.Eventually(t, 30*time.Second, "pings again", func() bool { return ns.pingsAfter(moving) >= 2 })
	testenv.Eventually(t, 60*time.Second, "wedged films done", func() bool { return len(names(filepath.Join(c.drop, "done"))) == 2 })
	if code, _ := c.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz after recovery: %d", code)
	}

	// Wedge again and stop with films stuck in flight.
	os.WriteFile(wedge, nil, 0o644)
	dropFilms(t, c.drop, all[2:], 2)
	testenv.Eventually(t, 60*time.Second, "films in flight", func() bool { return len(names(filepath.Join(c.drop, ".processing"))) == 2 })
	s.stop(t, 60*time.Second)
	if !strings.Contains(s.log(), "drain timeout reached") {
		t.Error("no drain timeout logged")
	}
	if n := len(names(filepath.Join(c.drop, ".processing"))); n != 2 {
		t.Fatalf("%d films in processing after the stop, want 2", n)
	}

	ns2 := listenNotify(t)
	s2 := startService(t, ns2, nil, cfgPath)
	ns2.waitFor(t, 0, 90*time.Second, "READY=1")
	testenv.Eventually(t, 60*time.Second, "every film done", func() bool { return len(names(filepath.Join(c.drop, "done"))) == 4 })
	res := resultsByFile(t, c.url())
	for i := range all {
		if n := len(res[fmt.Sprintf("s%03d.dcm", i)]); n != 1 {
			t.Errorf("film %d has %d results", i, n)
		}
	}
	s2.stop(t, 60*time.Second)
}
