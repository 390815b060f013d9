package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// hookSink is a local webhook destination: it records every request.
type hookSink struct {
	mu     sync.Mutex
	bodies [][]byte
	srv    *httptest.Server
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookSink) alerts(t *testing.T) []publish.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []publish.Result
	for _, b := range h.bodies {
		var r publish.Result
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("webhook body: %v\n%s", err, b)
		}
		if r.Kind == "alert" {
			out = append(out, r)
		}
	}
	return out
}

// nihFilms are copies of the shared NIH film, each with its own SOP
// Instance UID.
func nihFilms(t *testing.T, n int) (map[string][]byte, []string) {
	t.Helper()
	src, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte("1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888")
	out := map[string][]byte{}
	var uids []string
	for i := range n {
		nu := append(append([]byte(nil), uid[:len(uid)-4]...), fmt.Sprintf("%04d", 9000+i)...)
		out[string(nu)] = bytes.ReplaceAll(src, uid, nu)
		uids = append(uids, string(nu))
	}
	return out, uids
}

// A candidate model set runs beside the live one: both score every film,
// the candidate's results are stored marked shadow on their own subject,
// and only the live set alerts (with heatmaps) and reaches the webhook,
// although the candidate's thresholds make every film critical for it.
func TestShadowCandidateNeverAlerts(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	hook := newHookSink(t)
	s := testenv.NATS(t)
	cfg := newConfig(t, s.ClientURL())
	dir := t.TempDir()
	key := filepath.Join(dir, "triage.key")
	if err := os.WriteFile(key, []byte("a-triage-key-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Live: every film urgent (the NIH film scores between these); the
	// candidate: every film critical, were it allowed to alert.
	cfg.Triage.UrgentThreshold, cfg.Triage.CriticalThreshold = 0.01, 0.999
	cfg.Shadow = config.Shadow{Models: []config.Model{{Path: testenv.Model(t, "resnet18")}}, UrgentThreshold: 0.0001, CriticalThreshold: 0.0002}
	cfg.Deliver.TriageKeyFile = key
	cfg.Deliver.MinBackoff = 100 * time.Millisecond
	cfg.Deliver.Destinations = []config.DeliverDestination{{Name: "hook", Type: "webhook", URL: hook.srv.URL}}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("config: %v", ps)
	}
	h := start(t, cfg)

	films, uids := nihFilms(t, 3)
	for i, uid := range uids {
		drop(t, h.drop, fmt.Sprintf("s%d.dcm", i), films[uid])
	}
	var shadow []publish.Result
	testenv.Eventually(t, 90*time.Second, "3 live and 3 shadow results", func() bool {
		shadow = testenv.Stored[publish.Result](t, h.url, "TRIAGED_RESULTS", "triaged.shadow.result")
		return len(results(t, h.url)) == 3 && len(shadow) == 3
	})
	testenv.Eventually(t, 30*time.Second, "3 alerts at the webhook", func() bool { return len(hook.alerts(t)) >= 3 })
	time.Sleep(2 * time.Second) // a stray candidate alert would arrive by now

	live := results(t, h.url)
	var liveSet string
	for _, uid := range uids {
		rs := live[uid]
		if len(rs) != 1 || rs[0].Shadow || rs[0].Priority != "urgent" || len(rs[0].Attachments) == 0 {
			t.Fatalf("live result of %s: %+v", uid, rs)
		}
		liveSet = rs[0].ModelSet
	}
	for _, r := range shadow {
		if !r.Shadow || r.Kind != "result" || r.Priority != "critical" || r.ModelSet == liveSet || len(r.Attachments) != 0 ||
			r.MessageID != publish.ShadowResultID(r.Film.SOPInstanceUID, r.ModelSet) || len(r.Models) != 1 || r.Models[0].Name != "resnet18" {
			t.Errorf("shadow result: shadow %t kind %s priority %s set %s (live %s) attachments %d id %s models %+v",
				r.Shadow, r.Kind, r.Priority, r.ModelSet, liveSet, len(r.Attachments), r.MessageID, r.Models)
		}
		if live[r.Film.SOPInstanceUID] == nil {
			t.Errorf("shadow result for a film without a live result: %s", r.Film.SOPInstanceUID)
		}
	}
	alerts := testenv.Stored[publish.Result](t, h.url, "TRIAGED_ALERTS", "triaged.alert.critical")
	alerts = append(alerts, testenv.Stored[publish.Result](t, h.url, "TRIAGED_ALERTS", "triaged.alert.urgent")...)
	if len(alerts) != 3 {
		t.Errorf("%d alerts stored, want the live set's 3", len(alerts))
	}
	for _, a := range append(alerts, hook.alerts(t)...) {
		if a.ModelSet != liveSet || a.Shadow || a.Priority != "urgent" {
			t.Errorf("alert from set %s (live %s), shadow %t, priority %s", a.ModelSet, liveSet, a.Shadow, a.Priority)
		}
	}
	if n := len(hook.alerts(t)); n != 3 {
		t.Errorf("%d alerts delivered to the webhook, want 3", n)
	}
	mfs, err := h.d.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var candidate float64
	for _, mf := range mfs {
		if mf.GetName() == "triaged_shadow_results_total" {
			for _, m := range mf.GetMetric() {
				candidate += m.GetCounter().GetValue()
			}
		}
	}
	if candidate != 3 {
		t.Errorf("triaged_shadow_results_total sums to %g, want 3", candidate)
	}

	// What `triaged model eval -stored` reads: both sets, side by side,
	// joined with labels (one film COVID-19, two not).
	nc, err := nats.Connect(h.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := eval.ReadStored(context.Background(), js, eval.StoredQuery{Stream: "TRIAGED_RESULTS", Subjects: []string{"triaged.result", "triaged.shadow.result"}})
	if err != nil {
		t.Fatal(err)
	}
	rep := eval.CompareStored("labels.csv", rs, &eval.UIDLabels{By: eval.BySOP, Positive: map[string]bool{uids[0]: true, uids[1]: false, uids[2]: false}})
	if len(rep.Sets) != 2 {
		t.Fatalf("%d model sets in the comparison, want live and shadow:\n%s", len(rep.Sets), rep.Markdown())
	}
	for i, want := range []struct {
		set, role string
		urgent    eval.Confusion
	}{{liveSet, "live", eval.Confusion{TP: 1, FP: 2}}, {shadow[0].ModelSet, "shadow", eval.Confusion{TP: 1, FP: 2}}} {
		s := rep.Sets[i]
		if s.ModelSet != want.set || s.Role != want.role || s.Films != 3 || s.Positives != 1 || s.Negatives != 2 || s.Operating[0].Confusion != want.urgent {
			t.Errorf("set %d: %+v, want %s %s", i, s, want.role, want.set)
		}
	}
	t.Logf("stored results compared:\n%s", rep.Markdown())
}

// shadow.all: the whole daemon in shadow. Every result is a shadow result
// on its own subject; no alert is stored or delivered, no heatmap made.
func TestShadowAllStoresWithoutAlerts(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	hook := newHookSink(t)
	s := testenv.NATS(t)
	cfg := newConfig(t, s.ClientURL())
	key := filepath.Join(t.TempDir(), "triage.key")
	if err := os.WriteFile(key, []byte("a-triage-key-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Triage.UrgentThreshold, cfg.Triage.CriticalThreshold = 0.0001, 0.0002
	cfg.Shadow.All = true
	cfg.Deliver.TriageKeyFile = key
	cfg.Deliver.Destinations = []config.DeliverDestination{{Name: "hook", Type: "webhook", URL: hook.srv.URL}}
	h := start(t, cfg)

	films, uids := nihFilms(t, 2)
	for i, uid := range uids {
		drop(t, h.drop, fmt.Sprintf("a%d.dcm", i), films[uid])
	}
	var shadow []publish.Result
	testenv.Eventually(t, 60*time.Second, "2 shadow results and the films done", func() bool {
		shadow = testenv.Stored[publish.Result](t, h.url, "TRIAGED_RESULTS", "triaged.shadow.result")
		return len(shadow) == 2 && count(filepath.Join(h.drop, "done"), isFilm) == 2
	})
	time.Sleep(2 * time.Second)
	for _, r := range shadow {
		if !r.Shadow || r.Priority != "critical" || len(r.Attachments) != 0 || len(r.PendingAttachments) != 0 {
			t.Errorf("shadow result: shadow %t priority %s attachments %d pending %v", r.Shadow, r.Priority, len(r.Attachments), r.PendingAttachments)
		}
	}
	if n := len(results(t, h.url)); n != 0 {
		t.Errorf("%d results on triaged.result, want none under shadow.all", n)
	}
	if ms := testenv.StreamMessages(t, h.url, "TRIAGED_ALERTS"); len(ms) != 0 {
		t.Errorf("%d messages in the alert stream, want none", len(ms))
	}
	if n := len(hook.alerts(t)); n != 0 {
		t.Errorf("%d alerts delivered, want none", n)
	}
	// Leaving shadow is a restart, not a reload: a half-applied switch
	// (results moving subjects mid-film) is not worth the saving.
	next := *cfg
	next.Shadow.All = false
	res, err := h.d.Reload(&next)
	if err != nil || len(res.NeedRestart) != 1 || res.NeedRestart[0] != "shadow.all" {
		t.Errorf("reload turning shadow.all off: %+v %v", res, err)
	}
}
