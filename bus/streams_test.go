package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func TestSubjectCovers(t *testing.T) {
	for _, c := range []struct {
		f, s string
		want bool
	}{
		{"triaged.>", "triaged.alert.>", true}, {"triaged.alert.>", "triaged.alert.>", true},
		{"triaged.*", "triaged.result", true}, {"triaged.result", "triaged.result", true},
		{"triaged.result", "triaged.error", false}, {"triaged.*", "triaged.alert.>", false},
		{"other.>", "triaged.result", false}, {"triaged.ingest.>", "triaged.ingest.films", true},
		{"triaged.ingest.*", "triaged.ingest.films", true}, {"triaged.ingest.*", "triaged.ingest", false},
	} {
		if got := bus.SubjectCovers(c.f, c.s); got != c.want {
			t.Errorf("SubjectCovers(%q, %q) = %v", c.f, c.s, got)
		}
	}
}

// An operator-managed stream with a wildcard subject serves the intake and
// the record alike; one that misses a subject or has no duplicate window is
// refused with the reason.
func TestOperatorManagedWildcardStreams(t *testing.T) {
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, subj := range map[string]string{"OPS_INGEST": "triaged.ingest.>", "OPS_RECORD": "triaged.*", "OPS_ALERTS": "triaged.alert.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Duplicates: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	ok := []bus.Stream{
		{Spec: bus.StreamSpec{Name: "OPS_INGEST"}, Subjects: []string{"triaged.ingest.films"}, WorkQueue: true},
		{Spec: bus.StreamSpec{Name: "OPS_RECORD"}, Subjects: []string{"triaged.result", "triaged.skipped", "triaged.error"}, NeedDuplicates: true},
		{Spec: bus.StreamSpec{Name: "OPS_ALERTS"}, Subjects: []string{"triaged.alert.>"}, NeedDuplicates: true},
	}
	for _, s := range ok {
		if err := bus.EnsureStream(ctx, js, s, false); err != nil {
			t.Errorf("%s: %v", s.Spec.Name, err)
		}
	}
	bad := bus.Stream{Spec: bus.StreamSpec{Name: "OPS_RECORD"}, Subjects: []string{"triaged.alert.critical"}}
	if err := bus.EnsureStream(ctx, js, bad, false); err == nil || !strings.Contains(err.Error(), "does not capture subject triaged.alert.critical") {
		t.Errorf("uncaptured subject: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS_NODUP", Subjects: []string{"x.>"}, Duplicates: 0}); err != nil {
		t.Fatal(err)
	}
	// The server applies a default window when none is given: check what
	// it did rather than assume.
	info, _ := js.Stream(ctx, "OPS_NODUP")
	if info.CachedInfo().Config.Duplicates == 0 {
		if err := bus.EnsureStream(ctx, js, bus.Stream{Spec: bus.StreamSpec{Name: "OPS_NODUP"}, Subjects: []string{"x.y"}, NeedDuplicates: true}, false); err == nil {
			t.Error("a stream without a duplicate window was accepted")
		}
	}
	if err := bus.EnsureStream(ctx, js, bus.Stream{Spec: bus.StreamSpec{Name: "MISSING"}, Subjects: []string{"y"}}, false); err == nil || !strings.Contains(err.Error(), "must exist") {
		t.Errorf("missing stream: %v", err)
	}
}
