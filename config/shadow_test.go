package config

import (
	"strings"
	"testing"
)

func TestShadowParseAndValidate(t *testing.T) {
	c := Default()
	if c.Shadow.On() || len(c.ValidateShadow()) > 0 {
		t.Fatalf("default shadow section: %+v %v", c.Shadow, c.ValidateShadow())
	}
	c, err := Parse([]byte(`
shadow:
  models: [{path: models/resnet18}]
  urgent_threshold: 0.2
  critical_threshold: 0.9
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Shadow.On() || c.Shadow.All || len(c.Shadow.Models) != 1 || len(c.ValidateShadow()) > 0 {
		t.Fatalf("%+v %v", c.Shadow, c.ValidateShadow())
	}
	for yaml, want := range map[string]string{
		"shadow: {models: [{path: a}, {path: a}]}":                                      "shadow.models[1].path: is listed twice (value a)",
		"shadow: {models: [{path: ''}]}":                                                "shadow.models[0].path: is required",
		"shadow: {models: [{path: a}], urgent_threshold: 0.5}":                          "set both",
		"shadow: {models: [{path: a}], urgent_threshold: 0.5, critical_threshold: 0.4}": "must not be below shadow.urgent_threshold",
		"shadow: {models: [{path: a}], urgent_threshold: 1.5, critical_threshold: 2}":   "must be a probability",
		"shadow: {all: true, urgent_threshold: 0.1, critical_threshold: 0.2}":           "no candidate model",
	} {
		_, err := Parse([]byte(yaml), "/etc/triaged")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a problem saying %q", yaml, err, want)
		}
	}
	if _, err := Parse([]byte("shadow: {candidate: x}"), "/"); err == nil {
		t.Error("an unknown shadow key was accepted")
	}
}
