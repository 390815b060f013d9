package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
)

// DeliverConfig is the deliver section: where alerts go besides the
// alerts stream (docs/deliveries.md). No destination: nothing is
// delivered. Every secret is a file path.
type DeliverConfig struct {
	// TriageKeyFile holds the key of the triage ID (HMAC-SHA256 of the
	// alert's message ID): the only film identifier that leaves the
	// hospital. Required with destinations; every daemon of a fleet (and
	// `triaged ack`) must use the same key.
	TriageKeyFile string `yaml:"triage_key_file"`
	// Site labels every alert (Alertmanager label, PagerDuty source).
	Site string `yaml:"site"`
	// TTL ends an alert nobody acknowledged after this long (0: never).
	TTL time.Duration `yaml:"ttl"`
	// RunbookURL and WorklistURL are links sent instead of any film data;
	// WorklistURL is a template over {{.TriageID}}, {{.Priority}},
	// {{.ModelSet}}.
	RunbookURL  string `yaml:"runbook_url"`
	WorklistURL string `yaml:"worklist_url"`
	// ActiveBucket is the JetStream KV bucket of active alerts;
	// DeadLetterStream stores <prefix>.deliver.dead.<destination>.
	ActiveBucket     string `yaml:"active_bucket"`
	DeadLetterStream string `yaml:"dead_letter_stream"`
	// Backfill is how far back a destination added for the first time
	// starts (0: 1h).
	Backfill time.Duration `yaml:"backfill"`
	// AckWait, Batch, MinBackoff, MaxBackoff tune the engine (0: 30s, 256,
	// 1s, 1m).
	AckWait      time.Duration        `yaml:"ack_wait"`
	Batch        int                  `yaml:"batch"`
	MinBackoff   time.Duration        `yaml:"min_backoff"`
	MaxBackoff   time.Duration        `yaml:"max_backoff"`
	Destinations []DeliverDestination `yaml:"destinations"`
}

// DeliverDestination is one outside system.
type DeliverDestination struct {
	// Name (lowercase letters, digits, - and _) names the durable consumer:
	// renaming a destination starts it afresh.
	Name string `yaml:"name"`
	// Type: alertmanager, webhook, pagerduty or opsgenie.
	Type string `yaml:"type"`
	// URL of a webhook (pagerduty, opsgenie: optional, their public API);
	// URLs of Alertmanager (several for an HA pair).
	URL  string   `yaml:"url"`
	URLs []string `yaml:"urls"`
	// Priorities it takes (empty: critical and urgent); Updates also sends
	// late heatmap follow-ups (webhook).
	Priorities []string      `yaml:"priorities"`
	Updates    bool          `yaml:"updates"`
	Timeout    time.Duration `yaml:"timeout"`
	// ResendInterval (alertmanager) re-sends active alerts (0: 1m); keep
	// it well below Alertmanager's resolve_timeout. Watchdog (default
	// true) sends the always-firing TriagedWatchdog alert.
	ResendInterval time.Duration `yaml:"resend_interval"`
	Watchdog       *bool         `yaml:"watchdog"`
	// SigningKeyFile signs each request (Triaged-Signature);
	// RoutingKeyFile is PagerDuty's integration key, APIKeyFile Opsgenie's.
	SigningKeyFile string `yaml:"signing_key_file"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	APIKeyFile     string `yaml:"api_key_file"`
	// OpsgeniePriorities maps critical/urgent to P1-P5 (P1, P2).
	OpsgeniePriorities map[string]string `yaml:"opsgenie_priorities"`
	Headers            []DeliverHeader   `yaml:"headers"`
	TLS                DeliverTLS        `yaml:"tls"`
}

// DeliverHeader is a request header whose value is read from a file.
type DeliverHeader struct {
	Name      string `yaml:"name"`
	ValueFile string `yaml:"value_file"`
}

// DeliverTLS is the client side of a destination's HTTPS.
type DeliverTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

var (
	destNameRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)
	headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// Headers the delivery sets itself.
	reservedHeaders = []string{"content-type", "content-length", "host", "idempotency-key", "triaged-signature", "authorization"}
)

// ValidateDeliver reports every problem of the deliver section.
func (c *Config) ValidateDeliver() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	d := c.Deliver
	if len(d.Destinations) > 0 && d.TriageKeyFile == "" {
		add("deliver.triage_key_file", "", "is required with destinations (a file holding the triage ID key, the same on every daemon)")
	}
	if d.TTL < 0 {
		add("deliver.ttl", d.TTL, "must not be negative (0: alerts end only when acknowledged)")
	}
	if d.TTL > 0 && d.TTL < time.Minute {
		add("deliver.ttl", d.TTL, "must be at least 1m (or 0)")
	}
	if d.RunbookURL != "" && !httpURL(d.RunbookURL) {
		add("deliver.runbook_url", d.RunbookURL, "must be an http(s) URL")
	}
	if d.WorklistURL != "" {
		if _, err := template.New("").Option("missingkey=error").Parse(d.WorklistURL); err != nil {
			add("deliver.worklist_url", d.WorklistURL, "is not a valid template: %v", err)
		} else if !strings.HasPrefix(d.WorklistURL, "http://") && !strings.HasPrefix(d.WorklistURL, "https://") {
			add("deliver.worklist_url", d.WorklistURL, "must be an http(s) URL template, e.g. https://worklist/films/{{.TriageID}}")
		}
	}
	for name, v := range map[string]string{"deliver.active_bucket": d.ActiveBucket, "deliver.dead_letter_stream": d.DeadLetterStream} {
		if v != "" && strings.ContainsAny(v, " .*>\t/") {
			add(name, v, "must be a name without spaces, dots or wildcards")
		}
	}
	if d.Batch < 0 || d.Batch > 1000 {
		add("deliver.batch", d.Batch, "must be between 0 (default 256) and 1000")
	}
	if d.AckWait != 0 && d.AckWait < time.Second {
		add("deliver.ack_wait", d.AckWait, "must be at least 1s (or 0)")
	}
	if d.MinBackoff < 0 || d.MaxBackoff < 0 || (d.MaxBackoff > 0 && d.MinBackoff > d.MaxBackoff) {
		add("deliver.max_backoff", d.MaxBackoff, "must not be below min_backoff (%s), and neither negative", d.MinBackoff)
	}
	seen := map[string]bool{}
	for i, dst := range d.Destinations {
		p := fmt.Sprintf("deliver.destinations[%d]", i)
		if !destNameRe.MatchString(dst.Name) {
			add(p+".name", dst.Name, "must be 1-48 lowercase letters, digits, - or _ (it names a durable consumer)")
		} else if seen[dst.Name] {
			add(p+".name", dst.Name, "is listed twice")
		}
		seen[dst.Name] = true
		for j, pr := range dst.Priorities {
			if pr != "critical" && pr != "urgent" {
				add(fmt.Sprintf("%s.priorities[%d]", p, j), pr, "must be critical or urgent")
			}
		}
		if dst.Timeout < 0 || dst.Timeout > 5*time.Minute {
			add(p+".timeout", dst.Timeout, "must be between 0 (default 10s) and 5m")
		}
		needURL := func() {
			if dst.URL == "" {
				add(p+".url", "", "is required for type %s", dst.Type)
			} else if !httpURL(dst.URL) {
				add(p+".url", dst.URL, "must be an http(s) URL")
			}
		}
		only := func(field, v string) {
			if v != "" {
				add(p+"."+field, v, "does not apply to type %s", dst.Type)
			}
		}
		switch dst.Type {
		case "alertmanager":
			if len(dst.URLs) == 0 {
				add(p+".urls", "[]", "needs at least one Alertmanager URL")
			}
			for j, u := range dst.URLs {
				if !httpURL(u) {
					add(fmt.Sprintf("%s.urls[%d]", p, j), u, "must be an http(s) URL")
				}
			}
			only("url", dst.URL)
			only("routing_key_file", dst.RoutingKeyFile)
			only("api_key_file", dst.APIKeyFile)
			only("signing_key_file", dst.SigningKeyFile)
			if dst.ResendInterval < 0 || (dst.ResendInterval > 0 && dst.ResendInterval < time.Second) {
				add(p+".resend_interval", dst.ResendInterval, "must be at least 1s (or 0: 1m)")
			}
		case "webhook":
			needURL()
			only("routing_key_file", dst.RoutingKeyFile)
			only("api_key_file", dst.APIKeyFile)
		case "pagerduty":
			if dst.URL != "" {
				needURL()
			}
			if dst.RoutingKeyFile == "" {
				add(p+".routing_key_file", "", "is required for pagerduty (a file holding the integration key)")
			}
			only("api_key_file", dst.APIKeyFile)
		case "opsgenie":
			if dst.URL != "" {
				needURL()
			}
			if dst.APIKeyFile == "" {
				add(p+".api_key_file", "", "is required for opsgenie (a file holding the API key)")
			}
			only("routing_key_file", dst.RoutingKeyFile)
			for k, v := range dst.OpsgeniePriorities {
				if (k != "critical" && k != "urgent") || !slices.Contains([]string{"P1", "P2", "P3", "P4", "P5"}, v) {
					add(p+".opsgenie_priorities."+k, v, "keys must be critical or urgent, values P1-P5")
				}
			}
		default:
			add(p+".type", dst.Type, "must be alertmanager, webhook, pagerduty or opsgenie")
		}
		if dst.Type != "opsgenie" && len(dst.OpsgeniePriorities) > 0 {
			add(p+".opsgenie_priorities", "", "applies to type opsgenie only")
		}
		if dst.Type != "alertmanager" && (len(dst.URLs) > 0 || dst.ResendInterval != 0 || dst.Watchdog != nil) {
			add(p, dst.Type, "urls, resend_interval and watchdog apply to type alertmanager only")
		}
		for j, h := range dst.Headers {
			hp := fmt.Sprintf("%s.headers[%d]", p, j)
			if !headerNameRe.MatchString(h.Name) || slices.Contains(reservedHeaders, strings.ToLower(h.Name)) {
				add(hp+".name", h.Name, "must be a header name other than %s", strings.Join(reservedHeaders, ", "))
			}
			if h.ValueFile == "" {
				add(hp+".value_file", "", "is required (header values are read from files)")
			}
		}
		if (dst.TLS.CertFile == "") != (dst.TLS.KeyFile == "") {
			add(p+".tls", "", "set both cert_file and key_file, or neither")
		}
	}
	return ps
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
