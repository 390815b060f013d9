package publish

import (
	"context"
	"github.com/triaged/triaged/bus"
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
