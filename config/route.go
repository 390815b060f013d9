package config

import (
	"fmt"
	"regexp"
)

// Route is the routing filter: read from a film's header before its pixels
// are decoded, it decides whether the film is a chest radiograph the models
// are meant for. A film it turns away is not an error: it gets a "skipped"
// event and its file goes to done/. An empty list lets every value through.
type Route struct {
	Modalities    []string `yaml:"modalities"`
	BodyParts     []string `yaml:"body_parts"`
	ViewPositions []string `yaml:"view_positions"`
	SOPClasses    []string `yaml:"sop_classes"`
	// Missing says what happens to a film that lacks an attribute a list
	// filters on: "score" (the default: a hospital would rather have a
	// film with incomplete tags scored than dropped) or "skip".
	Missing string `yaml:"missing"`
}

// SOP classes of radiographs the models can read: CR, DX for presentation
// (not DX for processing: raw detector values), and secondary captures
// (scanned or exported films, and screenshots).
var defaultSOPClasses = []string{
	"1.2.840.10008.5.1.4.1.1.1",   // Computed Radiography Image Storage
	"1.2.840.10008.5.1.4.1.1.1.1", // Digital X-Ray Image Storage - For Presentation
	"1.2.840.10008.5.1.4.1.1.7",   // Secondary Capture Image Storage
	"1.2.840.10008.5.1.4.1.1.7.2", // Multi-frame Grayscale Byte Secondary Capture
	"1.2.840.10008.5.1.4.1.1.7.3", // Multi-frame Grayscale Word Secondary Capture
	"1.2.840.10008.5.1.4.1.1.7.4", // Multi-frame True Color Secondary Capture
}

func defaultRoute() Route {
	return Route{
		Modalities:    []string{"CR", "DX"},
		BodyParts:     []string{"CHEST"},
		ViewPositions: []string{"PA", "AP"},
		SOPClasses:    append([]string(nil), defaultSOPClasses...),
		Missing:       "score",
	}
}

var (
	csRe  = regexp.MustCompile(`^[A-Za-z0-9_ ]{1,16}$`)
	uidRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
)

func (c *Config) validateRoute(add func(path string, v any, msg string, args ...any)) {
	r := c.Route
	for name, vs := range map[string][]string{"route.modalities": r.Modalities, "route.body_parts": r.BodyParts, "route.view_positions": r.ViewPositions} {
		for i, v := range vs {
			if !csRe.MatchString(v) {
				add(fmt.Sprintf("%s[%d]", name, i), v, "must be a DICOM code string (up to 16 letters, digits, spaces or _)")
			}
		}
	}
	for i, v := range r.SOPClasses {
		if len(v) > 64 || !uidRe.MatchString(v) {
			add(fmt.Sprintf("route.sop_classes[%d]", i), v, "must be a UID (digits and dots, up to 64 characters)")
		}
	}
	if r.Missing != "score" && r.Missing != "skip" {
		add("route.missing", r.Missing, "must be score or skip")
	}
}
