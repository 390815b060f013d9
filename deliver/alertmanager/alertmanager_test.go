package alertmanager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/alertmanager"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/internal/testkit/peers"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// amAlerts reads the alerts Alertmanager holds that match a filter.
func amAlerts(t *testing.T, base, filter string, active bool) []map[string]any {
	t.Helper()
	r, err := http.Get(base + "/api/v2/alerts?active=" + fmt.Sprint(active) + "&silenced=false&inhibited=false&unprocessed=true&filter=" + url.QueryEscape(filter))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return out
}

type notification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

func notifications(rc *delivertest.Receiver) []notification {
	var out []notification
	for _, r := range rc.Requests() {
		var n notification
		if json.Unmarshal(r.Body, &n) == nil {
			out = append(out, n)
		}
	}
	return out
}

func find(ns []notification, status, label, value string) (map[string]string, map[string]string, bool) {
	for _, n := range ns {
		for _, a := range n.Alerts {
			if a.Status == status && a.Labels[label] == value {
				return a.Labels, a.Annotations, true
			}
		}
	}
	return nil, nil, false
}

// A real Alertmanager: an alert published reaches its webhook receiver
// with the right labels and no patient data, is re-sent while active (its
// endsAt moves on), the watchdog fires, and an acknowledgement resolves it.
// The second URL is a member that is down: the pair still gets the alert.
func TestRealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts Alertmanager")
	}
	rc := delivertest.NewReceiver(t)
	base := peers.Alertmanager(t, rc.URL+"/am")
	var wedged atomic.Bool
	wedged.Store(true)
	env := delivertest.Start(t)
	links, err := deliver.ParseLinks("https://wiki.example/triaged", "https://worklist.example/films/{{.TriageID}}")
	if err != nil {
		t.Fatal(err)
	}
	am, err := alertmanager.New(alertmanager.Options{Name: "am", URLs: []string{base, fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))},
		ResendInterval: time.Second, Watchdog: true, Site: "st-elsewhere", Links: links, Instance: "gw1",
		Conditions: func() []alertmanager.Condition {
			return []alertmanager.Condition{{Name: "TriagedPipelineWedged", Severity: "critical",
				Summary: "films in hand and none finished for 2m", Firing: wedged.Load()}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := deliver.New(env.JS, deliver.Options{Prefix: "triaged", Stream: "TRIAGED_ALERTS", ManageStreams: true,
		TriageKey: delivertest.Key, MinBackoff: 100 * time.Millisecond, Log: zerolog.Nop()}, am)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	id := env.Alert(t, 7, "critical", 0.97)
	tid := deliver.TriageID(delivertest.Key, id)
	var labels, ann map[string]string
	testenv.Eventually(t, 20*time.Second, "the firing alert at the receiver", func() bool {
		var ok bool
		labels, ann, ok = find(notifications(rc), "firing", "triage_id", tid)
		return ok
	})
	want := map[string]string{"alertname": "TriagedFilm", "severity": "critical", "priority": "critical",
		"site": "st-elsewhere", "model_set": "ms-0123456789ab", "triage_id": tid}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if ann["score"] != "0.9700" || ann["worklist_url"] != "https://worklist.example/films/"+tid || ann["runbook_url"] == "" {
		t.Errorf("annotations %v", ann)
	}
	for _, r := range rc.Requests() {
		if strings.Contains(string(r.Body), "1.2.826") || strings.Contains(string(r.Body), "patient-") {
			t.Errorf("patient data reached Alertmanager's receiver: %s", r.Body)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the watchdog at the receiver", func() bool {
		_, _, ok := find(notifications(rc), "firing", "alertname", "TriagedWatchdog")
		return ok
	})

	// Re-sent while active: Alertmanager's endsAt for it keeps moving.
	ends := func() string {
		as := amAlerts(t, base, `triage_id="`+tid+`"`, true)
		if len(as) != 1 {
			return ""
		}
		return fmt.Sprint(as[0]["endsAt"])
	}
	first := ends()
	testenv.Eventually(t, 10*time.Second, "a re-send moving endsAt", func() bool { e := ends(); return e != "" && e != first })

	env.Ack(t, id, "dr-wilson")
	testenv.Eventually(t, 20*time.Second, "the resolved notification", func() bool {
		_, _, ok := find(notifications(rc), "resolved", "triage_id", tid)
		return ok
	})
	time.Sleep(2500 * time.Millisecond) // two re-send intervals: it must stay resolved
	if as := amAlerts(t, base, `triage_id="`+tid+`"`, true); len(as) != 0 {
		t.Errorf("alert active again after its acknowledgement: %v", as)
	}
	if n := len(amAlerts(t, base, `alertname="TriagedWatchdog"`, true)); n != 1 {
		t.Errorf("%d watchdog alerts active", n)
	}

	// The daemon's own health goes the same way, and resolves.
	if l, _, ok := find(notifications(rc), "firing", "alertname", "TriagedPipelineWedged"); !ok || l["instance"] != "gw1" || l["severity"] != "critical" {
		t.Errorf("pipeline condition: %v %v", l, ok)
	}
	wedged.Store(false)
	testenv.Eventually(t, 20*time.Second, "the condition resolved", func() bool {
		_, _, ok := find(notifications(rc), "resolved", "alertname", "TriagedPipelineWedged")
		return ok
	})
}
