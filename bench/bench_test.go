package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestSmoke runs the whole harness for a few seconds with the daemon in
// process, on small synthetic films: every phase runs, every film gets its
// result, the report holds what the README quotes. It measures nothing.
func TestSmoke(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	films := t.TempDir()
	for i := range 4 {
		uid := fmt.Sprintf("2.25.1813.55%02d.1000000000", i)
		if err := os.WriteFile(filepath.Join(films, fmt.Sprintf("%02d.dcm", i)), dicomtest.Film(uid, 300+40*i, 260, ""), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	model := testenv.Model(t, "squeezenet1_1")
	o := Options{
		Root: testenv.Root(), Films: films, Out: t.TempDir(),
		DefaultModel: model, Ensemble: []string{model},
		Phase: 3 * time.Second, Outstanding: 4, Rate: 4, LatencyFilms: 3, NATSPhase: 2 * time.Second,
		Stages: true, Launcher: InProcess{Version: "bench-test"},
	}
	if _, err := os.Stat(filepath.Join(testenv.Root(), "..", "shared", "data", "cxr", "labels.csv")); err == nil {
		o.CXR = filepath.Join(testenv.Root(), "..", "shared", "data", "cxr")
		o.Backlog, o.BacklogFullEvery = 12, 4
	} else {
		t.Log("no shared data set: the backlog run is skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Setups) != 3 {
		t.Fatalf("%d setups, want 3", len(rep.Setups))
	}
	for _, s := range rep.Setups {
		for name, ph := range map[string]PhaseResult{"throughput": s.Throughput, "latency": s.Latency} {
			if ph.Errors > 0 {
				t.Errorf("%s, %s: %d errors %v", s.Setup.Name, name, ph.Errors, ph.ErrorCodes)
			}
		}
		if s.Latency.DropToResult.N != o.LatencyFilms {
			t.Errorf("%s: latency phase has %d results, want %d", s.Setup.Name, s.Latency.DropToResult.N, o.LatencyFilms)
		}
		if s.Providers["squeezenet1_1"] != "CPUExecutionProvider" {
			t.Errorf("%s: providers %v", s.Setup.Name, s.Providers)
		}
	}
	if heat := rep.Setups[2]; heat.Latency.DropToAlert.N != o.LatencyFilms || heat.Throughput.StageMS["heatmap"] <= 0 {
		t.Errorf("heatmap setup: %d alerts of %d films, heatmap stage %v ms", heat.Latency.DropToAlert.N, o.LatencyFilms, heat.Throughput.StageMS["heatmap"])
	}
	if n := rep.Setups[0].NATS; n.Films == 0 || n.Source != "nats" {
		t.Errorf("NATS intake phase: %+v", n)
	}
	if o.Backlog > 0 && (rep.Backlog == nil || rep.Backlog.Films != o.Backlog || rep.Backlog.Errors != 0 || rep.Backlog.FullSize != 3) {
		t.Errorf("backlog: %+v", rep.Backlog)
	}
	if st := rep.Stages; st == nil || st.InferenceMS["squeezenet1_1"][8] <= 0 || st.PublishResultMS <= 0 {
		t.Errorf("stage costs: %+v", st)
	}
	md, err := os.ReadFile(filepath.Join(o.Out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Machine:", "Load average at start", "| default model |", "| ensemble + CAM heatmaps |", "drop->alert", "NATS intake"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	var back Report
	b, _ := os.ReadFile(filepath.Join(o.Out, "report.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Setups) != 3 {
		t.Errorf("report.json: %v", err)
	}
}

// Copies of a film are new instances: the SOP Instance UID changes, in the
// file meta and the data set alike, and nothing else does.
func TestCopiesAreNewInstances(t *testing.T) {
	dir := t.TempDir()
	for i, uid := range []string{"2.25.1813.1.1000000000", "1.2.3.4.5.6.7"} {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.dcm", i)), dicomtest.Film(uid, 64, 64, ""), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	films, err := LoadFilms(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &copies{films: films, run: 7}
	seen := map[string]bool{}
	for range 6 {
		data, uid, f := c.next()
		if seen[uid] || len(uid) != len(f.uid) || uid == string(f.uid) {
			t.Fatalf("copy UID %q of %q", uid, f.uid)
		}
		seen[uid] = true
		if strings.Contains(string(data), string(f.uid)) || strings.Count(string(data), uid) != 2 {
			t.Fatalf("copy of %s: old UID left or new UID not in meta and data set", f.Path)
		}
		if len(data) != len(f.data) {
			t.Fatal("copy changed the file's length")
		}
	}
}
