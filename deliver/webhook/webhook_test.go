package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/deliver/webhook"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

func run(t *testing.T, env *delivertest.Env, dests ...deliver.Destination) {
	t.Helper()
	e, err := deliver.New(env.JS, deliver.Options{Prefix: "triaged", Stream: "TRIAGED_ALERTS", ManageStreams: true,
		TriageKey: delivertest.Key, MinBackoff: 50 * time.Millisecond, Log: zerolog.Nop()}, dests...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func links(t *testing.T) deliver.Links {
	l, err := deliver.ParseLinks("https://wiki.example/triaged", "https://worklist.example/films/{{.TriageID}}")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The PagerDuty shape: trigger with dedup_key = triage ID, severity
// critical/error, links only; the acknowledgement resolves the same key.
// No patient data leaves: the SOP Instance UID and file name appear
// nowhere in the requests.
func TestPagerDutyTriggerAndResolve(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	w, err := webhook.New(webhook.Options{Name: "pd", URL: rc.URL + "/v2/enqueue", Template: webhook.PagerDuty,
		RoutingKey: "R0UT1NGKEY", Site: "st-elsewhere", Links: links(t), SigningKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	run(t, env, w)
	c := env.Alert(t, 1, "critical", 0.97)
	env.Alert(t, 2, "urgent", 0.6)
	env.Ack(t, c, "dr-house")
	testenv.Eventually(t, 10*time.Second, "three events", func() bool { return len(rc.Accepted()) == 3 })
	tid := deliver.TriageID(delivertest.Key, c)
	var evs []webhook.PagerDutyEvent
	for _, r := range rc.Accepted() {
		if strings.Contains(string(r.Body), "1.2.826") || strings.Contains(string(r.Body), "patient-") ||
			strings.Contains(r.Header.Get("Idempotency-Key"), "1.2.826") {
			t.Errorf("patient data in a PagerDuty request: %s %v", r.Body, r.Header)
		}
		if r.Path != "/v2/enqueue" {
			t.Errorf("path %s", r.Path)
		}
		var e webhook.PagerDutyEvent
		if err := json.Unmarshal(r.Body, &e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	// The batch goes critical first, the acknowledgement right after its
	// alert, then urgent.
	trig, res, urg := evs[0], evs[1], evs[2]
	if trig.EventAction != "trigger" || trig.DedupKey != tid || trig.RoutingKey != "R0UT1NGKEY" ||
		trig.Payload.Severity != "critical" || trig.Payload.Source != "st-elsewhere" ||
		trig.Payload.CustomDetails["score"] != 0.97 || trig.ClientURL != "https://worklist.example/films/"+tid || len(trig.Links) != 2 {
		t.Errorf("trigger %+v %+v", trig, trig.Payload)
	}
	if urg.Payload.Severity != "error" {
		t.Errorf("urgent severity %q", urg.Payload.Severity)
	}
	if res.EventAction != "resolve" || res.DedupKey != tid || res.Payload != nil {
		t.Errorf("resolve %+v", res)
	}
	if k := rc.Accepted()[1].Header.Get("Idempotency-Key"); k != tid+":ack" {
		t.Errorf("resolve idempotency key %q", k)
	}
}

// The Opsgenie shape: create with alias = triage ID and P1/P2, GenieKey
// authorization; the acknowledgement closes the alias with the user.
func TestOpsgenieCreateAndClose(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	w, err := webhook.New(webhook.Options{Name: "og", URL: rc.URL, Template: webhook.Opsgenie, APIKey: "g3n1e", Links: links(t),
		Headers: http.Header{"X-Site": {"st-elsewhere"}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, env, w)
	u := env.Alert(t, 1, "urgent", 0.6)
	env.Ack(t, u, "dr-cameron")
	testenv.Eventually(t, 10*time.Second, "create and close", func() bool { return len(rc.Accepted()) == 2 })
	tid := deliver.TriageID(delivertest.Key, u)
	cr, cl := rc.Accepted()[0], rc.Accepted()[1]
	var a webhook.OpsgenieAlert
	if err := json.Unmarshal(cr.Body, &a); err != nil {
		t.Fatal(err)
	}
	if cr.Path != "/v2/alerts" || cr.Header.Get("Authorization") != "GenieKey g3n1e" || cr.Header.Get("X-Site") != "st-elsewhere" ||
		a.Alias != tid || a.Priority != "P2" || len(a.Message) > 130 || !strings.Contains(a.Description, "https://worklist.example/films/"+tid) {
		t.Errorf("create %s %+v %v", cr.Path, a, cr.Header)
	}
	var c webhook.OpsgenieClose
	if err := json.Unmarshal(cl.Body, &c); err != nil {
		t.Fatal(err)
	}
	if cl.Path != "/v2/alerts/"+tid+"/close?identifierType=alias" || c.User != "dr-cameron" || c.Source != "triaged" {
		t.Errorf("close %s %+v", cl.Path, c)
	}
}

func TestSignVerify(t *testing.T) {
	key, body, now := []byte("secret"), []byte(`{"a":1}`), time.Unix(1_800_000_000, 0)
	h := webhook.Sign(key, now, body)
	if err := webhook.Verify(h, body, key, now.Add(10*time.Second), time.Minute); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	for name, c := range map[string]struct {
		h    string
		body []byte
		key  []byte
		at   time.Time
	}{
		"tampered body": {h, []byte(`{"a":2}`), key, now},
		"wrong key":     {h, body, []byte("other"), now},
		"replayed":      {h, body, key, now.Add(10 * time.Minute)},
		"no v1":         {"t=1800000000", body, key, now},
		"garbage":       {"nonsense", body, key, now},
	} {
		if err := webhook.Verify(c.h, c.body, c.key, c.at, time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Key rotation: a second v1 value may match.
	rot := h + ",v1=" + strings.Repeat("0", 64)
	if err := webhook.Verify(rot, body, key, now, time.Minute); err != nil {
		t.Errorf("rotated header refused: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	key := []byte("secret")
	f.Add(webhook.Sign(key, time.Unix(1_800_000_000, 0), []byte("x")), []byte("x"))
	f.Add("t=,v1=", []byte{})
	f.Add("t=99999999999999999999,v1=00", []byte("y"))
	f.Add(",,,=,", []byte("z"))
	f.Fuzz(func(t *testing.T, h string, body []byte) {
		now := time.Unix(1_800_000_000, 0)
		if webhook.Verify(h, body, key, now, time.Minute) == nil {
			// Accepted: then it was a real signature of this body, and the
			// same header must not pass for another body.
			if webhook.Verify(h, append(body, '!'), key, now, time.Minute) == nil {
				t.Fatalf("header %q accepted for two bodies", h)
			}
		}
	})
}
