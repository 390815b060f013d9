package config

import (
	"strings"
	"testing"
)

func TestQualityAndDriftDefaultsAreValid(t *testing.T) {
	c := Default()
	if ps := c.ValidateQuality(); len(ps) > 0 {
		t.Fatal(ps)
	}
	if !c.Quality.Enabled || c.Quality.MinSize != 64 || !c.Drift.Enabled || c.Drift.Window != 500 || c.Drift.PSILevel != 0.25 {
		t.Errorf("defaults: %+v %+v", c.Quality, c.Drift)
	}
}

func TestQualityParse(t *testing.T) {
	c, err := Parse([]byte(`
quality:
  min_size: 256
  min_spread: 0
  calibration_margin: 10
drift:
  window: 200
  min_films: 50
  psi_level: 0.2
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	q, d := c.Quality, c.Drift
	// Keys left out keep their defaults; 0 turns a check off.
	if !q.Enabled || q.MinSize != 256 || q.MinSpread != 0 || q.MinLevels != 16 || q.CalibrationMargin != 10 {
		t.Errorf("quality: %+v", q)
	}
	if !d.Enabled || d.Window != 200 || d.MinFilms != 50 || d.PSILevel != 0.2 {
		t.Errorf("drift: %+v", d)
	}
	if _, err := Parse([]byte("quality:\n  min_sise: 256\n"), "/etc/triaged"); err == nil {
		t.Error("an unknown key under quality was accepted")
	}
}

func TestQualityProblems(t *testing.T) {
	c := Default()
	c.Quality.MinSize = -1
	c.Quality.MinSpread = 200
	c.Quality.MinLevels = 300
	c.Quality.CalibrationMargin = -2
	c.Drift.Window = 5
	c.Drift.MinFilms = 10
	c.Drift.PSILevel = 0
	ps := c.ValidateQuality()
	got := ps.Error()
	for _, want := range []string{"quality.min_size", "quality.min_spread", "quality.min_levels", "quality.calibration_margin", "drift.window", "drift.min_films", "drift.psi_level"} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem for %s in:\n%s", want, got)
		}
	}
	c = Default()
	c.Drift = Drift{Enabled: false}
	if ps := c.ValidateQuality(); len(ps) > 0 {
		t.Errorf("a disabled drift watch is checked: %v", ps)
	}
	if ps := c.Validate(); len(ps) > 0 {
		t.Errorf("Validate: %v", ps)
	}
}
