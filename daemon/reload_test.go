package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// distinctFilms makes n copies of a real chest film, each its own instance
// (the SOP Instance UID's last digits replaced in place).
func distinctFilms(t *testing.T, n, first int) [][]byte {
	t.Helper()
	src, err := os.ReadFile(testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte("1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888")
	out := make([][]byte, n)
	for i := range out {
		nu := append(append([]byte(nil), uid[:len(uid)-4]...), []byte(fmt.Sprintf("%04d", first+i))...)
		out[i] = bytes.ReplaceAll(src, uid, nu)
	}
	return out
}

// copyModel makes a second model directory from the committed one, with
// another version in its manifest: another model set.
func copyModel(t *testing.T, version string) string {
	t.Helper()
	src := testenv.Model(t, "squeezenet1_1")
	dst := filepath.Join(t.TempDir(), "squeezenet1_1-"+version)
	os.MkdirAll(dst, 0o755)
	onnx, err := os.ReadFile(filepath.Join(src, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "model.onnx"), onnx, 0o644)
	var man map[string]any
	b, _ := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	man["version"] = version
	b, _ = json.Marshal(man)
	os.WriteFile(filepath.Join(dst, "manifest.json"), b, 0o644)
	return dst
}

// metric sums a counter or gauge family over the series matching labels.
func metric(t *testing.T, d *daemon.Daemon, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := d.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
			return false
		}
	}
	return true
}

// A reload to a new model set while films stream in: the new set is loaded
// beside the old one and swapped in atomically; no film is dropped, failed
// or retried, every film has exactly one result from one set or the other,
// and the old set is closed once its last film is done.
func TestReloadSwapsModelsWithoutDroppingAFilm(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	d := start(t, cfg).d
	drop := cfg.Ingest.Folders[0].Path
	oldSet := d.Engine().Set

	const n = 24
	fs := distinctFilms(t, n, 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, f := range fs {
			tmp := filepath.Join(drop, fmt.Sprintf(".r%02d.tmp", i))
			os.WriteFile(tmp, f, 0o644)
			os.Rename(tmp, filepath.Join(drop, fmt.Sprintf("r%02d.dcm", i)))
			time.Sleep(25 * time.Millisecond)
		}
	}()
	testenv.Eventually(t, 60*time.Second, "some films scored with the first set", func() bool { return count(filepath.Join(drop, "done"), isFilm) >= 4 })

	next := *cfg
	next.Models = []config.Model{{Path: copyModel(t, "reload-test")}}
	res, err := d.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 || !strings.HasPrefix(res.Applied[0], "models: "+oldSet+" -> ms-") || len(res.NeedRestart) != 0 {
		t.Fatalf("reload result %+v", res)
	}
	newSet := d.Engine().Set
	if newSet == oldSet {
		t.Fatal("model set unchanged")
	}
	wg.Wait()
	testenv.Eventually(t, 120*time.Second, "every film done", func() bool { return count(filepath.Join(drop, "done"), isFilm) == n })
	if c := count(filepath.Join(drop, "failed"), isFilm); c != 0 {
		t.Fatalf("%d films failed", c)
	}
	sets := map[string]int{}
	for uid, rs := range results(t, srv.ClientURL()) {
		if len(rs) != 1 {
			t.Errorf("instance %s has %d results", uid, len(rs))
		}
		sets[rs[0].ModelSet]++
	}
	t.Logf("results by model set: %v", sets)
	if sets[oldSet] == 0 || sets[newSet] == 0 || sets[oldSet]+sets[newSet] != n {
		t.Fatalf("results by model set %v, want both %s and %s summing to %d", sets, oldSet, newSet, n)
	}
	if v := metric(t, d, "triaged_films_total", map[string]string{"outcome": "released"}); v != 0 {
		t.Fatalf("%v films released for a retry across the swap", v)
	}
	testenv.Eventually(t, 10*time.Second, "the old set closed", func() bool { return metric(t, d, "triaged_model_sets_closed_total", nil) == 1 })
}

// A reload adds and removes drop folders at once; one whose new model set
// cannot load is rejected as a whole, and nothing of it is applied.
func TestReloadFoldersAndRejectsBrokenModelsAsAWhole(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	d := start(t, cfg).d
	first := cfg.Ingest.Folders[0].Path
	second := filepath.Join(t.TempDir(), "second")
	fs := distinctFilms(t, 3, 100)

	// Rejected: the folder change must not be applied either.
	bad := copyModel(t, "broken")
	os.WriteFile(filepath.Join(bad, "model.onnx"), []byte("not the model the manifest names"), 0o644)
	broken := *cfg
	broken.Ingest.Folders = []config.Folder{{Path: second}}
	broken.Models = []config.Model{{Path: bad}}
	if _, err := d.Reload(&broken); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("broken model set accepted: %v", err)
	}
	drop(t, first, "a.dcm", fs[0])
	testenv.Eventually(t, 30*time.Second, "the first folder still taken", func() bool { return count(filepath.Join(first, "done"), isFilm) == 1 })

	// Applied: swap the first folder for the second, and change NATS
	// settings, which need a restart.
	next := *cfg
	next.Ingest.Folders = []config.Folder{{Path: second}}
	next.NATS.PublishTimeout = 7 * time.Second
	res, err := d.Reload(&next)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.NeedRestart, ",") != "nats.publish_timeout" {
		t.Fatalf("need restart: %v", res.NeedRestart)
	}
	drop(t, second, "b.dcm", fs[1])
	testenv.Eventually(t, 30*time.Second, "the added folder taken", func() bool { return count(filepath.Join(second, "done"), isFilm) == 1 })
	drop(t, first, "c.dcm", fs[2])
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(first, "c.dcm")); err != nil {
		t.Fatalf("a film dropped into the removed folder was taken: %v", err)
	}

	// Added back: the parked folder resumes and takes what waited.
	back := *cfg
	back.Ingest.Folders = []config.Folder{{Path: first}, {Path: second}}
	if _, err := d.Reload(&back); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the film that waited", func() bool { return count(filepath.Join(first, "done"), isFilm) == 2 })
}
