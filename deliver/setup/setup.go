// Package setup builds the delivery engine and its destinations from the
// config's deliver section, reading every secret from its file. It is the
// one call the daemon needs:
//
//	e, err := setup.Engine(cfg, js, setup.Hooks{Acks: publisher, Log: log}) // nil, nil: no destinations
//	go e.Run(ctx)
package setup

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/alertmanager"
	"github.com/triaged/triaged/deliver/webhook"
)

// Hooks are what the daemon lends the deliveries.
type Hooks struct {
	// Acks stores the TTL's acknowledgements (the daemon's
	// publish.Publisher); required with deliver.ttl.
	Acks     deliver.AckPublisher
	Log      zerolog.Logger
	Observer deliver.Observer // may be nil
	// Conditions and Instance: the daemon's health, sent to every
	// Alertmanager destination (alertmanager.Options.Conditions); may be nil.
	Conditions func() []alertmanager.Condition
	Instance   string
}

// Engine returns the configured engine, or nil when no destination is
// configured.
func Engine(cfg *config.Config, js jetstream.JetStream, h Hooks) (*deliver.Engine, error) {
	d := cfg.Deliver
	if len(d.Destinations) == 0 {
		return nil, nil
	}
	if ps := cfg.ValidateDeliver(); len(ps) > 0 {
		return nil, ps
	}
	key, err := deliver.ReadSecret(cfg.Resolve(d.TriageKeyFile))
	if err != nil {
		return nil, fmt.Errorf("deliver.triage_key_file: %w", err)
	}
	dests, err := Destinations(cfg, h)
	if err != nil {
		return nil, err
	}
	return deliver.New(js, deliver.Options{
		Prefix: cfg.NATS.SubjectPrefix, Stream: cfg.NATS.AlertStream.Name,
		ActiveBucket: d.ActiveBucket, DeadLetterStream: d.DeadLetterStream,
		Replicas: cfg.NATS.AlertStream.Replicas, ManageStreams: cfg.NATS.ManageStreams, ActiveMaxAge: cfg.NATS.AlertStream.MaxAge,
		TriageKey: key, TTL: d.TTL, Acks: h.Acks, Backfill: d.Backfill, AckWait: d.AckWait, Batch: d.Batch,
		MinBackoff: d.MinBackoff, MaxBackoff: d.MaxBackoff, Log: h.Log, Observer: h.Observer,
	}, dests...)
}

// Destinations builds every configured destination.
func Destinations(cfg *config.Config, h Hooks) ([]deliver.Destination, error) {
	d := cfg.Deliver
	links, err := deliver.ParseLinks(d.RunbookURL, d.WorklistURL)
	if err != nil {
		return nil, fmt.Errorf("deliver.worklist_url: %w", err)
	}
	var out []deliver.Destination
	for i, dc := range d.Destinations {
		dst, err := destination(cfg, dc, links, h)
		if err != nil {
			return nil, fmt.Errorf("deliver.destinations[%d] (%s): %w", i, dc.Name, err)
		}
		out = append(out, dst)
	}
	return out, nil
}

func destination(cfg *config.Config, dc config.DeliverDestination, links deliver.Links, h Hooks) (deliver.Destination, error) {
	secret := func(path string) (string, error) {
		if path == "" {
			return "", nil
		}
		b, err := deliver.ReadSecret(cfg.Resolve(path))
		return string(b), err
	}
	timeout := dc.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	client, err := deliver.NewHTTPClient(deliver.TLS{CAFile: cfg.Resolve(dc.TLS.CAFile), CertFile: cfg.Resolve(dc.TLS.CertFile),
		KeyFile: cfg.Resolve(dc.TLS.KeyFile), ServerName: dc.TLS.ServerName}, timeout)
	if err != nil {
		return nil, err
	}
	filter := deliver.Filter{Priorities: dc.Priorities, Updates: dc.Updates}
	if dc.Type == "alertmanager" {
		return alertmanager.New(alertmanager.Options{Name: dc.Name, URLs: dc.URLs, Filter: filter,
			ResendInterval: dc.ResendInterval, Watchdog: dc.Watchdog == nil || *dc.Watchdog,
			Site: cfg.Deliver.Site, Links: links, Client: client, Conditions: h.Conditions, Instance: h.Instance})
	}
	o := webhook.Options{Name: dc.Name, URL: dc.URL, Filter: filter, Site: cfg.Deliver.Site, Links: links,
		Client: client, OpsgeniePriorities: dc.OpsgeniePriorities, Headers: http.Header{}}
	switch dc.Type {
	case "webhook":
		o.Template = webhook.Generic
	case "pagerduty":
		o.Template = webhook.PagerDuty
	case "opsgenie":
		o.Template = webhook.Opsgenie
	}
	sk, err := secret(dc.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	o.SigningKey = []byte(sk)
	if o.RoutingKey, err = secret(dc.RoutingKeyFile); err != nil {
		return nil, err
	}
	if o.APIKey, err = secret(dc.APIKeyFile); err != nil {
		return nil, err
	}
	for _, h := range dc.Headers {
		v, err := secret(h.ValueFile)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", h.Name, err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("header %s: the value file holds a line break or NUL", h.Name)
		}
		o.Headers.Set(h.Name, v)
	}
	return webhook.New(o)
}
