package config

import (
	"strings"
	"testing"
)

func TestResultObjectsDefaults(t *testing.T) {
	c := Default()
	r := c.ResultObjects
	if r.Enabled || len(r.Problems()) > 0 {
		t.Fatalf("default section: %+v %v", r, r.Problems())
	}
	d := r.WithDefaults()
	if d.Films != "all" || d.SeriesNumber != 9901 || d.UIDRoot != "2.25" || d.SeriesDescription != "triaged AI result" {
		t.Errorf("defaults: %+v", d)
	}
	if r.Wants("urgent") {
		t.Error("objects wanted while disabled")
	}
}

func TestResultObjectsParse(t *testing.T) {
	c, err := Parse([]byte(`
result_objects:
  enabled: true
  uid_root: 1.2.826.0.1.3680043.10.999
  films: alerts
  series_number: 7001
  series_description: AI triage
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	r := c.ResultObjects
	if ps := r.Problems(); len(ps) > 0 {
		t.Fatal(ps)
	}
	if !r.Wants("critical") || !r.Wants("urgent") || r.Wants("routine") {
		t.Error("films: alerts does not select alerts only")
	}
	r.Films = "all"
	if !r.Wants("routine") {
		t.Error("films: all skips routine films")
	}
	if _, err := Parse([]byte("result_objects: {uid_rot: 1.2}\n"), "/"); err == nil || !strings.Contains(err.Error(), "uid_rot") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestResultObjectsProblems(t *testing.T) {
	for _, tc := range []struct {
		r    ResultObjects
		path string
	}{
		{ResultObjects{UIDRoot: "1.2.03"}, "result_objects.uid_root"},
		{ResultObjects{UIDRoot: "1..2"}, "result_objects.uid_root"},
		{ResultObjects{UIDRoot: "1.2.x"}, "result_objects.uid_root"},
		{ResultObjects{UIDRoot: "1." + strings.Repeat("2", 40)}, "result_objects.uid_root"},
		{ResultObjects{Films: "positives"}, "result_objects.films"},
		{ResultObjects{SeriesNumber: -1}, "result_objects.series_number"},
		{ResultObjects{SeriesDescription: `a\b`}, "result_objects.series_description"},
		{ResultObjects{SeriesDescription: strings.Repeat("x", 57)}, "result_objects.series_description"},
	} {
		ps := tc.r.Problems()
		if len(ps) != 1 || ps[0].Path != tc.path {
			t.Errorf("%+v: %v, want one problem at %s", tc.r, ps, tc.path)
		}
	}
}

func TestResultObjectsDestinations(t *testing.T) {
	c, err := Parse([]byte(`
result_objects:
  enabled: true
  refusal_retries: 5
  destinations:
    - name: pacs
      type: cstore
      address: pacs.example:104
      called_ae: PACS
    - name: pacs-web
      type: stowrs
      url: https://pacs.example/dicom-web
      token_file: /etc/triaged/stow.token
      priorities: [critical]
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.ResultObjects.Problems(); len(ps) > 0 {
		t.Fatal(ps)
	}
	bad := ResultObjects{Enabled: false, RefusalRetries: -2, Destinations: []PACSDestination{
		{Name: "Bad Name", Type: "cstore", Address: "nohost", CalledAE: "A_TITLE_FAR_TOO_LONG"},
		{Name: "w", Type: "stowrs", URL: "ftp://x", CalledAE: "X"},
		{Name: "w", Type: "smtp", Priorities: []string{"low"}},
	}}
	got := bad.Problems().Error()
	for _, want := range []string{"refusal_retries", "need result_objects.enabled", "destinations[0].name", "destinations[0].address",
		"destinations[0].called_ae", "destinations[1].url", "destinations[1].address", "destinations[2].name", "destinations[2].type", "destinations[2].priorities[0]"} {
		if !strings.Contains(got, "result_objects."+want) && !strings.Contains(got, want) {
			t.Errorf("no problem about %s in:\n%s", want, got)
		}
	}
}

// An outbox destination needs its dir and nothing of the network
// destinations; dir belongs to outbox only.
func TestResultObjectsOutbox(t *testing.T) {
	c, err := Parse([]byte(`
result_objects:
  enabled: true
  destinations:
    - {name: gateway, type: outbox, dir: /srv/pacs/outbox, priorities: [critical, urgent]}
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.ResultObjects.Problems(); len(ps) > 0 {
		t.Fatal(ps)
	}
	if d := c.ResultObjects.Destinations[0]; d.Dir != "/srv/pacs/outbox" || d.Type != "outbox" {
		t.Errorf("parsed %+v", d)
	}
	for _, tc := range []struct {
		d    PACSDestination
		path string
	}{
		{PACSDestination{Name: "g", Type: "outbox"}, "destinations[0].dir"},
		{PACSDestination{Name: "g", Type: "outbox", Dir: "  "}, "destinations[0].dir"},
		{PACSDestination{Name: "g", Type: "outbox", Dir: "/o", URL: "https://x"}, "destinations[0].type"},
		{PACSDestination{Name: "g", Type: "outbox", Dir: "/o", Timeout: 1}, "destinations[0].type"},
		{PACSDestination{Name: "g", Type: "outbox", Dir: "/o", TLS: DeliverTLS{CAFile: "ca.pem"}}, "destinations[0].type"},
		{PACSDestination{Name: "g", Type: "stowrs", URL: "https://x/dicom-web", Dir: "/o"}, "destinations[0].address"},
		{PACSDestination{Name: "g", Type: "cstore", Address: "p:104", CalledAE: "P", Dir: "/o"}, "destinations[0].url"},
	} {
		ps := ResultObjects{Enabled: true, Destinations: []PACSDestination{tc.d}}.Problems()
		if len(ps) != 1 || ps[0].Path != "result_objects."+tc.path {
			t.Errorf("%+v: %v, want one problem at %s", tc.d, ps, tc.path)
		}
	}
}
