package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/webhook"
	"github.com/triaged/triaged/internal/testkit/peers"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// hookRequest is one request a webhook receiver got.
type hookRequest struct {
	at       time.Time
	key      string // Idempotency-Key
	event    string // Triaged-Event
	triageID string
	sigErr   error
	body     []byte
}

// hookReceiver stands in for a paging gateway: it records every request
// and accepts it.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
}

func newHookReceiver(t *testing.T, signingKey []byte) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := hookRequest{at: at, key: r.Header.Get("Idempotency-Key"), event: r.Header.Get("Triaged-Event"),
			triageID: r.Header.Get("Triaged-Triage-Id"), body: b,
			sigErr: webhook.Verify(r.Header.Get("Triaged-Signature"), b, signingKey, time.Now(), 5*time.Minute)}
		h.mu.Lock()
		h.got = append(h.got, req)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// requests returns the requests of one Triaged-Event ("": all).
func (h *hookReceiver) requests(event string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.got {
		if event == "" || r.event == event {
			out = append(out, r)
		}
	}
	return out
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Films dropped at about one a second into a daemon delivering to a
// webhook: every alert reaches the receiver once by Idempotency-Key,
// signed; the time from the film's drop to the receiver's request is
// measured (issue 15: p50/p99 at 1 film/s). Then `triaged ack` resolves
// one alert, and the webhook receives the acknowledgement.
func TestFilmDroppedToWebhookLatencyAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon and drops a film a second (half a minute or more)")
	}
	testenv.ORT(t)
	const n = 20
	signing := []byte("a-webhook-signing-key-0123456789")
	hook := newHookReceiver(t, signing)

	d := newIntakeDaemon(t, "")
	for name, v := range map[string][]byte{"triage.key": []byte("a-triage-key-of-some-length\n"), "hook.key": append(signing, '\n')} {
		if err := os.WriteFile(filepath.Join(d.dir, name), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Thresholds that make the shared NIH film urgent (it scores above
	// 0.01 and below 0.999 with the committed model), so every film alerts
	// without waiting for an occlusion map (critical only).
	d.write(t, fmt.Sprintf(`
triage: {urgent_threshold: 0.01, critical_threshold: 0.999}
deliver:
  triage_key_file: %s
  site: e2e
  min_backoff: 100ms
  destinations:
    - {name: hook, type: webhook, url: %q, signing_key_file: %s}
`, filepath.Join(d.dir, "triage.key"), hook.srv.URL, filepath.Join(d.dir, "hook.key")))
	s := d.start(t)
	if err := os.MkdirAll(d.drop, 0o755); err != nil {
		t.Fatal(err)
	}

	dropped := map[string]time.Time{}
	for i, f := range films(t, n) {
		tmp := filepath.Join(d.drop, fmt.Sprintf(".w%02d.tmp", i))
		if err := os.WriteFile(tmp, f, 0o644); err != nil {
			t.Fatal(err)
		}
		dropped[filmUID(i)] = time.Now()
		if err := os.Rename(tmp, filepath.Join(d.drop, fmt.Sprintf("w%02d.dcm", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	testenv.Eventually(t, 120*time.Second, fmt.Sprintf("%d alerts at the webhook", n), func() bool {
		time.Sleep(100 * time.Millisecond)
		keys := map[string]bool{}
		for _, r := range hook.requests("alert") {
			keys[r.key] = true
		}
		return len(keys) >= n
	})
	// Late duplicates would show within a moment.
	time.Sleep(2 * time.Second)

	perKey := map[string]int{}
	// The breakdown: the daemon's own timings (claim to publish, of which
	// queue wait and heatmaps) beside the whole.
	var lat, toScored, toHook, total, queue, heat []time.Duration
	msDur := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	var alertID, triageID string
	for _, r := range hook.requests("alert") {
		perKey[r.key]++
		if r.sigErr != nil {
			t.Errorf("alert %s: signature does not verify: %v", r.key, r.sigErr)
		}
		var a publish.Result
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("alert body: %v\n%s", err, r.body)
		}
		if a.MessageID != r.key || a.Kind != "alert" || a.Priority != "urgent" {
			t.Errorf("alert %s: message_id %s, kind %s, priority %s", r.key, a.MessageID, a.Kind, a.Priority)
		}
		at, ok := dropped[a.Film.SOPInstanceUID]
		if !ok {
			t.Errorf("alert for an instance never dropped: %s", a.Film.SOPInstanceUID)
			continue
		}
		if perKey[r.key] == 1 {
			lat = append(lat, r.at.Sub(at))
			toScored = append(toScored, a.ScoredAt.Sub(at))
			toHook = append(toHook, r.at.Sub(a.ScoredAt))
			total, queue, heat = append(total, msDur(a.Timings.TotalMS)), append(queue, msDur(a.Timings.QueueMS)), append(heat, msDur(a.Timings.HeatmapMS))
		}
		alertID, triageID = a.MessageID, r.triageID
	}
	if len(perKey) != n {
		t.Errorf("%d distinct alerts at the receiver, want %d", len(perKey), n)
	}
	for k, c := range perKey {
		if c != 1 {
			t.Errorf("alert %s received %d times", k, c)
		}
	}
	for _, m := range []struct {
		what string
		ds   []time.Duration
	}{{"film dropped -> webhook request", lat}, {"  of which dropped -> scored_at", toScored}, {"  of which scored_at -> webhook request", toHook},
		{"  daemon's timings.total_ms (claim to publish)", total}, {"  daemon's timings.queue_ms", queue}, {"  daemon's timings.heatmap_ms", heat}} {
		slices.Sort(m.ds)
		if len(m.ds) > 0 {
			t.Logf("%s, %d films at 1/s: p50 %s, p99 %s, min %s, max %s", m.what,
				len(m.ds), percentile(m.ds, 0.50).Round(time.Millisecond), percentile(m.ds, 0.99).Round(time.Millisecond),
				m.ds[0].Round(time.Millisecond), m.ds[len(m.ds)-1].Round(time.Millisecond))
		}
	}

	// The on-call acknowledges one alert: the webhook gets the ack.
	code, out, errs := run("ack", alertID, "-by", "tester", "-server", d.url())
	if code != 0 || !strings.Contains(out, `"duplicate":false`) {
		t.Fatalf("triaged ack: exit %d\n%s%s", code, out, errs)
	}
	testenv.Eventually(t, 60*time.Second, "the acknowledgement at the webhook", func() bool {
		time.Sleep(100 * time.Millisecond)
		return len(hook.requests("ack")) >= 1
	})
	acks := hook.requests("ack")
	if len(acks) != 1 {
		t.Errorf("%d acknowledgements at the webhook, want 1", len(acks))
	}
	var ack publish.Ack
	if err := json.Unmarshal(acks[0].body, &ack); err != nil {
		t.Fatalf("ack body: %v\n%s", err, acks[0].body)
	}
	if ack.AlertID != alertID || ack.By != "tester" || ack.Via != "cli" || acks[0].triageID != triageID || acks[0].sigErr != nil {
		t.Errorf("acknowledgement at the webhook: %+v (triage ID %s, want %s; signature: %v)", ack, acks[0].triageID, triageID, acks[0].sigErr)
	}
	s.stop(t, 60*time.Second)
}

// amNotification is what Alertmanager's webhook receiver gets.
type amNotification struct {
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// amFind returns the labels of the first alert notified with status whose
// alertname is name.
func amFind(h *hookReceiver, status, name string) (map[string]string, map[string]string, string, bool) {
	for _, r := range h.requests("") {
		var n amNotification
		if json.Unmarshal(r.body, &n) != nil {
			continue
		}
		for _, a := range n.Alerts {
			if a.Status == status && a.Labels["alertname"] == name {
				return a.Labels, a.Annotations, string(r.body), true
			}
		}
	}
	return nil, nil, "", false
}

// A critical film dropped into the daemon reaches a real Alertmanager's
// receiver with the documented labels and no patient data; `triaged ack`
// by its triage ID resolves it there.
func TestFilmDroppedToAlertmanagerAndResolvedByAck(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs the daemon and Alertmanager (tens of seconds)")
	}
	testenv.ORT(t)
	hook := newHookReceiver(t, nil)
	am := peers.Alertmanager(t, hook.srv.URL)
	d := newIntakeDaemon(t, "")
	key := "a-triage-key-of-some-length"
	if err := os.WriteFile(filepath.Join(d.dir, "triage.key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Thresholds that make the shared NIH film critical; no occlusion map,
	// which would cost minutes of CPU here and is not what is tested.
	d.write(t, fmt.Sprintf(`
triage: {urgent_threshold: 0.001, critical_threshold: 0.002}
heatmap: {occlusion: {budget: {critical: "off", urgent: "off"}}}
deliver:
  triage_key_file: %s
  site: e2e
  min_backoff: 100ms
  destinations:
    - {name: am, type: alertmanager, urls: [%q], resend_interval: 1s}
`, filepath.Join(d.dir, "triage.key"), am))
	s := d.start(t)
	if err := os.MkdirAll(d.drop, 0o755); err != nil {
		t.Fatal(err)
	}
	dropFilms(t, d.drop, films(t, 1), 0)

	var labels, ann map[string]string
	var body string
	testenv.Eventually(t, 120*time.Second, "the firing notification", func() bool {
		time.Sleep(100 * time.Millisecond)
		var ok bool
		labels, ann, body, ok = amFind(hook, "firing", "TriagedFilm")
		return ok
	})
	alerts := testenv.Stored[publish.Result](t, d.url(), "TRIAGED_ALERTS", "triaged.alert.critical")
	if len(alerts) != 1 {
		t.Fatalf("%d critical alerts stored, want 1", len(alerts))
	}
	a := alerts[0]
	tid := deliver.TriageID([]byte(key), a.MessageID)
	want := map[string]string{"alertname": "TriagedFilm", "severity": "critical", "priority": "critical", "site": "e2e", "model_set": a.ModelSet, "triage_id": tid}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, labels[k], v, labels)
		}
	}
	if ann["summary"] == "" || ann["score"] == "" {
		t.Errorf("annotations %v lack summary or score", ann)
	}
	for _, leak := range []string{a.Film.SOPInstanceUID, a.Film.StudyInstanceUID, a.Source.File, a.Source.FilmID} {
		if leak != "" && strings.Contains(body, leak) {
			t.Errorf("the notification carries film data %q:\n%s", leak, body)
		}
	}
	if _, _, _, ok := amFind(hook, "firing", "TriagedWatchdog"); !ok {
		t.Log("no TriagedWatchdog notification yet (it is grouped apart; not required here)")
	}

	code, out, errs := run("ack", tid, "-by", "tester", "-server", d.url())
	if code != 0 || !strings.Contains(out, a.MessageID) {
		t.Fatalf("triaged ack %s: exit %d\n%s%s", tid, code, out, errs)
	}
	testenv.Eventually(t, 60*time.Second, "the resolved notification", func() bool {
		time.Sleep(100 * time.Millisecond)
		l, _, _, ok := amFind(hook, "resolved", "TriagedFilm")
		return ok && l["triage_id"] == tid
	})
	s.stop(t, 60*time.Second)
}
