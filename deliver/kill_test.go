package deliver_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestKill9Child is the delivery process the test below kills; it does
// nothing unless started by it.
func TestKill9Child(t *testing.T) {
	url, hook := os.Getenv("TRIAGED_KILL9_NATS"), os.Getenv("TRIAGED_KILL9_HOOK")
	if url == "" {
		t.Skip("helper process of TestKill9MidDelivery")
	}
	_, js := delivertest.JetStream(t, url)
	o := testOptions()
	o.Log = zerolog.Nop()
	e, err := deliver.New(js, o, generic(t, "hook", hook, deliver.Filter{}))
	if err != nil {
		t.Fatal(err)
	}
	e.Run(context.Background()) // until killed
}

// kill -9 of the delivering process in the middle of a request, then a new
// process on the same durable consumer: no alert lost; the only duplicate
// is the request in flight, under the same idempotency key.
func TestKill9MidDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: kills a child process and waits for its ack deadline")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	var mu sync.Mutex
	seen := map[string]int{}
	var first atomic.Bool
	rc.SetRespond(func(r *http.Request, _ []byte) (int, http.Header, string) {
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		if first.CompareAndSwap(false, true) {
			<-r.Context().Done() // hangs until the client is gone
			return 503, nil, ""
		}
		return 200, nil, ""
	})
	var ids []string
	for i := range 10 {
		ids = append(ids, env.Alert(t, i, []string{"urgent", "critical"}[i%2], 0.9))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$")
	cmd.Env = append(os.Environ(), "TRIAGED_KILL9_NATS="+env.Server.ClientURL(), "TRIAGED_KILL9_HOOK="+rc.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the child's first request in flight", first.Load)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	e2, _ := start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	testenv.Eventually(t, 30*time.Second, "every alert delivered after the restart", func() bool {
		return len(keys(rc.Accepted())) == len(ids)
	})
	time.Sleep(500 * time.Millisecond)
	acc := keys(rc.Accepted())
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, id := range ids {
		if acc[id] != 1 {
			t.Errorf("alert accepted %d times", acc[id])
		}
		dups += seen[id] - 1
	}
	if dups > 1 {
		t.Errorf("%d repeated requests; at most the one in flight may repeat", dups)
	}
	t.Logf("kill -9 mid-delivery: %d alerts, none lost, %d request(s) repeated under the same idempotency key; the new process counted %d redelivered",
		len(ids), dups, e2.Stats()[0].Redelivered)
}
