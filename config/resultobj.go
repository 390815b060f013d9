package config

import (
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/triaged/triaged/resultobj/uid"
)

// ResultObjects configures the DICOM result objects returned into the
// film's study: a structured report and a heatmap image (see
// docs/results-in-pacs.md and package resultobj). Every field's zero value
// is its default, so an absent section is a valid one.
type ResultObjects struct {
	// Enabled builds result objects for scored films (for the PACS
	// deliveries to send). Off by default.
	Enabled bool `yaml:"enabled"`
	// UIDRoot is the root the objects' UIDs are derived under: your
	// organisation's registered root (at most 39 characters, so each UID
	// keeps at least 24 digits of hash), or empty for the root-free 2.25
	// form (2.25.<decimal of a 128-bit hash>).
	UIDRoot string `yaml:"uid_root"`
	// Films: "all" (every scored film, the default) or "alerts" (urgent and
	// critical films only).
	Films string `yaml:"films"`
	// SeriesNumber of the SR series; the heatmap image series gets the
	// next number. 0: 9901.
	SeriesNumber int `yaml:"series_number"`
	// SeriesDescription of the SR series; the image series adds
	// " heatmap". Empty: "triaged AI result".
	SeriesDescription string `yaml:"series_description"`
	// Bucket is the JetStream object store the daemon keeps the objects
	// in (name: the object's SOP Instance UID) and Stream the stream of
	// the messages naming them (<prefix>.objects.<priority>), which the
	// PACS deliveries consume. Both take the result stream's replicas,
	// max_age and storage. Empty: TRIAGED_RESULT_OBJECTS, TRIAGED_OBJECTS.
	Bucket string `yaml:"bucket"`
	Stream string `yaml:"stream"`
	// Destinations are the PACS the objects are sent to (package
	// deliver/pacs; docs/results-in-pacs.md), each by its own durable
	// consumer, with the deliver section's ack_wait, backoff, backfill and
	// dead_letter_stream.
	Destinations []PACSDestination `yaml:"destinations"`
	// RefusalRetries: a film a PACS refused is tried this many more times
	// before it is dead-lettered (0: 3; -1: at once).
	RefusalRetries int `yaml:"refusal_retries"`
}

// PACSDestination is one PACS the result objects go to.
type PACSDestination struct {
	// Name (lowercase letters, digits, - and _) names the durable consumer
	// and the dead-letter subject; it must differ from every
	// deliver.destinations name.
	Name string `yaml:"name"`
	// Type: cstore (DICOM C-STORE), stowrs (DICOMweb STOW-RS) or outbox
	// (Part 10 files in a folder a gateway picks up).
	Type string `yaml:"type"`
	// Address (cstore) is the PACS's host:port; CalledAE its AE title,
	// CallingAE ours (default TRIAGED).
	Address   string `yaml:"address"`
	CalledAE  string `yaml:"called_ae"`
	CallingAE string `yaml:"calling_ae"`
	// URL (stowrs) is the DICOMweb base (…/dicom-web); TokenFile holds a
	// bearer token.
	URL       string `yaml:"url"`
	TokenFile string `yaml:"token_file"`
	// Dir (outbox) is the folder the files <SOP Instance UID>.dcm are
	// written into (relative: to the config file's folder); it must exist
	// when the daemon starts.
	Dir string `yaml:"dir"`
	// Priorities the destination takes (empty: every film with objects).
	Priorities []string `yaml:"priorities"`
	// Timeout of connecting and of each answer (0: 30s).
	Timeout time.Duration `yaml:"timeout"`
	// TLS: for stowrs the HTTPS client side (client certificate); for
	// cstore, any field set turns DICOM TLS on.
	TLS DeliverTLS `yaml:"tls"`
}

// Result objects for which films.
const (
	ResultObjectsAll    = "all"
	ResultObjectsAlerts = "alerts"
)

// WithDefaults fills the zero fields with their defaults.
func (r ResultObjects) WithDefaults() ResultObjects {
	if r.Films == "" {
		r.Films = ResultObjectsAll
	}
	if r.SeriesNumber == 0 {
		r.SeriesNumber = 9901
	}
	if r.SeriesDescription == "" {
		r.SeriesDescription = "triaged AI result"
	}
	if r.UIDRoot == "" {
		r.UIDRoot = uid.DefaultRoot
	}
	if r.Bucket == "" {
		r.Bucket = "TRIAGED_RESULT_OBJECTS"
	}
	if r.Stream == "" {
		r.Stream = "TRIAGED_OBJECTS"
	}
	return r
}

// Wants reports whether a film scored with this priority gets result
// objects.
func (r ResultObjects) Wants(priority string) bool {
	if !r.Enabled {
		return false
	}
	if r.WithDefaults().Films == ResultObjectsAlerts {
		return priority == "urgent" || priority == "critical"
	}
	return true
}

// Problems checks the section; Config.Validate appends them.
func (r ResultObjects) Problems() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: "result_objects." + path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	if r.UIDRoot != "" {
		if err := uid.ValidRoot(r.UIDRoot); err != nil {
			add("uid_root", r.UIDRoot, "must be a valid UID prefix (digits and dots, no empty component, no leading zeros, at most %d characters): %v", uid.MaxRootLen, err)
		}
	}
	switch r.Films {
	case "", ResultObjectsAll, ResultObjectsAlerts:
	default:
		add("films", r.Films, "must be all or alerts")
	}
	// The image series takes SeriesNumber+1; IS holds at most 2^31-1.
	if r.SeriesNumber < 0 || r.SeriesNumber > 2147483646 {
		add("series_number", r.SeriesNumber, "must be between 1 and 2147483646 (0 = 9901)")
	}
	d := r.SeriesDescription
	if utf8.RuneCountInString(d) > 56 || strings.ContainsAny(d, "\\\r\n\t") || !utf8.ValidString(d) {
		add("series_description", d, "must be at most 56 characters (the image series adds \" heatmap\"; DICOM allows 64), without backslashes or control characters")
	}
	if r.RefusalRetries < -1 || r.RefusalRetries > 100 {
		add("refusal_retries", r.RefusalRetries, "must be between -1 (dead-letter at once) and 100 (0: 3)")
	}
	if len(r.Destinations) > 0 && !r.Enabled {
		add("destinations", len(r.Destinations), "need result_objects.enabled: true (no objects are built otherwise)")
	}
	seen := map[string]bool{}
	for i, d := range r.Destinations {
		p := fmt.Sprintf("destinations[%d].", i)
		if !destNameRe.MatchString(d.Name) {
			add(p+"name", d.Name, "must be 1-48 lowercase letters, digits, - or _ (it names a durable consumer)")
		} else if seen[d.Name] {
			add(p+"name", d.Name, "is listed twice")
		}
		seen[d.Name] = true
		for j, pr := range d.Priorities {
			if pr != "critical" && pr != "urgent" && pr != "routine" {
				add(fmt.Sprintf("%spriorities[%d]", p, j), pr, "must be critical, urgent or routine")
			}
		}
		if d.Timeout < 0 || d.Timeout > 10*time.Minute {
			add(p+"timeout", d.Timeout, "must be between 0 (default 30s) and 10m")
		}
		aeOK := func(field, v string, required bool) {
			switch {
			case v == "" && required:
				add(p+field, v, "is required for type cstore (the AE title)")
			case len(v) > 16 || strings.TrimSpace(v) != v || strings.ContainsAny(v, "\\\r\n\t"):
				add(p+field, v, "must be an AE title: at most 16 characters, no backslash, control character or surrounding spaces")
			}
		}
		switch d.Type {
		case "cstore":
			if _, port, err := net.SplitHostPort(d.Address); err != nil || port == "" {
				add(p+"address", d.Address, "must be host:port of the PACS's DICOM port")
			}
			aeOK("called_ae", d.CalledAE, true)
			aeOK("calling_ae", d.CallingAE, false)
			if d.URL != "" || d.TokenFile != "" || d.Dir != "" {
				add(p+"url", d.URL, "url, token_file and dir do not apply to type cstore")
			}
		case "stowrs":
			if !httpURL(d.URL) {
				add(p+"url", d.URL, "must be the http(s) URL of the DICOMweb service (…/dicom-web)")
			}
			if d.Address != "" || d.CalledAE != "" || d.CallingAE != "" || d.Dir != "" {
				add(p+"address", d.Address, "address, called_ae, calling_ae and dir do not apply to type stowrs")
			}
		case "outbox":
			if strings.TrimSpace(d.Dir) == "" {
				add(p+"dir", d.Dir, "is required for type outbox (the folder the gateway picks files up from)")
			}
			if d.Address != "" || d.CalledAE != "" || d.CallingAE != "" || d.URL != "" || d.TokenFile != "" || d.TLS != (DeliverTLS{}) || d.Timeout != 0 {
				add(p+"type", d.Type, "address, called_ae, calling_ae, url, token_file, tls and timeout do not apply to type outbox")
			}
		default:
			add(p+"type", d.Type, "must be cstore, stowrs or outbox")
		}
	}
	for name, v := range map[string]string{"bucket": r.Bucket, "stream": r.Stream} {
		if v != "" && !natsNameRe.MatchString(v) {
			add(name, v, "must be a JetStream name (letters, digits, - and _)")
		}
	}
	return ps
}
