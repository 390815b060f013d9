package config

import (
	"strings"
	"testing"
	"time"
)

// The example of docs/deliveries.md parses and validates.
func TestDeliverParse(t *testing.T) {
	c, err := Parse([]byte(`
deliver:
  triage_key_file: secrets/triage.key
  site: st-elsewhere
  ttl: 12h
  runbook_url: https://wiki.example/triaged
  worklist_url: https://worklist.example/films/{{.TriageID}}
  destinations:
    - name: alertmanager
      type: alertmanager
      urls: [http://am-1:9093, http://am-2:9093]
      resend_interval: 30s
    - name: pager
      type: pagerduty
      priorities: [critical]
      routing_key_file: secrets/pagerduty.key
    - name: opsgenie
      type: opsgenie
      api_key_file: secrets/opsgenie.key
      opsgenie_priorities: {urgent: P3}
    - name: ris
      type: webhook
      url: https://ris.example/hooks/triaged
      updates: true
      signing_key_file: secrets/webhook.key
      headers: [{name: X-Api-Key, value_file: secrets/ris.key}]
      tls: {ca_file: pki/ca.pem}
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.ValidateDeliver(); len(ps) > 0 {
		t.Fatal(ps)
	}
	d := c.Deliver
	if d.TTL != 12*time.Hour || len(d.Destinations) != 4 || d.Destinations[0].URLs[1] != "http://am-2:9093" ||
		d.Destinations[2].OpsgeniePriorities["urgent"] != "P3" || d.Destinations[3].Headers[0].Name != "X-Api-Key" {
		t.Errorf("%+v", d)
	}
	if c.Resolve(d.TriageKeyFile) != "/etc/triaged/secrets/triage.key" {
		t.Errorf("key path %s", c.Resolve(d.TriageKeyFile))
	}
}

func TestDeliverProblems(t *testing.T) {
	c, err := Parse([]byte(`
deliver:
  ttl: 5s
  worklist_url: "https://w/{{.TriageID"
  destinations:
    - {name: Pager, type: pagerduty}
    - {name: am, type: alertmanager, url: http://am:9093}
    - {name: am2, type: alertmanager, urls: ["ftp://x"]}
    - {name: hook, type: webhook, url: "not a url", headers: [{name: Authorization}]}
    - {name: hook, type: smoke-signal}
    - {name: og, type: opsgenie, api_key_file: k, opsgenie_priorities: {critical: P9}}
    - {name: w, type: webhook, url: "https://x", priorities: [routine], tls: {cert_file: c.pem}}
`), "/etc/triaged")
	// Once Validate includes ValidateDeliver, Parse itself reports them.
	var got string
	if err != nil {
		got = err.Error()
	} else {
		got = c.ValidateDeliver().Error()
	}
	for _, want := range []string{
		"deliver.triage_key_file: is required",
		"deliver.ttl: must be at least 1m",
		"deliver.worklist_url: is not a valid template",
		"deliver.destinations[0].name: must be 1-48 lowercase",
		"deliver.destinations[0].routing_key_file: is required for pagerduty",
		"deliver.destinations[1].urls: needs at least one",
		"deliver.destinations[1].url: does not apply",
		"deliver.destinations[2].urls[0]: must be an http(s) URL",
		"deliver.destinations[3].url: must be an http(s) URL",
		"deliver.destinations[3].headers[0].name: must be a header name other than",
		"deliver.destinations[3].headers[0].value_file: is required",
		"deliver.destinations[4].name: is listed twice",
		"deliver.destinations[4].type: must be alertmanager",
		"deliver.destinations[5].opsgenie_priorities.critical",
		"deliver.destinations[6].priorities[0]: must be critical or urgent",
		"deliver.destinations[6].tls: set both",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing problem %q in:\n%s", want, got)
		}
	}
	// Unknown keys are caught by the loader like everywhere else.
	_, err = Parse([]byte("deliver:\n  destinations:\n    - {name: a, type: webhook, url: 'https://x', secret: s}\n"), "/")
	if err == nil || !strings.Contains(err.Error(), "deliver.destinations[0].secret: unknown key") {
		t.Errorf("unknown key: %v", err)
	}
}
