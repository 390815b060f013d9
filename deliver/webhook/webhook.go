// Package webhook delivers alerts over HTTP POST: the alert message itself
// (generic), or shaped for PagerDuty Events API v2 or Opsgenie's Alert API.
//
// Every request carries an Idempotency-Key (the same for every attempt of a
// message) and, with a signing key, Triaged-Signature: t=<unix seconds>,
// v1=<hex HMAC-SHA256(key, "<t>.<body>")>; Verify checks it. Acknowledgements
// resolve (PagerDuty) or close (Opsgenie) the incident, keyed by the triage
// ID. No image bytes are ever sent: heatmaps stay in the hospital's object
// store, and the PagerDuty and Opsgenie shapes carry only the triage ID,
// priority, score, model set and links, no patient data. The generic
// shape posts the clinical message as stored (UIDs, file name): point it
// only at systems entitled to them.
//
//	d, err := webhook.New(webhook.Options{Name: "pager", URL: u, Template: webhook.PagerDuty, RoutingKey: k})
//	deliver.New(js, opts, d)
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/triaged/triaged/deliver"
)

// Template is the payload shape.
type Template string

const (
	Generic   Template = "generic"
	PagerDuty Template = "pagerduty"
	Opsgenie  Template = "opsgenie"
)

// Default endpoints of the paging services.
const (
	PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"
	OpsgenieURL  = "https://api.opsgenie.com"
)

// SignatureHeader carries the HMAC signature.
const SignatureHeader = "Triaged-Signature"

// Options configure one webhook destination.
type Options struct {
	Name     string
	URL      string // PagerDuty: the enqueue URL; Opsgenie: the API base
	Template Template
	Filter   deliver.Filter
	// SigningKey signs every request (generic; optional for the others).
	SigningKey []byte
	// RoutingKey is PagerDuty's integration key; APIKey Opsgenie's.
	RoutingKey string
	APIKey     string
	// OpsgeniePriorities maps triaged priorities to P1-P5 (critical P1,
	// urgent P2).
	OpsgeniePriorities map[string]string
	// Headers are added to every request (values read from files).
	Headers http.Header
	Client  *http.Client // nil: 10s timeout, system roots
	Site    string
	Links   deliver.Links
	Now     func() time.Time
}

// Webhook is a deliver.Destination.
type Webhook struct{ o Options }

// New checks the options.
func New(o Options) (*Webhook, error) {
	if o.Template == "" {
		o.Template = Generic
	}
	switch o.Template {
	case Generic:
		if o.URL == "" {
			return nil, fmt.Errorf("webhook %s: no URL", o.Name)
		}
	case PagerDuty:
		if o.URL == "" {
			o.URL = PagerDutyURL
		}
		if o.RoutingKey == "" {
			return nil, fmt.Errorf("webhook %s: PagerDuty needs a routing key", o.Name)
		}
	case Opsgenie:
		if o.URL == "" {
			o.URL = OpsgenieURL
		}
		if o.APIKey == "" {
			return nil, fmt.Errorf("webhook %s: Opsgenie needs an API key", o.Name)
		}
		if o.OpsgeniePriorities == nil {
			o.OpsgeniePriorities = map[string]string{"critical": "P1", "urgent": "P2"}
		}
	default:
		return nil, fmt.Errorf("webhook %s: unknown template %q", o.Name, o.Template)
	}
	if _, err := url.ParseRequestURI(o.URL); err != nil {
		return nil, fmt.Errorf("webhook %s: URL: %w", o.Name, err)
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
	return &Webhook{o: o}, nil
}

func (w *Webhook) Name() string           { return w.o.Name }
func (w *Webhook) Filter() deliver.Filter { return w.o.Filter }

// Send posts one event in the configured shape.
func (w *Webhook) Send(ctx context.Context, ev *deliver.Event) error {
	var (
		target = w.o.URL
		body   []byte
		err    error
		hdr    = http.Header{}
	)
	// Outside the hospital the idempotency key must not hold the SOP
	// Instance UID that the message ID carries.
	key := ev.TriageID + ":" + string(ev.Kind)
	if ev.Kind == deliver.KindUpdate && ev.Update != nil {
		key = ev.TriageID + ":update:" + strconv.FormatUint(ev.Seq, 10)
	}
	switch w.o.Template {
	case Generic:
		body, key = ev.Body, ev.ID
		hdr.Set("Triaged-Event", string(ev.Kind))
		hdr.Set("Triaged-Triage-Id", ev.TriageID)
		hdr.Set("Triaged-Priority", ev.Priority)
	case PagerDuty:
		if ev.Kind == deliver.KindUpdate {
			return nil // nothing for a pager in a late heatmap
		}
		body, err = json.Marshal(w.pagerDuty(ev))
	case Opsgenie:
		if ev.Kind == deliver.KindUpdate {
			return nil
		}
		base := strings.TrimRight(w.o.URL, "/")
		target = base + "/v2/alerts"
		if ev.Kind == deliver.KindAck {
			target = base + "/v2/alerts/" + url.PathEscape(ev.TriageID) + "/close?identifierType=alias"
		}
		hdr.Set("Authorization", "GenieKey "+w.o.APIKey)
		body, err = json.Marshal(w.opsgenie(ev))
	}
	if err != nil {
		return &deliver.SendError{Err: fmt.Errorf("encode %s payload: %w", w.o.Template, err)}
	}
	for k, v := range w.o.Headers {
		hdr[k] = v
	}
	hdr.Set("Idempotency-Key", key)
	if len(w.o.SigningKey) > 0 {
		hdr.Set(SignatureHeader, Sign(w.o.SigningKey, w.o.Now(), body))
	}
	return deliver.Post(ctx, w.o.Client, target, body, hdr)
}

// PagerDutyEvent is an Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"` // trigger or resolve
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload,omitempty"`
	Client      string            `json:"client,omitempty"`
	ClientURL   string            `json:"client_url,omitempty"`
	Links       []PagerDutyLink   `json:"links,omitempty"`
}

type PagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"` // critical, error, warning, info
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type PagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// pagerDutySeverity maps priorities: critical stays critical, urgent is
// "error" (PagerDuty's next level).
var pagerDutySeverity = map[string]string{"critical": "critical", "urgent": "error"}

func (w *Webhook) pagerDuty(ev *deliver.Event) PagerDutyEvent {
	e := PagerDutyEvent{RoutingKey: w.o.RoutingKey, DedupKey: ev.TriageID, EventAction: "trigger"}
	if ev.Kind == deliver.KindAck {
		e.EventAction = "resolve"
		return e
	}
	src := w.o.Site
	if src == "" {
		src = "triaged"
	}
	p := &PagerDutyPayload{Summary: deliver.Summary(ev), Source: src, Severity: pagerDutySeverity[ev.Priority],
		Component: "chest-xray-triage", Group: ev.ModelSet, Class: ev.Priority,
		CustomDetails: w.details(ev)}
	if ev.Alert != nil && !ev.Alert.ScoredAt.IsZero() {
		p.Timestamp = ev.Alert.ScoredAt.UTC().Format(time.RFC3339Nano)
	}
	e.Payload, e.Client = p, "triaged"
	if u := w.o.Links.Worklist(ev); u != "" {
		e.ClientURL = u
		e.Links = append(e.Links, PagerDutyLink{Href: u, Text: "Open the film in the worklist"})
	}
	if w.o.Links.Runbook != "" {
		e.Links = append(e.Links, PagerDutyLink{Href: w.o.Links.Runbook, Text: "Runbook"})
	}
	return e
}

func (w *Webhook) details(ev *deliver.Event) map[string]any {
	d := map[string]any{"triage_id": ev.TriageID, "priority": ev.Priority, "model_set": ev.ModelSet}
	if ev.Alert != nil {
		d["score"] = ev.Alert.Score
	}
	if w.o.Site != "" {
		d["site"] = w.o.Site
	}
	if u := w.o.Links.Worklist(ev); u != "" {
		d["worklist_url"] = u
	}
	if w.o.Links.Runbook != "" {
		d["runbook_url"] = w.o.Links.Runbook
	}
	return d
}

// OpsgenieAlert is the create-alert request; OpsgenieClose the close one.
type OpsgenieAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Priority    string            `json:"priority"`
	Source      string            `json:"source"`
	Entity      string            `json:"entity,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
}

type OpsgenieClose struct {
	Source string `json:"source"`
	User   string `json:"user,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (w *Webhook) opsgenie(ev *deliver.Event) any {
	if ev.Kind == deliver.KindAck {
		c := OpsgenieClose{Source: "triaged"}
		if ev.Ack != nil {
			c.User = ev.Ack.By
			c.Note = fmt.Sprintf("acknowledged via %s at %s", ev.Ack.Via, ev.Ack.At.UTC().Format(time.RFC3339))
		}
		return c
	}
	msg := deliver.Summary(ev)
	if len(msg) > 130 { // Opsgenie's limit
		msg = msg[:130]
	}
	det := map[string]string{}
	for k, v := range w.details(ev) {
		det[k] = fmt.Sprint(v)
	}
	var desc strings.Builder
	desc.WriteString(deliver.Summary(ev))
	if u := w.o.Links.Worklist(ev); u != "" {
		desc.WriteString("\nWorklist: " + u)
	}
	if w.o.Links.Runbook != "" {
		desc.WriteString("\nRunbook: " + w.o.Links.Runbook)
	}
	return OpsgenieAlert{Message: msg, Alias: ev.TriageID, Description: desc.String(),
		Priority: w.o.OpsgeniePriorities[ev.Priority], Source: "triaged", Entity: w.o.Site,
		Tags: []string{"triaged", ev.Priority}, Details: det}
}

// Sign returns the signature header value for body sent at t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(key, ts, body)
}

func mac(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a Triaged-Signature header value against body: the
// signature must match and its timestamp be within tolerance of now (a
// replayed old request fails). Several v1 values (key rotation) are
// accepted if any matches.
func Verify(header string, body, key []byte, now time.Time, tolerance time.Duration) error {
	if len(header) > 1024 {
		return errors.New("signature header too long")
	}
	var ts string
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errors.New("malformed signature header")
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return errors.New("signature header lacks t= or v1=")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature timestamp: %w", err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp %d is outside the %s tolerance", sec, tolerance)
	}
	want := mac(key, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature does not match")
}
