package config

import "fmt"

// Shadow runs models without consequences, so a site can adopt a model on
// its own films (docs/adopting-a-model.md): a candidate model set scored
// beside the live one on every film, and/or the whole daemon in shadow for
// its first weeks. Shadow results are stored (marked "shadow": true, on
// <prefix>.shadow.result) but raise no alert, send no delivery, render no
// heatmap and never reach the worklist. The zero value is off.
type Shadow struct {
	// All puts the whole daemon in shadow: the live models' results too are
	// shadow results, and no film alerts.
	All bool `yaml:"all"`
	// Models is the candidate model set (model directories, as `models`),
	// scored on the same films as the live set. Empty: no candidate.
	Models []Model `yaml:"models"`
	// UrgentThreshold, CriticalThreshold: the candidate's operating points
	// (0: from its manifests), so its results record the priority it would
	// have given.
	UrgentThreshold   float64 `yaml:"urgent_threshold"`
	CriticalThreshold float64 `yaml:"critical_threshold"`
}

// On reports whether the daemon publishes shadow results at all.
func (s Shadow) On() bool { return s.All || len(s.Models) > 0 }

// ValidateShadow checks the shadow section.
func (c *Config) ValidateShadow() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: "shadow." + path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	s := c.Shadow
	seen := map[string]bool{}
	for i, m := range s.Models {
		p := fmt.Sprintf("models[%d].path", i)
		if m.Path == "" {
			add(p, "", "is required")
			continue
		}
		if seen[c.Resolve(m.Path)] {
			add(p, m.Path, "is listed twice")
		}
		seen[c.Resolve(m.Path)] = true
	}
	for name, t := range map[string]float64{"urgent_threshold": s.UrgentThreshold, "critical_threshold": s.CriticalThreshold} {
		if t < 0 || t > 1 {
			add(name, t, "must be a probability between 0 and 1 (0 = from the candidate's manifests)")
		}
	}
	if (s.UrgentThreshold > 0) != (s.CriticalThreshold > 0) {
		add("urgent_threshold", s.UrgentThreshold, "set both urgent_threshold and critical_threshold, or neither")
	} else if s.UrgentThreshold > 0 && s.CriticalThreshold < s.UrgentThreshold {
		add("critical_threshold", s.CriticalThreshold, "must not be below shadow.urgent_threshold (%g)", s.UrgentThreshold)
	}
	if len(s.Models) == 0 && (s.UrgentThreshold > 0 || s.CriticalThreshold > 0) {
		add("models", "[]", "thresholds are set but no candidate model is")
	}
	return ps
}
