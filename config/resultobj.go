package config

import (
	"fmt"
	"strings"
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
	for name, v := range map[string]string{"bucket": r.Bucket, "stream": r.Stream} {
		if v != "" && !natsNameRe.MatchString(v) {
			add(name, v, "must be a JetStream name (letters, digits, - and _)")
		}
	}
	return ps
}
