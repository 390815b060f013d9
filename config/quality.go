package config

import (
	"fmt"
	"math"
)

// Quality is the input-quality gate: after decode, before scoring, a film
// that is blank, nearly uniform, far too small, or whose display statistics
// lie far outside the models' calibration distribution gets the result
// priority not_assessable with a reason code, and no alert (see
// docs/runbook.md#input-quality-and-drift). A zero limit turns its check off.
type Quality struct {
	// Enabled runs the gate (default true).
	Enabled bool `yaml:"enabled"`
	// MinSize: a film with fewer rows or columns than this is too_small.
	MinSize int `yaml:"min_size"`
	// MinSpread: a display image whose gray levels (0-255) have a standard
	// deviation below this is uniform.
	MinSpread float64 `yaml:"min_spread"`
	// MinLevels: a display image using fewer distinct gray levels than this
	// is uniform (one level: blank).
	MinLevels int `yaml:"min_levels"`
	// CalibrationMargin: a film whose display mean or spread lies more than
	// this many gray levels outside the range the models' calibration films
	// covered (stored in the manifest by `triaged model calibrate`) is
	// outside_calibration. 0: off.
	CalibrationMargin float64 `yaml:"calibration_margin"`
}

// DefaultQuality is the gate in config.Default.
func DefaultQuality() Quality {
	return Quality{Enabled: true, MinSize: 64, MinSpread: 4, MinLevels: 16, CalibrationMargin: 25}
}

// Drift is the drift watch: recent films compared with the distribution the
// models were calibrated on, by a population stability index per signal.
type Drift struct {
	// Enabled runs the watch (default true); it needs a manifest with a
	// drift profile (`triaged model calibrate -write`).
	Enabled bool `yaml:"enabled"`
	// Window: the most recent films compared.
	Window int `yaml:"window"`
	// MinFilms: no index before this many films.
	MinFilms int `yaml:"min_films"`
	// PSILevel: an index at or above this raises the TriagedInputDrift
	// condition (0.25 is the customary "major shift").
	PSILevel float64 `yaml:"psi_level"`
}

// DefaultDrift is the watch in config.Default.
func DefaultDrift() Drift { return Drift{Enabled: true, Window: 500, MinFilms: 100, PSILevel: 0.25} }

// ValidateQuality checks the quality and drift sections.
func (c *Config) ValidateQuality() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	q := c.Quality
	if q.MinSize < 0 || q.MinSize > 4096 {
		add("quality.min_size", q.MinSize, "must be between 0 (off) and 4096 pixels")
	}
	if q.MinSpread < 0 || q.MinSpread > 128 || math.IsNaN(q.MinSpread) {
		add("quality.min_spread", q.MinSpread, "must be between 0 (off) and 128 gray levels")
	}
	if q.MinLevels < 0 || q.MinLevels > 256 {
		add("quality.min_levels", q.MinLevels, "must be between 0 (off) and 256")
	}
	if q.CalibrationMargin < 0 || q.CalibrationMargin > 255 || math.IsNaN(q.CalibrationMargin) {
		add("quality.calibration_margin", q.CalibrationMargin, "must be between 0 (off) and 255 gray levels")
	}
	d := c.Drift
	if d.Enabled {
		if d.Window < 10 || d.Window > 100_000 {
			add("drift.window", d.Window, "must be between 10 and 100000 films")
		}
		if d.MinFilms < 1 || d.MinFilms > d.Window {
			add("drift.min_films", d.MinFilms, "must be between 1 and drift.window (%d)", d.Window)
		}
		if !(d.PSILevel > 0) || d.PSILevel > 10 {
			add("drift.psi_level", d.PSILevel, "must be above 0 and at most 10 (0.25: a major shift)")
		}
	}
	return ps
}
