// Package alertmanager delivers alerts to Prometheus Alertmanager through
// its API v2 (POST /api/v2/alerts).
//
// Each alert becomes one Alertmanager alert per film and priority, with
// labels free of patient data: alertname TriagedFilm, severity (critical,
// or warning for urgent), priority, site, model_set and triage_id (the
// keyed hash of the alert's message ID); annotations summary, score,
// runbook_url and worklist_url. Alertmanager forgets an alert that is not
// sent again before its endsAt, so the engine's active set (a JetStream KV
// bucket shared by the fleet) is re-sent every ResendInterval with endsAt
// four intervals ahead, as Prometheus does: if every daemon stops, the
// alerts end on their own and the watchdog alert TriagedWatchdog, re-sent
// on the same interval, stops firing. An acknowledgement resolves the
// alert (endsAt set to the acknowledgement's time).
//
// With Options.Conditions every daemon also sends its own pipeline health
// (films stuck, quarantine rate, no film scored, a model failing to load)
// as alerts labelled with its instance, on the same interval.
//
// Several URLs (an HA pair) each receive every alert; a send counts as
// accepted when at least one of them accepted it, since the pair gossips and
// the next re-send reaches a member that was down.
package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/publish"
)

// Alert names.
const (
	FilmAlert     = "TriagedFilm"
	WatchdogAlert = "TriagedWatchdog"
)

// Options configure one Alertmanager destination.
type Options struct {
	Name   string
	URLs   []string // base URLs (http://am:9093); each gets every alert
	Filter deliver.Filter
	// ResendInterval is how often active alerts (and the watchdog) are sent
	// again (1m); keep it below Alertmanager's resolve_timeout.
	ResendInterval time.Duration
	// Watchdog sends the always-firing TriagedWatchdog alert.
	Watchdog     bool
	Site         string
	Links        deliver.Links
	GeneratorURL string // where an alert links back to (default: the worklist link)
	Client       *http.Client
	Now          func() time.Time
	// Conditions, when set, is read every ResendInterval by every daemon:
	// its own pipeline's health (films stuck, quarantine rate, no film
	// scored in reading hours, a model failing to load), sent as alerts
	// labelled with Instance beside the films', so the people paged for
	// films also hear when triage has stopped. A condition that stops
	// firing is sent resolved once.
	Conditions func() []Condition
	Instance   string
}

// Condition is one health check of the daemon, as an alert.
type Condition struct {
	Name     string // alertname, e.g. TriagedPipelineWedged
	Severity string // critical, warning
	Summary  string // no patient data
	Firing   bool
}

// Alertmanager is a deliver.Destination and deliver.Periodic.
type Alertmanager struct {
	o          Options
	targets    []string
	condFiring map[string]bool // conditions last sent firing (LocalTick only)
}

// New checks the options.
func New(o Options) (*Alertmanager, error) {
	if len(o.URLs) == 0 {
		return nil, fmt.Errorf("alertmanager %s: no URL", o.Name)
	}
	a := &Alertmanager{condFiring: map[string]bool{}}
	for _, u := range o.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("alertmanager %s: URL %q is not an http(s) URL", o.Name, u)
		}
		a.targets = append(a.targets, strings.TrimRight(u, "/")+"/api/v2/alerts")
	}
	if o.ResendInterval <= 0 {
		o.ResendInterval = time.Minute
	}
	if o.Client == nil {
		c, err := deliver.NewHTTPClient(deliver.TLS{}, 10*time.Second)
		if err != nil {
			return nil, err
		}
		o.Client = c
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a.o = o
	return a, nil
}

func (a *Alertmanager) Name() string            { return a.o.Name }
func (a *Alertmanager) Filter() deliver.Filter  { return a.o.Filter }
func (a *Alertmanager) Interval() time.Duration { return a.o.ResendInterval }

// Alert is Alertmanager's postable alert.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

var severity = map[string]string{"critical": "critical", "urgent": "warning"}

func (a *Alertmanager) labels(triageID, priority, modelSet string) map[string]string {
	l := map[string]string{"alertname": FilmAlert, "severity": severity[priority], "priority": priority,
		"model_set": modelSet, "triage_id": triageID}
	if a.o.Site != "" {
		l["site"] = a.o.Site
	}
	return l
}

// firing builds the alert for an active film alert.
func (a *Alertmanager) firing(ev *deliver.Event) Alert {
	now := a.o.Now()
	al := Alert{Labels: a.labels(ev.TriageID, ev.Priority, ev.ModelSet), StartsAt: ev.Stored,
		EndsAt: now.Add(4 * a.o.ResendInterval), Annotations: map[string]string{"summary": deliver.Summary(ev)}}
	if ev.Alert != nil {
		al.Annotations["score"] = strconv.FormatFloat(ev.Alert.Score, 'f', 4, 64)
		if !ev.Alert.ScoredAt.IsZero() {
			al.StartsAt = ev.Alert.ScoredAt
		}
	}
	if al.StartsAt.IsZero() || al.StartsAt.After(now) {
		al.StartsAt = now
	}
	if r := a.o.Links.Runbook; r != "" {
		al.Annotations["runbook_url"] = r
	}
	w := a.o.Links.Worklist(ev)
	if w != "" {
		al.Annotations["worklist_url"] = w
	}
	al.GeneratorURL = a.o.GeneratorURL
	if al.GeneratorURL == "" {
		al.GeneratorURL = w
	}
	return al
}

// Send posts one event: an alert fires, an acknowledgement resolves;
// updates carry nothing Alertmanager shows.
func (a *Alertmanager) Send(ctx context.Context, ev *deliver.Event) error {
	switch ev.Kind {
	case deliver.KindAlert:
		return a.post(ctx, []Alert{a.firing(ev)})
	case deliver.KindAck:
		end := a.o.Now()
		if ev.Ack != nil && !ev.Ack.At.IsZero() && ev.Ack.At.Before(end) {
			end = ev.Ack.At
		}
		// startsAt = endsAt passes the API's check whatever the alert's
		// real start; Alertmanager keeps the earlier start it has.
		al := Alert{Labels: a.labels(ev.TriageID, ev.Priority, ev.ModelSet), StartsAt: end, EndsAt: end,
			Annotations: map[string]string{"summary": deliver.Summary(ev)}}
		if ev.Ack != nil {
			al.Annotations["acknowledged_by"] = ev.Ack.By
			al.Annotations["acknowledged_via"] = ev.Ack.Via
		}
		return a.post(ctx, []Alert{al})
	}
	return nil
}

// Tick re-sends every active alert and the watchdog.
func (a *Alertmanager) Tick(ctx context.Context, active []deliver.Active) error {
	var out []Alert
	if a.o.Watchdog {
		now := a.o.Now()
		l := map[string]string{"alertname": WatchdogAlert, "severity": "none"}
		if a.o.Site != "" {
			l["site"] = a.o.Site
		}
		out = append(out, Alert{Labels: l, StartsAt: now, EndsAt: now.Add(4 * a.o.ResendInterval),
			Annotations: map[string]string{"summary": "triaged alert delivery is alive: this alert always fires; worry when it stops",
				"runbook_url": a.o.Links.Runbook}})
	}
	for _, ac := range active {
		ev := &deliver.Event{Kind: deliver.KindAlert, AlertID: ac.AlertID, TriageID: ac.TriageID, Priority: ac.Priority,
			ModelSet: ac.ModelSet, Seq: ac.Seq, Stored: ac.Since}
		var r publish.Result
		if json.Unmarshal(ac.Alert, &r) == nil {
			ev.Alert = &r
		}
		out = append(out, a.firing(ev))
	}
	// Bounded request bodies, however many alerts are active.
	for len(out) > 0 {
		n := min(len(out), 200)
		if err := a.post(ctx, out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

// LocalTick sends this daemon's health conditions.
func (a *Alertmanager) LocalTick(ctx context.Context) error {
	if a.o.Conditions == nil {
		return nil
	}
	now := a.o.Now()
	var out []Alert
	var sent []Condition
	for _, c := range a.o.Conditions() {
		if !c.Firing && !a.condFiring[c.Name] {
			continue
		}
		l := map[string]string{"alertname": c.Name, "severity": c.Severity, "instance": a.o.Instance}
		if a.o.Site != "" {
			l["site"] = a.o.Site
		}
		al := Alert{Labels: l, StartsAt: now, EndsAt: now.Add(4 * a.o.ResendInterval),
			Annotations: map[string]string{"summary": c.Summary}}
		if a.o.Links.Runbook != "" {
			al.Annotations["runbook_url"] = a.o.Links.Runbook
		}
		if !c.Firing {
			al.EndsAt = now
		}
		out = append(out, al)
		sent = append(sent, c)
	}
	if len(out) == 0 {
		return nil
	}
	if err := a.post(ctx, out); err != nil {
		return err
	}
	for _, c := range sent {
		if c.Firing {
			a.condFiring[c.Name] = true
		} else {
			delete(a.condFiring, c.Name)
		}
	}
	return nil
}

// post sends to every URL; accepted if any accepted.
func (a *Alertmanager) post(ctx context.Context, alerts []Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return &deliver.SendError{Err: fmt.Errorf("encode alerts: %w", err)}
	}
	var errs []error
	accepted := false
	for _, t := range a.targets {
		if err := deliver.Post(ctx, a.o.Client, t, body, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		accepted = true
	}
	if accepted {
		return nil
	}
	// Retry if any member might take it later.
	for _, e := range errs {
		var se *deliver.SendError
		if !errors.As(e, &se) || se.Retryable {
			return e
		}
	}
	return errs[0]
}
