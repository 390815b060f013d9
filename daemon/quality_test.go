package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/drift"
	"github.com/triaged/triaged/film"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
)

// metricValue sums a Prometheus series' samples whose labels include want.
func metricValue(t *testing.T, d *daemon.Daemon, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := d.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			found = true
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum, found
}

// Blank, uniform and tiny films are not scored: each gets a stored result
// with priority not_assessable and its reason, raises no alert, is
// acknowledged (done/) and counted; a good film beside them is scored.
func TestQualityGateStopsBlankUniformAndTinyFilms(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	h := start(t, cfg)

	flat := func(uid string, rows, cols, v int) []byte {
		px := make([]int, rows*cols)
		for i := range px {
			px[i] = v
		}
		return dicomtest.Image{Rows: rows, Columns: cols, BitsAllocated: 16, BitsStored: 12, Pixels: px,
			BodyPart: "CHEST", View: "PA", SOPInstanceUID: uid}.Bytes()
	}
	const zeroUID, zeroUID2, uniformUID, tinyUID, goodUID = "2.25.1919001", "2.25.1919002", "2.25.1919003", "2.25.1919004", "2.25.1919005"
	// The report that started this: two valid 64x64 films, all zero.
	drop(t, h.drop, "zero1.dcm", flat(zeroUID, 64, 64, 0))
	drop(t, h.drop, "zero2.dcm", flat(zeroUID2, 64, 64, 0))
	// Nearly uniform: three gray levels, windowed wide.
	px := make([]int, 300*300)
	for i := range px {
		px[i] = 2000 + 16*(i%3)
	}
	drop(t, h.drop, "uniform.dcm", dicomtest.Image{Rows: 300, Columns: 300, BitsAllocated: 16, BitsStored: 12, Pixels: px,
		Center: 2048, Width: 4096, BodyPart: "CHEST", View: "PA", SOPInstanceUID: uniformUID}.Bytes())
	drop(t, h.drop, "tiny.dcm", dicomtest.Film(tinyUID, 32, 48, ""))
	drop(t, h.drop, "good.dcm", dicomtest.Film(goodUID, 300, 260, ""))

	testenv.Eventually(t, 60*time.Second, "every film handled", func() bool {
		return count(filepath.Join(h.drop, "done"), isFilm) == 5
	})
	res := results(t, h.url)
	want := map[string]string{zeroUID: daemon.ReasonBlank, zeroUID2: daemon.ReasonBlank, uniformUID: daemon.ReasonUniform, tinyUID: daemon.ReasonTooSmall}
	for uid, reason := range want {
		rs := res[uid]
		if len(rs) != 1 {
			t.Fatalf("%s: %d results, want 1", uid, len(rs))
		}
		r := rs[0]
		if r.Priority != publish.PriorityNotAssessable || r.NotAssessable != reason || r.Score != 0 || len(r.Models) != 0 {
			t.Errorf("%s: priority %q reason %q score %g models %d, want not_assessable/%s without a score", uid, r.Priority, r.NotAssessable, r.Score, len(r.Models), reason)
		}
		t.Logf("%s: %s (%s)", reason, r.Priority, r.PriorityReason)
	}
	if g := res[goodUID]; len(g) != 1 || g[0].Priority == publish.PriorityNotAssessable || len(g[0].Models) != 1 {
		t.Errorf("good film: %+v", g)
	}
	alerts := testenv.Stored[publish.Result](t, h.url, cfg.NATS.AlertStream.Name, "triaged.alert.>")
	for _, a := range alerts {
		if _, gated := want[a.Film.SOPInstanceUID]; gated {
			t.Errorf("not-assessable film %s raised an alert: %+v", a.Film.SOPInstanceUID, a)
		}
	}
	for reason, n := range map[string]float64{daemon.ReasonBlank: 2, daemon.ReasonUniform: 1, daemon.ReasonTooSmall: 1} {
		if v, _ := metricValue(t, h.d, "triaged_films_not_assessable_total", map[string]string{"reason": reason}); v != n {
			t.Errorf("triaged_films_not_assessable_total{reason=%q} = %g, want %g", reason, v, n)
		}
	}
}

// Every chest film of the shared data set (the NIH DX film, the RG1 CR film
// and their transcodes) that the daemon decodes passes the gate.
func TestQualityGatePassesSharedChestFilms(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	dir := filepath.Join(testenv.SharedData(t), "dicom")
	var films []string
	for _, sub := range []string{"original", "derived"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if n := e.Name(); strings.HasPrefix(n, "nih") || strings.HasPrefix(n, "RG1") { // the chest films
				films = append(films, filepath.Join(dir, sub, n))
			}
		}
	}
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	h := start(t, cfg)
	for i, f := range films {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		drop(t, h.drop, fmt.Sprintf("f%02d-%s", i, filepath.Base(f)), b)
	}
	testenv.Eventually(t, 120*time.Second, "every film handled", func() bool {
		return count(filepath.Join(h.drop, "done"), isFilm)+count(filepath.Join(h.drop, "failed"), isFilm) == len(films)
	})
	scored, gated := 0, 0
	for _, rs := range results(t, h.url) {
		for _, r := range rs {
			if r.Priority == publish.PriorityNotAssessable {
				gated++
				t.Errorf("%s not assessable: %s", r.Source.File, r.PriorityReason)
			} else {
				scored++
			}
		}
	}
	n, _ := metricValue(t, h.d, "triaged_films_not_assessable_total", nil)
	skipped := len(testenv.Stored[publish.Event](t, h.url, "TRIAGED_RESULTS", "triaged.skipped"))
	done, failed := count(filepath.Join(h.drop, "done"), isFilm), count(filepath.Join(h.drop, "failed"), isFilm)
	if n != 0 || skipped != 0 || failed != 0 || scored == 0 {
		t.Errorf("not assessable %g, skipped %d, failed %d, scored instances %d: want every chest film scored", n, skipped, failed, scored)
	}
	t.Logf("shared chest DICOM files: %d; passed the gate and scored: %d (done/ %d, failed/ %d, skipped %d, not assessable %g); distinct instances with a stored result: %d",
		len(films), done-int(n)-skipped, done, failed, skipped, n, scored)
}

// driftFilms are synthetic films of varied brightness and contrast under a
// fixed window; inverted, the same pixels say MONOCHROME1.
func driftFilms(n int, inverted bool, seed int64) [][]byte {
	rng := rand.New(rand.NewSource(seed))
	var out [][]byte
	for i := range n {
		rows, cols := 96, 96
		base, gain := 300+rng.Intn(1200), 0.5+rng.Float64()
		px := make([]int, rows*cols)
		for y := range rows {
			for x := range cols {
				v := float64(base) + gain*(1500*float64(y)/float64(rows)+600*float64(x)/float64(cols))
				if dx, dy := x-cols/2, y-rows/3; dx*dx+dy*dy < rows*cols/16 {
					v += gain * 900
				}
				px[y*cols+x] = min(4095, int(v))
			}
		}
		im := dicomtest.Image{Rows: rows, Columns: cols, BitsAllocated: 16, BitsStored: 12, Pixels: px, Center: 2048, Width: 4096,
			BodyPart: "CHEST", View: "PA", SOPInstanceUID: fmt.Sprintf("2.25.2020%d%04d", seed, i)}
		if inverted {
			im.Photometric = "MONOCHROME1"
			im.SOPInstanceUID = fmt.Sprintf("2.25.2021%d%04d", seed, i)
		}
		out = append(out, im.Bytes())
	}
	return out
}

// calibratedModel copies the default model's manifest into a temporary
// model directory with a drift profile of films (scored and measured as
// the daemon does), the model file linked.
func calibratedModel(t *testing.T, films [][]byte) string {
	t.Helper()
	src := testenv.Model(t, "squeezenet1_1")
	cfg := newConfig(t, "nats://unused")
	eng, err := provision.Engine(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var samples []drift.Sample
	for _, b := range films {
		a, err := film.Analyze(context.Background(), eng, bytes.NewReader(b), int64(len(b)), provision.DecodeLimits(cfg), "")
		if err != nil {
			t.Fatal(err)
		}
		h := a.Header
		samples = append(samples, drift.Sample{Score: a.Result.Models[0].Probability, Stats: drift.Measure(a.Display),
			PixelSpacing: h.PixelSpacing, Manufacturer: h.Manufacturer, Model: h.ModelName, TransferSyntax: h.TransferSyntax, Photometric: h.Photometric})
	}
	raw, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["drift"] = drift.NewProfile("synthetic films of this test", samples)
	out, _ := json.Marshal(m)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "model.onnx"), filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The drift watch: films like the calibration films keep every index low
// and the TriagedInputDrift condition quiet; the same films inverted
// (MONOCHROME1) push the display mean's index over the level, the gauge
// shows it and the condition fires for the on-call channel.
func TestDriftWatchFiresOnInvertedFilms(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	const n = 40
	calib := driftFilms(n, false, 7)
	model := calibratedModel(t, calib)
	srv := testenv.NATS(t)
	cfg := newConfig(t, srv.ClientURL())
	cfg.Models[0].Path = model
	cfg.Drift.Window, cfg.Drift.MinFilms, cfg.Drift.PSILevel = n, n, 0.25
	h := start(t, cfg)

	condition := func() bool {
		for _, c := range h.d.HealthConditions() {
			if c.Name == "TriagedInputDrift" {
				if c.Firing {
					t.Logf("condition: %s", c.Summary)
				}
				return c.Firing
			}
		}
		t.Fatal("no TriagedInputDrift condition")
		return false
	}
	psi := func(signal string) float64 {
		v, ok := metricValue(t, h.d, "triaged_drift_psi", map[string]string{"signal": signal})
		if !ok {
			t.Fatalf("no triaged_drift_psi{signal=%q}", signal)
		}
		return v
	}
	signals := []string{drift.SignalMean, drift.SignalSpread, drift.SignalScore + ":squeezenet1_1", drift.SignalPhotometric, drift.SignalTransferSyntax}

	// In distribution: the calibration films themselves.
	for i, b := range calib {
		drop(t, h.drop, fmt.Sprintf("in%02d.dcm", i), b)
	}
	done := filepath.Join(h.drop, "done")
	testenv.Eventually(t, 60*time.Second, "in-distribution films handled", func() bool { return count(done, isFilm) == n })
	testenv.Eventually(t, 5*time.Second, "index computed", func() bool {
		_, ok := metricValue(t, h.d, "triaged_drift_psi", map[string]string{"signal": drift.SignalMean})
		return ok
	})
	for _, s := range signals {
		v := psi(s)
		t.Logf("in distribution: triaged_drift_psi{signal=%q} = %.4f", s, v)
		if v >= 0.1 {
			t.Errorf("in-distribution PSI of %s = %.3f, want < 0.1", s, v)
		}
	}
	if condition() {
		t.Error("TriagedInputDrift fires on in-distribution films")
	}

	// Out of distribution: the same films, inverted.
	for i, b := range driftFilms(n, true, 7) {
		drop(t, h.drop, fmt.Sprintf("inv%02d.dcm", i), b)
	}
	testenv.Eventually(t, 60*time.Second, "inverted films handled", func() bool { return count(done, isFilm) == 2*n })
	for _, s := range signals {
		t.Logf("inverted: triaged_drift_psi{signal=%q} = %.4f", s, psi(s))
	}
	if v := psi(drift.SignalMean); v < cfg.Drift.PSILevel {
		t.Errorf("PSI of the display mean after inverted films = %.3f, want >= %g", v, cfg.Drift.PSILevel)
	}
	if !condition() {
		t.Error("TriagedInputDrift does not fire after inverted films")
	}
	if v, _ := metricValue(t, h.d, "triaged_films_unseen_total", map[string]string{"signal": drift.SignalPhotometric}); v != n {
		t.Errorf("triaged_films_unseen_total{signal=photometric} = %g, want %d (MONOCHROME1 never seen in calibration)", v, n)
	}
}
