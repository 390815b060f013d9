package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHeatmapBudgets(t *testing.T) {
	d := Default().Heatmap.Occlusion.Budget
	if d.For("critical") != Budget(time.Second) || d.For("urgent").On() || d.For("routine").On() {
		t.Fatalf("default budgets %+v", d)
	}
	c, err := Parse([]byte(`
heatmap:
  bucket: {name: HM, max_age: 24h}
  colormap: viridis
  occlusion:
    size: 48
    stride: 12
    fill: "0"
    budget:
      critical: "off"
      urgent: 0s
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Heatmap
	if h.Bucket.Name != "HM" || h.Bucket.MaxAge != 24*time.Hour || h.Bucket.Replicas != 1 || h.Colormap != "viridis" ||
		h.Occlusion.Size != 48 || h.Occlusion.Fill != "0" || h.Occlusion.Budget.Critical.On() || h.Occlusion.Budget.For("urgent") != 0 {
		t.Fatalf("parsed %+v", h)
	}
}

func TestHeatmapProblemsHavePaths(t *testing.T) {
	_, err := Parse([]byte(`
heatmap:
  bucket: {name: "a.b", storage: disk}
  alpha: 0
  max_side: 100
  occlusion:
    stride: 33
    fill: grey
    batch_size: 0
    max_pending: 0
    budget:
      critical: soon
      routine: 1s
`), "/etc/triaged")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v", err)
	}
	got := err.Error()
	for _, want := range []string{"heatmap.bucket.name", "heatmap.bucket.storage", "heatmap.alpha", "heatmap.max_side",
		"heatmap.occlusion.stride", "heatmap.occlusion.fill", "heatmap.occlusion.batch_size", "heatmap.occlusion.max_pending",
		"heatmap.occlusion.budget.critical", "heatmap.occlusion.budget.routine: unknown key"} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem reported for %s in:\n%s", want, got)
		}
	}
	// Turned off, the section is still checked: it is wrong either way.
	if _, err := Parse([]byte("heatmap: {enabled: false, alpha: 7}\n"), "/x"); err == nil {
		t.Error("a bad value in a disabled heatmap section was accepted")
	}
}
