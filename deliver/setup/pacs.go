package setup

import (
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/pacs"
)

// PACS returns the deliveries of the result objects to PACS
// (result_objects.destinations), or nil when none is configured. They
// share the deliver section's tuning and dead-letter stream.
func PACS(cfg *config.Config, js jetstream.JetStream, h Hooks) (*pacs.Delivery, error) {
	ro := cfg.ResultObjects
	if len(ro.Destinations) == 0 {
		return nil, nil
	}
	if ps := ro.Problems(); len(ps) > 0 {
		return nil, ps
	}
	alertNames := map[string]bool{}
	for _, d := range cfg.Deliver.Destinations {
		alertNames[d.Name] = true
	}
	var senders []pacs.Sender
	for i, dc := range ro.Destinations {
		if alertNames[dc.Name] {
			return nil, fmt.Errorf("result_objects.destinations[%d] (%s): the name is also a deliver.destinations name; they share dead-letter subjects", i, dc.Name)
		}
		s, err := pacsSender(cfg, dc, h)
		if err != nil {
			return nil, fmt.Errorf("result_objects.destinations[%d] (%s): %w", i, dc.Name, err)
		}
		senders = append(senders, s)
	}
	d := cfg.Deliver
	rc := ro.WithDefaults()
	return pacs.New(js, pacs.Options{
		Prefix: cfg.NATS.SubjectPrefix, Stream: rc.Stream, DeadLetterStream: d.DeadLetterStream,
		Replicas: cfg.NATS.AlertStream.Replicas, ManageStreams: cfg.NATS.ManageStreams,
		Backfill: d.Backfill, AckWait: d.AckWait, MinBackoff: d.MinBackoff, MaxBackoff: d.MaxBackoff,
		RefusalRetries: ro.RefusalRetries, Log: h.Log, Observer: h.Observer,
	}, senders...)
}

func pacsSender(cfg *config.Config, dc config.PACSDestination, h Hooks) (pacs.Sender, error) {
	if dc.Type == "outbox" {
		// A missing folder fails the start: a typo is not retried for ever.
		return pacs.NewOutbox(pacs.OutboxOptions{Name: dc.Name, Priorities: dc.Priorities, Dir: cfg.Resolve(dc.Dir), Log: h.Log})
	}
	timeout := dc.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	t := deliver.TLS{CAFile: cfg.Resolve(dc.TLS.CAFile), CertFile: cfg.Resolve(dc.TLS.CertFile), KeyFile: cfg.Resolve(dc.TLS.KeyFile), ServerName: dc.TLS.ServerName}
	client, err := deliver.NewHTTPClient(t, timeout)
	if err != nil {
		return nil, err
	}
	if dc.Type == "stowrs" {
		var token string
		if dc.TokenFile != "" {
			b, err := deliver.ReadSecret(cfg.Resolve(dc.TokenFile))
			if err != nil {
				return nil, fmt.Errorf("token_file: %w", err)
			}
			token = string(b)
		}
		return pacs.NewSTOW(pacs.STOWOptions{Name: dc.Name, Priorities: dc.Priorities, URL: dc.URL, Token: token, Client: client, Log: h.Log})
	}
	o := pacs.CStoreOptions{Name: dc.Name, Priorities: dc.Priorities, Address: dc.Address, CalledAE: dc.CalledAE, CallingAE: dc.CallingAE, Timeout: timeout, Log: h.Log}
	if o.CallingAE == "" {
		o.CallingAE = "TRIAGED"
	}
	if dc.TLS != (config.DeliverTLS{}) {
		// The same TLS settings (1.2 or later, CA, client certificate) as
		// the HTTPS deliveries, for DICOM TLS.
		o.TLS = client.Transport.(*http.Transport).TLSClientConfig
	}
	return pacs.NewCStore(o)
}
