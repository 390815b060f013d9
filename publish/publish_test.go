package publish

import (
	"context"
	"github.com/triaged/triaged/bus"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

func newPub(t *testing.T, manage bool) *Publisher {
	t.Helper()
	s := testenv.NATS(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := New(nc, Options{
		Prefix:        "triaged",
		Results:       bus.StreamSpec{Name: "R", Replicas: 1, DuplicateWindow: time.Hour},
		Alerts:        bus.StreamSpec{Name: "A", Replicas: 1, DuplicateWindow: time.Hour},
		ManageStreams: manage,
		Timeout:       5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResultAndAlertAreDeduplicated(t *testing.T) {
	p := newPub(t, true)
	ctx := context.Background()
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	r := &Result{Schema: ResultSchema, Film: Film{SOPInstanceUID: "1.2.3"}, ModelSet: "ms-x", Priority: "urgent", Score: 0.5}
	first, err := p.PublishResult(ctx, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].Subject != "triaged.alert.urgent" || first[1].Subject != "triaged.result" || first[0].Duplicate || first[1].Duplicate {
		t.Fatalf("first publish: %+v", first)
	}
	again, err := p.PublishResult(ctx, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate || !again[1].Duplicate {
		t.Fatalf("re-publishing the same film must be deduplicated: %+v", again)
	}
	// The same film alerting at another priority is a new alert.
	r.Priority = "critical"
	other, err := p.PublishResult(ctx, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Duplicate || !other[1].Duplicate {
		t.Fatalf("other priority: %+v", other)
	}
}

func TestOperatorManagedStreamsMustExist(t *testing.T) {
	p := newPub(t, false)
	if err := p.EnsureStreams(context.Background()); err == nil {
		t.Fatal("missing streams accepted")
	}
}

func TestEventsGoToTheirSubjects(t *testing.T) {
	p := newPub(t, true)
	ctx := context.Background()
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for kind, subj := range map[string]string{"error": "triaged.error", "skipped": "triaged.skipped"} {
		got, err := p.PublishEvent(ctx, &Event{Schema: EventSchema, Kind: kind, MessageID: "f1:" + kind, Code: "x"})
		if err != nil || got.Subject != subj || got.Stream != "R" {
			t.Fatalf("%s: %+v %v", kind, got, err)
		}
	}
}

// A shadow result goes to its own subject only, never alerts whatever its
// priority, and is deduplicated apart from the live result of the same
// instance and model set.
func TestShadowResultsHaveTheirOwnSubject(t *testing.T) {
	s := testenv.NATS(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	opts := Options{Prefix: "triaged", Results: bus.StreamSpec{Name: "R", Replicas: 1, DuplicateWindow: time.Hour},
		Alerts: bus.StreamSpec{Name: "A", Replicas: 1, DuplicateWindow: time.Hour}, ManageStreams: true, Timeout: 5 * time.Second}
	ctx := context.Background()
	// Without shadow configured, an operator-managed stream need not
	// capture the shadow subject; with it, it must.
	plain, _ := New(nc, opts)
	if err := plain.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	opts.Shadow, opts.ManageStreams = true, false
	checked, _ := New(nc, opts)
	if err := checked.EnsureStreams(ctx); err == nil || !strings.Contains(err.Error(), "triaged.shadow.result") {
		t.Fatalf("operator-managed stream without the shadow subject: %v", err)
	}
	opts.ManageStreams = true
	p, _ := New(nc, opts)
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	r := &Result{Schema: ResultSchema, Film: Film{SOPInstanceUID: "1.2.3"}, ModelSet: "ms-x", Priority: "critical", Score: 0.99}
	live := *r
	if _, err := p.PublishResult(ctx, &live, true); err != nil {
		t.Fatal(err)
	}
	sh, err := p.PublishShadow(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Subject != "triaged.shadow.result" || sh.Duplicate || !r.Shadow || r.MessageID != "shadow:1.2.3:ms-x" {
		t.Fatalf("shadow publish: %+v, message %+v", sh, r)
	}
	// Under shadow.all the daemon hands PublishResult a result marked
	// shadow: no alert, the shadow subject, deduplicated with the above.
	again := *r
	pubs, err := p.PublishResult(ctx, &again, true)
	if err != nil || len(pubs) != 1 || pubs[0].Subject != "triaged.shadow.result" || !pubs[0].Duplicate {
		t.Fatalf("PublishResult of a shadow result: %+v %v", pubs, err)
	}
	alerts := testenv.StreamMessages(t, s.ClientURL(), "A")
	if len(alerts) != 1 {
		t.Fatalf("%d alerts stored, want the live one only", len(alerts))
	}
}
