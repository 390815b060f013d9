package deliver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/deliver/webhook"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

func testOptions() deliver.Options {
	return deliver.Options{
		Prefix: "triaged", Stream: "TRIAGED_ALERTS", ManageStreams: true, TriageKey: delivertest.Key,
		AckWait: 2 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		StatsEvery: 100 * time.Millisecond, Log: zerolog.Nop(),
	}
}

func generic(t *testing.T, name, url string, f deliver.Filter) *webhook.Webhook {
	t.Helper()
	w, err := webhook.New(webhook.Options{Name: name, URL: url, Filter: f, SigningKey: []byte("signing-key")})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs an engine until the test ends (or stop is called) and checks
// that Run returns.
func start(t *testing.T, js jetstream.JetStream, o deliver.Options, dests ...deliver.Destination) (*deliver.Engine, func()) {
	t.Helper()
	e, err := deliver.New(js, o, dests...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return e, stop
}

func keys(rs []delivertest.Request) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Header.Get("Idempotency-Key")]++
	}
	return m
}

// A receiver down (503) for a while loses nothing: once it is back every
// alert arrives exactly once by idempotency key, critical ones first.
func TestOutageThenBacklogExactlyOnceCriticalFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an outage of a few seconds")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	var down atomic.Bool
	down.Store(true)
	rc.SetRespond(func(*http.Request, []byte) (int, http.Header, string) {
		if down.Load() {
			return 503, nil, "maintenance"
		}
		return 202, nil, ""
	})
	e, _ := start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))

	want := map[string]string{}
	for i := range 20 {
		p, s := "urgent", 0.6
		if i%4 == 3 {
			p, s = "critical", 0.95
		}
		want[env.Alert(t, i, p, s)] = p
	}
	testenv.Eventually(t, 10*time.Second, "failed attempts during the outage", func() bool { return len(rc.Requests()) >= 3 })
	if err := e.Health(); err == nil || !strings.Contains(err.Error(), "hook") {
		t.Errorf("Health during the outage = %v, want the destination named", err)
	}
	time.Sleep(time.Second)
	down.Store(false)
	testenv.Eventually(t, 20*time.Second, "every alert delivered", func() bool { return len(rc.Accepted()) >= len(want) })
	time.Sleep(500 * time.Millisecond) // anything extra would show up now
	acc := rc.Accepted()
	got := keys(acc)
	if len(acc) != len(want) {
		t.Errorf("%d requests accepted for %d alerts: %v", len(acc), len(want), got)
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("alert delivered %d times", got[id])
		}
	}
	seenUrgent := false
	for _, r := range acc {
		switch want[r.Header.Get("Idempotency-Key")] {
		case "urgent":
			seenUrgent = true
		case "critical":
			if seenUrgent {
				t.Errorf("a critical alert arrived after an urgent one: order %v", order(acc, want))
			}
		}
	}
	if err := e.Health(); err != nil {
		t.Errorf("Health after recovery: %v", err)
	}
	testenv.Eventually(t, 5*time.Second, "stats caught up", func() bool {
		st := e.Stats()[0]
		return st.Delivered == uint64(len(want)) && st.Pending == 0 && st.Oldest == 0 && st.Retries > 0
	})
	for _, r := range acc {
		if err := webhook.Verify(r.Header.Get(webhook.SignatureHeader), r.Body, []byte("signing-key"), time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
	}
	t.Logf("outage: %d failed attempts, %d delivered; stats %+v", len(rc.Requests())-len(acc), len(acc), e.Stats()[0])
}

func order(acc []delivertest.Request, want map[string]string) string {
	var s []string
	for _, r := range acc {
		s = append(s, want[r.Header.Get("Idempotency-Key")][:1])
	}
	return strings.Join(s, "")
}

// 429 with Retry-After holds the next attempt back that long.
func TestRetryAfterHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: waits for a Retry-After of 1s")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	var n atomic.Int32
	rc.SetRespond(func(*http.Request, []byte) (int, http.Header, string) {
		if n.Add(1) == 1 {
			return 429, http.Header{"Retry-After": {"1"}}, "slow down"
		}
		return 200, nil, ""
	})
	start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	env.Alert(t, 1, "critical", 0.9)
	testenv.Eventually(t, 10*time.Second, "delivery after the 429", func() bool { return len(rc.Accepted()) == 1 })
	rs := rc.Requests()
	if gap := rs[1].At.Sub(rs[0].At); gap < time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1", gap)
	}
}

// A 4xx goes to the dead-letter subject with the status and response, the
// message is terminated, and the rest are delivered.
func TestRefusedGoesToDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	bad := ""
	rc.SetRespond(func(r *http.Request, _ []byte) (int, http.Header, string) {
		if r.Header.Get("Idempotency-Key") == bad {
			return 422, nil, `{"error":"unprocessable"}`
		}
		return 200, nil, ""
	})
	bad = env.Alert(t, 1, "urgent", 0.6)
	good := env.Alert(t, 2, "urgent", 0.6)
	e, _ := start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	testenv.Eventually(t, 10*time.Second, "good alert delivered and bad one dead-lettered", func() bool {
		return len(rc.Accepted()) == 1 && e.Stats()[0].DeadLetters == 1
	})
	if k := rc.Accepted()[0].Header.Get("Idempotency-Key"); k != good {
		t.Errorf("delivered %q", k)
	}
	msgs := testenv.StreamMessages(t, env.Server.ClientURL(), "TRIAGED_DELIVER_DEAD")
	if len(msgs) != 1 || msgs[0].Subject != "triaged.deliver.dead.hook" {
		t.Fatalf("dead letters: %+v", msgs)
	}
	var d deliver.DeadLetterMsg
	if err := json.Unmarshal(msgs[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != 422 || d.Response != `{"error":"unprocessable"}` || d.MessageID != bad || d.Destination != "hook" || len(d.Message) == 0 {
		t.Errorf("dead letter %+v", d)
	}
	testenv.Eventually(t, 5*time.Second, "nothing pending", func() bool { return e.Stats()[0].Pending == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.Requests()); n != 2 {
		t.Errorf("%d requests: the refused message was tried again", n)
	}

	// The Prometheus collector exports the same figures.
	reg := prometheus.NewRegistry()
	reg.MustRegister(deliver.Collector{Engine: e})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "," + l.GetValue()
			}
			got[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{"triaged_deliveries_total,hook,delivered": 1, "triaged_deliveries_total,hook,dead_letter": 1,
		"triaged_delivery_failing,hook": 0, "triaged_delivery_pending,hook": 0} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// A delivery killed in the middle of a request (its NATS connection gone,
// its context cancelled, nothing handed back) loses nothing: a new engine
// on the same durable consumer delivers everything; the one request in
// flight may arrive twice, under the same idempotency key.
func TestKilledMidDeliveryLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: waits for the ack deadline of a killed delivery")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	var mu sync.Mutex
	seen := map[string]int{} // every request the receiver saw, finished or not
	hang := make(chan struct{})
	var first atomic.Bool
	rc.SetRespond(func(r *http.Request, _ []byte) (int, http.Header, string) {
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		if first.CompareAndSwap(false, true) {
			select { // the delivery dies while this request is in flight
			case <-hang:
			case <-r.Context().Done():
			}
			return 503, nil, ""
		}
		return 200, nil, ""
	})
	var ids []string
	for i := range 10 {
		ids = append(ids, env.Alert(t, i, "urgent", 0.6))
	}
	nc1, js1 := delivertest.JetStream(t, env.Server.ClientURL())
	_, stop1 := start(t, js1, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	testenv.Eventually(t, 10*time.Second, "the first request in flight", first.Load)
	nc1.Close() // no Nak, no Ack reaches the server: as after kill -9
	stop1()
	close(hang)

	_, js2 := delivertest.JetStream(t, env.Server.ClientURL())
	e2, _ := start(t, js2, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	testenv.Eventually(t, 20*time.Second, "every alert delivered after the restart", func() bool {
		return len(keys(rc.Accepted())) == len(ids)
	})
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
		t.Errorf("%d duplicate requests; at most the one in flight may repeat", dups)
	}
	t.Logf("killed mid-delivery: %d alerts, %d seen twice by the receiver (same idempotency key), engine 2 counted %d redelivered", len(ids), dups, e2.Stats()[0].Redelivered)
}

// Two daemons on the same durable consumer: one delivery per alert.
func TestTwoEnginesDeliverOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: two engines and 40 alerts")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	rc.SetRespond(func(*http.Request, []byte) (int, http.Header, string) {
		time.Sleep(5 * time.Millisecond)
		return 200, nil, ""
	})
	var engines []*deliver.Engine
	for range 2 {
		_, js := delivertest.JetStream(t, env.Server.ClientURL())
		e, _ := start(t, js, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
		engines = append(engines, e)
	}
	var ids []string
	for i := range 40 {
		ids = append(ids, env.Alert(t, i, []string{"urgent", "critical"}[i%2], 0.9))
	}
	testenv.Eventually(t, 20*time.Second, "every alert delivered", func() bool { return len(rc.Accepted()) >= len(ids) })
	time.Sleep(500 * time.Millisecond)
	acc := keys(rc.Accepted())
	for _, id := range ids {
		if acc[id] != 1 {
			t.Errorf("alert delivered %d times", acc[id])
		}
	}
	if len(rc.Accepted()) != len(ids) {
		t.Errorf("%d deliveries for %d alerts", len(rc.Accepted()), len(ids))
	}
	t.Logf("two engines: %d and %d deliveries", engines[0].Stats()[0].Delivered, engines[1].Stats()[0].Delivered)
}

// Priority filters: a critical-only destination never sees urgent alerts
// nor their acknowledgements; updates go only where asked for.
func TestPriorityFilterAndUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	env := delivertest.Start(t)
	crit, all := delivertest.NewReceiver(t), delivertest.NewReceiver(t)
	start(t, env.JS, testOptions(),
		generic(t, "pager", crit.URL, deliver.Filter{Priorities: []string{"critical"}}),
		generic(t, "all", all.URL, deliver.Filter{Updates: true}))
	u := env.Alert(t, 1, "urgent", 0.6)
	c := env.Alert(t, 2, "critical", 0.95)
	if _, err := env.Pub.PublishUpdate(context.Background(), &publish.Update{MessageID: publish.UpdateID(c, "occlusion"), AlertID: c, Priority: "critical", ModelSet: "ms-0123456789ab"}); err != nil {
		t.Fatal(err)
	}
	env.Ack(t, u, "dr-a")
	env.Ack(t, c, "dr-b")
	testenv.Eventually(t, 10*time.Second, "deliveries", func() bool { return len(all.Accepted()) == 5 && len(crit.Accepted()) == 2 })
	time.Sleep(300 * time.Millisecond)
	var kinds []string
	for _, r := range crit.Accepted() {
		kinds = append(kinds, r.Header.Get("Triaged-Event")+":"+r.Header.Get("Triaged-Priority"))
	}
	if strings.Join(kinds, " ") != "alert:critical ack:critical" {
		t.Errorf("critical-only destination got %v", kinds)
	}
}

// An alert nobody acknowledges ends after the TTL: the engine stores an
// acknowledgement (via ttl) and every destination gets the resolve.
func TestTTLResolves(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: waits for a TTL")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	o := testOptions()
	o.TTL, o.Acks = time.Second, env.Pub
	start(t, env.JS, o, generic(t, "hook", rc.URL, deliver.Filter{}))
	id := env.Alert(t, 1, "critical", 0.95)
	testenv.Eventually(t, 10*time.Second, "alert then TTL resolve", func() bool { return len(rc.Accepted()) == 2 })
	r := rc.Accepted()[1]
	var a publish.Ack
	if err := json.Unmarshal(r.Body, &a); err != nil || r.Header.Get("Triaged-Event") != "ack" || a.AlertID != id || a.Via != "ttl" {
		t.Fatalf("second delivery %s %s (%v)", r.Header.Get("Triaged-Event"), r.Body, err)
	}
	if since := time.Since(rc.Accepted()[0].At); since < 900*time.Millisecond {
		t.Errorf("resolved too early")
	}
	act, err := deliver.OpenActive(context.Background(), env.JS, "TRIAGED_ALERTS_ACTIVE")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "active set empty", func() bool {
		l, err := act.List(context.Background())
		return err == nil && len(l) == 0
	})
}

// A backlog of 200 alerts built up during an outage (within one batch of
// 256) goes out strictly critical first once the receiver is back, each
// alert once.
func TestOutageBacklogOrderedByPriority(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: a 5s outage with 200 alerts")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	var down atomic.Bool
	down.Store(true)
	rc.SetRespond(func(*http.Request, []byte) (int, http.Header, string) {
		if down.Load() {
			return 503, nil, ""
		}
		return 200, nil, ""
	})
	start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	want := map[string]string{}
	for i := range 200 {
		p := "urgent"
		if i%5 == 4 {
			p = "critical"
		}
		want[env.Alert(t, i, p, 0.9)] = p
	}
	time.Sleep(5 * time.Second)
	down.Store(false)
	up := time.Now()
	testenv.Eventually(t, 60*time.Second, "the backlog delivered", func() bool { return len(rc.Accepted()) >= len(want) })
	took := time.Since(up)
	time.Sleep(500 * time.Millisecond)
	acc := rc.Accepted()
	if k := keys(acc); len(acc) != len(want) || len(k) != len(want) {
		t.Errorf("%d requests accepted, %d distinct keys, for %d alerts", len(acc), len(k), len(want))
	}
	lastCrit, firstUrg := -1, -1
	for i, r := range acc {
		if want[r.Header.Get("Idempotency-Key")] == "critical" {
			lastCrit = i
		} else if firstUrg < 0 {
			firstUrg = i
		}
	}
	if lastCrit > firstUrg {
		t.Errorf("a critical alert went out at #%d, after the first urgent one at #%d", lastCrit, firstUrg)
	}
	t.Logf("200 alerts (40 critical) during a 5s outage: drained in %s once back, critical #0-#%d, %d failed attempts during the outage",
		took.Round(time.Millisecond), lastCrit, len(rc.Requests())-len(acc))
}
