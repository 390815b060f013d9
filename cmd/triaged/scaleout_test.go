package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	jsingest "github.com/triaged/triaged/ingest/jetstream"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

func fleetConfig(t *testing.T, dir, urls string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
log: {level: info}
nats:
  url: %q
  result_stream: {replicas: 3}
  alert_stream: {replicas: 3}
ingest:
  folders: []
  nats:
    enabled: true
    stream: {replicas: 3}
    ack_wait: 4s
    max_deliver: 5
    backoff: [200ms, 1s]
    max_ack_pending: 60
    spool_dir: %s
pipeline: {workers: 2, queue_capacity: 8, drain_timeout: 20s}
http: {listen: "127.0.0.1:0"} # several daemons run at once in tests
models: [{path: %s}]
`, urls, dir, testenv.Model(t, "squeezenet1_1"))
	p := filepath.Join(dir, "triaged.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The done-when test of the NATS fleet: a 3-node JetStream cluster with R3
// streams, three daemons sharing one consumer, a few hundred films (inline
// and through the object store, synthetic and real, plus deliberately bad
// ones). One daemon is killed with films in flight and one NATS node is
// restarted while work remains. Every good film ends with exactly one
// result and at most one alert per priority, none is lost, and the
// dead-letter subject holds exactly the bad inputs.
func TestFleetOnAClusterLosesNothingAndDoublesNothing(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	start := time.Now()
	// A 128 KiB max payload sends the larger synthetic films through the
	// object store, as the 5-15 MB films of a real site would be.
	cl := natstest.StartCluster(t, 3, 128<<10)
	urls := cl.URLs()
	base := t.TempDir()

	var procs []*fleetProc
	var cfgs []string
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprintf("d%d", i))
		os.MkdirAll(dir, 0o755)
		cfgs = append(cfgs, fleetConfig(t, dir, urls))
	}
	// A first start creates the streams, so that a backlog can build up
	// before the fleet starts.
	first := startFleetProc(t, cfgs[0])
	first.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-first.exited; err != nil {
		t.Fatalf("first daemon: %v\n%s", err, first.log())
	}
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		if t.Failed() {
			for i, p := range procs {
				if p == nil {
					continue
				}
				t.Logf("daemon %d log tail:\n%s", i, tail(p.log(), 4000))
			}
		}
	}()

	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	// The films, written as files and sent with `triaged submit`.
	films := filepath.Join(base, "films")
	good := map[string]bool{} // SOP Instance UIDs
	wave := func(n int, from int) string {
		d := filepath.Join(films, fmt.Sprintf("wave%d", from))
		os.MkdirAll(d, 0o755)
		for i := from; i < from+n; i++ {
			uid := fmt.Sprintf("1.2.826.0.1.3680043.10.1234.90.%d", i)
			size := 64
			if i%3 == 0 {
				size = 300 // 180 KB: object store
			}
			prio := ""
			if i%17 == 0 {
				prio = "STAT"
			}
			os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.dcm", i)), dicomtest.Film(uid, size, size, prio), 0o644)
			good[uid] = true
		}
		return d
	}
	submit := func(args ...string) []submitted {
		t.Helper()
		code, out, errs := run(append([]string{"submit", "-config", cfgs[0]}, args...)...)
		if code != 0 {
			t.Fatalf("submit: exit %d\n%s", code, errs)
		}
		return submitLines(t, out)
	}
	w1 := wave(200, 0)
	bad := filepath.Join(films, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "notes.txt"), []byte("not a film at all\n"), 0o644)
	trunc := dicomtest.Film("1.2.826.0.1.3680043.10.1234.91.1", 64, 64, "")
	os.WriteFile(filepath.Join(bad, "truncated.dcm"), trunc[:len(trunc)-2000], 0o644)
	wantBad := map[string]string{"notes.txt": "not_dicom", "truncated.dcm": "truncated", "missing-object": "object_missing"}
	for _, r := range submit(w1, bad) {
		if r.Error != "" {
			t.Fatalf("submit %s: %s", r.File, r.Error)
		}
	}
	natstest.Submit(t, js, "triaged.ingest", "TRIAGED_FILMS",
		[]byte(`{"schema":"triaged.object-ref/v1","bucket":"TRIAGED_FILMS","name":"never-uploaded"}`),
		map[string]string{jsingest.HeaderFilename: "missing-object"}, false)
	t.Logf("backlog of %d films submitted after %s", len(good)+len(wantBad), time.Since(start).Round(time.Millisecond))

	type started struct {
		i   int
		p   *fleetProc
		err error
	}
	ready := make(chan started, len(cfgs))
	for i, c := range cfgs {
		go func() { p, err := launch(c); ready <- started{i, p, err} }()
	}
	procs = make([]*fleetProc, len(cfgs))
	for range cfgs {
		s := <-ready
		procs[s.i] = s.p
		if s.err != nil {
			t.Error(s.err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("3 daemons up after %s", time.Since(start).Round(time.Millisecond))

	// Kill daemon 1 once it is working, while a backlog remains: it holds
	// films (it pulls up to its capacity), so they are in flight.
	victim := procs[1]
	testenv.Eventually(t, 120*time.Second, "daemon 1 scoring", func() bool {
		return victim.scored.Load() >= 3
	})
	ci := consumerInfo(t, js)
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	t.Logf("killed daemon 1 after %d films; consumer then: %d pending, %d delivered and unacknowledged",
		victim.scored.Load(), ci.NumPending, ci.NumAckPending)
	if ci.NumPending == 0 {
		t.Fatal("no backlog left at the kill; the test proves nothing (make the waves larger)")
	}

	// More films, and a NATS node restart while they are being worked on.
	w2 := wave(120, 1000)
	submit(w2)
	cl.Stop(2)
	t.Logf("NATS node 2 stopped")
	time.Sleep(3 * time.Second)
	cl.Restart(2)
	cl.WaitReady()
	t.Logf("NATS node 2 back")
	real := filepath.Join(films, "real")
	os.MkdirAll(real, 0o755)
	for _, rel := range []string{"original/nih_cxr_dx_implicit.dcm", "derived/nih_dx_jpegBaseline.dcm", "derived/RG1_chest_CR_mono1_explicitLE.dcm"} {
		b, err := os.ReadFile(testenv.DICOM(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(real, filepath.Base(rel)), b, 0o644)
	}
	submit(real)
	const realInstances = 3

	total := len(good) + realInstances
	var res map[string][]publish.Result
	// Cheap checks while waiting (stream counts); the full read once.
	testenv.Eventually(t, 150*time.Second, "every film handled", func() bool {
		return natstest.StreamLen(js, "TRIAGED_INGEST") == 0 && natstest.StreamLen(js, "TRIAGED_RESULTS") >= uint64(total+len(wantBad))
	})
	res = fleetResults(t, urls, "TRIAGED_RESULTS")
	t.Logf("%d films scored by the fleet in %s since start", total, time.Since(start).Round(time.Millisecond))

	for uid, rs := range res {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results", uid, len(rs))
		}
		if !good[uid] && !strings.HasPrefix(uid, "1.") {
			t.Errorf("unexpected instance %s", uid)
		}
	}
	for uid := range good {
		if len(res[uid]) == 0 {
			t.Errorf("film %s lost", uid)
		}
	}
	perPrio := map[string]int{}
	for _, rs := range fleetResults(t, urls, "TRIAGED_ALERTS") {
		for _, a := range rs {
			perPrio[a.Film.SOPInstanceUID+"/"+a.Priority]++
		}
	}
	for k, n := range perPrio {
		if n > 1 {
			t.Errorf("alert %s published %d times", k, n)
		}
	}
	dead := testenv.StreamMessages(t, strings.Split(urls, ",")[0], "TRIAGED_DEAD_LETTER")
	got := map[string]string{}
	for _, m := range dead {
		got[m.Header.Get(jsingest.HeaderFilename)] = m.Header.Get(jsingest.HeaderDLCode)
	}
	if len(dead) != len(wantBad) || fmt.Sprint(got) != fmt.Sprint(wantBad) {
		t.Errorf("dead letters %v (%d messages), want exactly %v", got, len(dead), wantBad)
	}
	ci = consumerInfo(t, js)
	if ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Errorf("consumer at the end: %d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
	}
	// The killed daemon's films came back to the others: more deliveries
	// than films.
	t.Logf("%d alerts; %d deliveries for %d films + %d bad inputs", len(perPrio), ci.Delivered.Consumer, total, len(wantBad))
	if ci.Delivered.Consumer <= uint64(total+len(wantBad)) {
		t.Errorf("no redelivery: the killed daemon had no film in flight?")
	}
}

// fleetProc is a daemon subprocess whose log the test reads while it runs.
type fleetProc struct {
	cmd    *exec.Cmd
	exited chan error
	scored atomic.Int64
	mu     sync.Mutex
	buf    strings.Builder
}

func startFleetProc(t *testing.T, cfg string) *fleetProc {
	t.Helper()
	p, err := launch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch starts a daemon and waits for it to be ready; safe to call from
// any goroutine.
func launch(cfg string) (*fleetProc, error) {
	cmd := exec.Command(os.Args[0], "run", "-config", cfg)
	cmd.Env = append(os.Environ(), "TRIAGED_TEST_MAIN=1")
	pr, pw, _ := os.Pipe()
	cmd.Stderr = pw
	p := &fleetProc{cmd: cmd, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pw.Close()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.buf.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, `"film scored"`) {
				p.scored.Add(1)
			}
			if !once && strings.Contains(line, "triaged is ready") {
				once = true
				close(ready)
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	select {
	case <-ready:
	case err := <-p.exited:
		return nil, fmt.Errorf("triaged exited before ready: %v\n%s", err, p.log())
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("triaged not ready\n%s", p.log())
	}
	return p, nil
}

func (p *fleetProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := js.Consumer(ctx, "TRIAGED_INGEST", "triaged")
		var ci *jetstream.ConsumerInfo
		if err == nil {
			ci, err = c.Info(ctx)
		}
		cancel()
		if err == nil {
			return ci
		}
		if attempt == 20 {
			t.Fatalf("consumer info: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fleetResults reads results (or alerts) by instance.
func fleetResults(t *testing.T, urls, stream string) map[string][]publish.Result {
	t.Helper()
	out := map[string][]publish.Result{}
	for _, m := range testenv.StreamMessages(t, urls, stream) {
		if m.Subject != "triaged.result" && !strings.HasPrefix(m.Subject, "triaged.alert.") {
			continue
		}
		var r publish.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out[r.Film.SOPInstanceUID] = append(out[r.Film.SOPInstanceUID], r)
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
