package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// procStatusKB reads one "Vm...:  N kB" line of /proc/PID/status.
func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// Memory through NATS: a backlog of 300 large films (3.4 MB each, 1 GB in
// all) waits in the object store of the embedded server when the daemon
// starts; the daemon and its embedded server, one process, stay under
// 1 GiB of resident memory (VmHWM) while they work through it, and while
// the films arrive. The daemon is built without the race detector, whose
// shadow memory would make the number meaningless.
func TestThreeHundredLargeObjectStoreFilmsStayUnderOneGiB(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	if os.Getenv("TRIAGED_MEMORY_TEST") == "" {
		t.Skip("skipping: set TRIAGED_MEMORY_TEST=1 to run (builds a non-race daemon and pushes 1 GB through NATS; about ten minutes on 2 CPUs)")
	}
	// TRIAGED_MEMORY_SIDE and TRIAGED_MEMORY_WORKERS vary the film size
	// (1300: 3.4 MB) and pipeline.workers (a large host runs 2 x CPUs).
	const films = 300
	side, workers := envInt("TRIAGED_MEMORY_SIDE", 1300), envInt("TRIAGED_MEMORY_WORKERS", 4)
	// TRIAGED_MEMORY_LIMIT sets pipeline.memory_limit (e.g. 768MiB).
	limit := "0"
	if v := os.Getenv("TRIAGED_MEMORY_LIMIT"); v != "" {
		limit = v
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "triaged")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/triaged").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := testenv.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	config := func(name string, intake bool) string {
		cfg := fmt.Sprintf(`
log: {level: info}
nats:
  embedded: {listen: "127.0.0.1:%d", store_dir: %s}
ingest:
  folders: [{path: %s}]
  nats: {enabled: %v, spool_dir: %s}
pipeline: {workers: %d, memory_limit: %s}
http: {listen: "127.0.0.1:0"}
models: [{path: %s}]
`, port, filepath.Join(dir, "nats"), filepath.Join(dir, "incoming"), intake, filepath.Join(dir, "spool"), workers, limit, testenv.Model(t, "squeezenet1_1"))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withIntake, withoutIntake := config("intake.yaml", true), config("no-intake.yaml", false)

	// start runs the daemon until it is ready; stop ends it and returns its
	// peak RSS in KiB.
	type proc struct {
		cmd *exec.Cmd
		log string
	}
	start := func(cfg, name string) *proc {
		t.Helper()
		p := &proc{cmd: exec.Command(bin, "run", "-config", cfg), log: filepath.Join(dir, name+".log")}
		lf, _ := os.Create(p.log)
		defer lf.Close()
		p.cmd.Stdout, p.cmd.Stderr = lf, lf
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 90*time.Second, name+" ready", func() bool {
			b, _ := os.ReadFile(p.log)
			return strings.Contains(string(b), "triaged is ready")
		})
		return p
	}
	stop := func(p *proc) int64 {
		hwm := procStatusKB(p.cmd.Process.Pid, "VmHWM")
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("daemon: %v\n%s", err, tail(string(b), 4000))
		}
		return hwm
	}

	// A first start creates the ingest stream, bucket and consumer; a second
	// without the NATS intake lets the backlog build up.
	stop(start(withIntake, "create"))
	sub := start(withoutIntake, "submit")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// One synthetic film, copied with a distinct SOP Instance UID of the
	// same length each time.
	const uid0 = "1.2.826.0.1.3680043.10.1234.77.10000"
	base := dicomtest.Film(uid0, side, side, "")
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < films; i += 4 {
				b := bytes.ReplaceAll(base, []byte(uid0), []byte(fmt.Sprintf("1.2.826.0.1.3680043.10.1234.77.%05d", 10000+i+1)))
				natstest.Submit(t, js, "triaged.ingest", "TRIAGED_FILMS", b, nil, true)
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(t0)
	subHWM := stop(sub)

	// The backlog.
	p := start(withIntake, "backlog")
	defer func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	}()
	t1 := time.Now()
	scored := 0
	for time.Since(t1) < 15*time.Minute {
		scored = len(testenv.Stored[publish.Result](t, url, "TRIAGED_RESULTS", "triaged.result"))
		if scored >= films {
			break
		}
		time.Sleep(2 * time.Second)
	}
	took := time.Since(t1)
	hwm := stop(p)
	t.Logf("%d films of %d x %d (%.1f MB each) submitted in %s (daemon without intake: peak RSS %d MiB); backlog of %d scored by %d workers (memory_limit %s) in %s: peak RSS (VmHWM) %d MiB",
		films, side, side, float64(len(base))/1e6, submitted.Round(time.Second), subHWM/1024, scored, workers, limit, took.Round(time.Second), hwm/1024)
	if scored < films {
		t.Fatalf("%d of %d films scored", scored, films)
	}
	for what, v := range map[string]int64{"receiving the films": subHWM, "working through the backlog": hwm} {
		if v > 1<<20 {
			t.Errorf("peak RSS %d MiB %s, want under 1 GiB", v/1024, what)
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
