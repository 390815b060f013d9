package deliver_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// Three daemons, each connected to its own node of a 3-node cluster with
// R3 streams, deliver each alert once per destination, not three times.
func TestThreeDaemonsOnAClusterDeliverOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts a 3-node JetStream cluster")
	}
	c := natstest.StartCluster(t, 3, 0)
	urls := strings.Split(c.URLs(), ",")
	nc := delivertest.Connect(t, c.URLs())
	p, err := publish.New(nc, publish.Options{Prefix: "triaged",
		Results:       bus.StreamSpec{Name: "TRIAGED_RESULTS", Replicas: 3, DuplicateWindow: time.Hour},
		Alerts:        bus.StreamSpec{Name: "TRIAGED_ALERTS", Replicas: 3, DuplicateWindow: time.Hour},
		ManageStreams: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, "streams created", func() bool { return p.EnsureStreams(ctx) == nil })
	env := &delivertest.Env{Pub: p, JS: p.JS}
	hook, am := delivertest.NewReceiver(t), delivertest.NewReceiver(t)
	var engines []*deliver.Engine
	for i := range 3 {
		_, js := delivertest.JetStream(t, urls[i])
		o := testOptions()
		o.Replicas = 3
		o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
		e, _ := start(t, js, o, generic(t, "hook", hook.URL, deliver.Filter{}), generic(t, "audit", am.URL, deliver.Filter{Priorities: []string{"critical"}}))
		engines = append(engines, e)
	}
	for _, e := range engines {
		select {
		case <-e.Ready():
		case <-time.After(90 * time.Second):
			t.Fatal("a daemon's delivery never got ready")
		}
	}
	var ids []string
	crit := 0
	for i := range 30 {
		pr := []string{"urgent", "critical", "urgent"}[i%3]
		if pr == "critical" {
			crit++
		}
		ids = append(ids, env.Alert(t, i, pr, 0.9))
	}
	testenv.Eventually(t, 60*time.Second, "every alert delivered to both destinations", func() bool {
		return len(hook.Accepted()) >= len(ids) && len(am.Accepted()) >= crit
	})
	time.Sleep(time.Second)
	got := keys(hook.Accepted())
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("alert delivered %d times to hook", got[id])
		}
	}
	if len(hook.Accepted()) != len(ids) || len(am.Accepted()) != crit {
		t.Errorf("%d and %d deliveries for %d alerts (%d critical)", len(hook.Accepted()), len(am.Accepted()), len(ids), crit)
	}
	var per []string
	for _, e := range engines {
		per = append(per, fmt.Sprint(e.Stats()[0].Delivered))
	}
	t.Logf("3 daemons on 3 nodes: hook deliveries per daemon %s", strings.Join(per, "/"))
}

// The delivery leg's latency: from the alert's PubAck (the daemon has
// stored it) to the receiver's request, at a steady rate (1/s by default;
// TRIAGED_DELIVER_RATE, TRIAGED_DELIVER_N change it).
func TestDeliveryLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: a paced run of alerts")
	}
	rate, n := 1.0, 20
	if v, err := strconv.ParseFloat(os.Getenv("TRIAGED_DELIVER_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("TRIAGED_DELIVER_N")); err == nil && v > 0 {
		n = v
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	start(t, env.JS, testOptions(), generic(t, "hook", rc.URL, deliver.Filter{}))
	time.Sleep(200 * time.Millisecond) // consumer in place
	stored := map[string]time.Time{}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		id := env.Alert(t, i, "critical", 0.95)
		stored[id] = time.Now()
	}
	testenv.Eventually(t, 10*time.Second, "every alert delivered", func() bool { return len(rc.Accepted()) >= n })
	var lat []time.Duration
	for _, r := range rc.Accepted() {
		lat = append(lat, r.At.Sub(stored[r.Header.Get("Idempotency-Key")]))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("delivery latency, alert stored -> receiver request, %d alerts at %.1f/s: p50 %s, p99 %s, max %s",
		n, rate, q(0.5), q(0.99), lat[len(lat)-1])
	if q(0.99) > 2*time.Second {
		t.Errorf("p99 %s", q(0.99))
	}
}
