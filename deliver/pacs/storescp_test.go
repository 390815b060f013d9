package pacs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// syncBuffer is a log written by a process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// dcmtk's storescp as a second receiving peer: a backlog of films goes
// out on one association (a burst), released cleanly, with our calling
// AE and its called AE; every object lands as a file.
func TestCStoreToStorescpReusesAssociation(t *testing.T) {
	testenv.Slow(t)
	bin, err := exec.LookPath("storescp")
	if err != nil {
		t.Skip("skipping: storescp not found (Debian package dcmtk)")
	}
	srv := testenv.NATS(t)
	js := jsOf(t, srv.ClientURL())
	for _, f := range films {
		storeInRecord(t, js, buildObjects(t, f))
	}
	port := testenv.FreePort(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-d", "-aet", "STORESCP", "-od", out, fmt.Sprint(port))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	time.Sleep(500 * time.Millisecond) // storescp binds at once; no health endpoint to poll
	c, err := pacs.NewCStore(pacs.CStoreOptions{Name: "storescp", Address: fmt.Sprintf("127.0.0.1:%d", port), CalledAE: "STORESCP", CallingAE: "TRIAGED_T", Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pacs.New(js, pacs.Options{ManageStreams: true, Log: testLog(t)}, c)
	if err != nil {
		t.Fatal(err)
	}
	runDelivery(t, d)
	testenv.Eventually(t, 60*time.Second, "every object stored and the association released", func() bool {
		files, _ := filepath.Glob(filepath.Join(out, "*"))
		return len(files) == 2*len(films) && strings.Contains(log.String(), "Association Release")
	})
	l := log.String()
	if n := strings.Count(l, "I: Association Received"); n != 1 {
		t.Errorf("%d associations for a backlog of %d films, want 1\n%s", n, len(films), l)
	}
	if !strings.Contains(l, "TRIAGED_T") {
		t.Errorf("storescp did not see our calling AE\n%s", l)
	}
	if st := d.Stats()[0]; st.Delivered != uint64(len(films)) {
		t.Errorf("delivered %d, want %d", st.Delivered, len(films))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pacs.Collector{Delivery: d})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var delivered float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == pacs.MetricDeliveries && m.GetLabel()[1].GetValue() == "delivered" {
				delivered = m.GetCounter().GetValue()
			}
		}
	}
	if delivered != float64(len(films)) {
		t.Errorf("%s{outcome=delivered} = %v, want %d", pacs.MetricDeliveries, delivered, len(films))
	}
	files, _ := os.ReadDir(out)
	var sr, sc int
	for _, f := range files {
		switch {
		case strings.HasPrefix(f.Name(), "SRc"), strings.HasPrefix(f.Name(), "SR"):
			sr++
		case strings.HasPrefix(f.Name(), "SC"):
			sc++
		}
	}
	if sr != len(films) || sc != len(films) {
		names := []string{}
		for _, f := range files {
			names = append(names, f.Name())
		}
		t.Errorf("files %v: want %d SR and %d SC", names, len(films), len(films))
	}
}
