package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// triaged ack stores an acknowledgement for an alert named by its ID, by a
// triage ID found among the active alerts, or by one found in the stream
// with the triage key; the second acknowledgement is a duplicate.
func TestAckByAlertIDAndTriageID(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p, err := publish.New(nc, publish.Options{Prefix: "triaged",
		Results:       bus.StreamSpec{Name: "TRIAGED_RESULTS", Replicas: 1, DuplicateWindow: time.Hour},
		Alerts:        bus.StreamSpec{Name: "TRIAGED_ALERTS", Replicas: 1, DuplicateWindow: time.Hour},
		ManageStreams: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		r := &publish.Result{Film: publish.Film{SOPInstanceUID: "1.2.3." + string(rune('0'+i))}, ModelSet: "ms-x", Priority: "critical"}
		if _, err := p.PublishResult(ctx, r, true); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Film.SOPInstanceUID+":ms-x:critical")
	}
	dir := t.TempDir()
	key := "a-triage-key-of-some-length"
	os.WriteFile(filepath.Join(dir, "triage.key"), []byte(key+"\n"), 0o600)
	cfg := filepath.Join(dir, "triaged.yaml")
	os.WriteFile(cfg, []byte("deliver:\n  triage_key_file: triage.key\n"), 0o600)

	// By alert ID, ID first as in the usage line.
	code, out, errs := run("ack", ids[0], "-by", "dr-a", "-config", cfg, "-server", srv.ClientURL())
	if code != 0 || !strings.Contains(out, `"duplicate":false`) || !strings.Contains(out, deliver.TriageID([]byte(key), ids[0])) {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := run("ack", "-by", "dr-b", "-server", srv.ClientURL(), ids[0]); code != 0 || !strings.Contains(out, `"duplicate":true`) {
		t.Errorf("second acknowledgement: exit %d %s", code, out)
	}

	// By triage ID, from the stream with the key.
	tid := deliver.TriageID([]byte(key), ids[2])
	if code, out, errs := run("ack", tid, "-by", "dr-c", "-config", cfg, "-server", srv.ClientURL()); code != 0 || !strings.Contains(out, ids[2]) {
		t.Fatalf("by triage ID from the stream: exit %d\n%s%s", code, out, errs)
	}

	// By triage ID, from the active set (no key needed).
	js, _ := jetstream.New(nc)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: deliver.DefaultActiveBucket}); err != nil {
		t.Fatal(err)
	}
	act, err := deliver.OpenActive(ctx, js, deliver.DefaultActiveBucket)
	if err != nil {
		t.Fatal(err)
	}
	tid1 := strings.Repeat("ab", 16)
	if err := act.Put(ctx, deliver.Active{TriageID: tid1, AlertID: ids[1], Priority: "critical"}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run("ack", tid1, "-by", "dr-d", "-server", srv.ClientURL()); code != 0 || !strings.Contains(out, ids[1]) {
		t.Fatalf("by triage ID from the active set: exit %d\n%s%s", code, out, errs)
	}

	var acks []publish.Ack
	for _, m := range testenv.StreamMessages(t, srv.ClientURL(), "TRIAGED_ALERTS") {
		if m.Subject == "triaged.alert.ack" {
			var a publish.Ack
			json.Unmarshal(m.Data, &a)
			acks = append(acks, a)
		}
	}
	if len(acks) != 3 || acks[0].By != "dr-a" || acks[0].Via != "cli" || acks[1].AlertID != ids[2] || acks[2].By != "dr-d" {
		t.Errorf("stored acknowledgements %+v", acks)
	}

	for _, args := range [][]string{
		{"ack", ids[0], "-server", srv.ClientURL()},                               // no -by
		{"ack", "-by", "x", "-server", srv.ClientURL()},                           // no ID
		{"ack", "not-an-id", "-by", "x", "-server", srv.ClientURL()},              // garbage
		{"ack", strings.Repeat("cd", 16), "-by", "x", "-server", srv.ClientURL()}, // unknown, no key
	} {
		if code, _, errs := run(args...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
