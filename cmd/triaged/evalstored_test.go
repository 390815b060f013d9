package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
)

// `model eval -stored` reads the live and shadow results stored on the
// stream, joins them with a labels CSV by SOP Instance UID and reports both
// model sets side by side; -subject and -model-set pick one, -since and
// -until bound the time.
func TestEvalStoredComparesLiveAndShadow(t *testing.T) {
	s := testenv.NATS(t)
	cfg := config.Default()
	cfg.NATS.URL = s.ClientURL()
	cfg.Shadow.All = true // the publisher's streams capture the shadow subject
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := publish.New(nc, provision.Publisher(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	// Six films; the live set ranks them perfectly, the candidate puts a
	// negative (3) above a positive (0).
	live := []float64{0.9, 0.8, 0.7, 0.3, 0.2, 0.1}
	cand := []float64{0.4, 0.9, 0.8, 0.6, 0.2, 0.1}
	at := time.Now().UTC().Add(-time.Hour)
	for i := range live {
		f := publish.Film{SOPInstanceUID: fmt.Sprintf("1.2.826.0.1.%d", i), StudyInstanceUID: fmt.Sprintf("1.2.826.1.%d", i)}
		r := &publish.Result{Schema: publish.ResultSchema, Film: f, ModelSet: "ms-live", Score: live[i], Priority: "routine",
			Thresholds: publish.Thresholds{Urgent: 0.5, Critical: 0.85}, Models: []publish.ModelScore{{Name: "squeezenet1_1"}}, ScoredAt: at}
		if _, err := pub.PublishResult(ctx, r, false); err != nil {
			t.Fatal(err)
		}
		c := *r
		c.ModelSet, c.Score, c.Models, c.Thresholds = "ms-cand", cand[i], []publish.ModelScore{{Name: "resnet18"}}, publish.Thresholds{Urgent: 0.5, Critical: 0.95}
		if _, err := pub.PublishShadow(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.csv")
	// Films 0-2 COVID-19, 3-4 not; film 5 unlabeled; one label has no film.
	csv := "sop_instance_uid,label\n1.2.826.0.1.0,covid\n1.2.826.0.1.1,1\n1.2.826.0.1.2,covid\n1.2.826.0.1.3,non\n1.2.826.0.1.4,0\n1.2.826.0.1.99,non\n"
	if err := os.WriteFile(labels, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, stdout, errs := run("model", "eval", "-stored", "-labels", labels, "-server", s.ClientURL(), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, errs)
	}
	for _, want := range []string{
		"| ms-live | live | squeezenet1_1 | 6 | 3 / 2 | 1 | 1 | 1.000 [1.000, 1.000] | 1.000 | 0.5000 | 100.0% [43.9, 100.0] (3/3) | 100.0% [34.2, 100.0] (2/2) | 0.8500 | 33.3% [6.1, 79.2] (1/3) | 100.0% [34.2, 100.0] (2/2) |",
		"| ms-cand | shadow | resnet18 | 6 | 3 / 2 | 1 | 1 | 0.833 [0.333, 1.000] | 0.917 | 0.5000 | 66.7% [20.8, 93.9] (2/3) | 50.0% [9.5, 90.5] (1/2) | 0.9500 | 0.0% [0.0, 56.1] (0/3) |",
		"| ms-live | live | 3 | 0 | 0 | 2 | 1 | 2 | 0 | 2 |",
		"| ms-cand | shadow | 2 | 1 | 1 | 1 | 0 | 3 | 0 | 2 |",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	var rep eval.StoredReport
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &struct{ Sets *[]eval.SetReport }{&rep.Sets}); err != nil || len(rep.Sets) != 2 {
		t.Fatalf("report.json: %v, %d sets\n%s", err, len(rep.Sets), b)
	}

	// Only the shadow subject; only one model set; a window with nothing in it.
	if code, stdout, errs := run("model", "eval", "-stored", "-labels", labels, "-nats", s.ClientURL(), "-o", out, "-subject", "shadow"); code != 0 ||
		strings.Contains(stdout, "ms-live") || !strings.Contains(stdout, "ms-cand") {
		t.Errorf("-subject shadow: exit %d\n%s%s", code, stdout, errs)
	}
	if code, stdout, errs := run("model", "eval", "-stored", "-labels", labels, "-server", s.ClientURL(), "-o", out, "-model-set", "ms-live", "-since", "3h"); code != 0 ||
		!strings.Contains(stdout, "ms-live") || strings.Contains(stdout, "ms-cand") {
		t.Errorf("-model-set ms-live: exit %d\n%s%s", code, stdout, errs)
	}
	if code, _, errs := run("model", "eval", "-stored", "-labels", labels, "-server", s.ClientURL(), "-o", out, "-since", "30m"); code != 1 || !strings.Contains(errs, "no stored results") {
		t.Errorf("-since 30m: exit %d, %s", code, errs)
	}
	for _, bad := range [][]string{{"-since", "yesterday"}, {"-since", "1h", "-until", "2h"}, {"-subject", ","}} {
		args := append([]string{"model", "eval", "-stored", "-labels", labels, "-server", s.ClientURL(), "-o", out}, bad...)
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, errs := run("model", "eval", "-stored", "-server", s.ClientURL()); code != 2 || !strings.Contains(errs, "needs -labels") {
		t.Errorf("without -labels: exit %d, %s", code, errs)
	}
}

// check-config reads the candidate's manifests as it reads the live ones'.
func TestCheckConfigChecksShadowManifests(t *testing.T) {
	p := filepath.Join(t.TempDir(), "triaged.yaml")
	y := fmt.Sprintf("models: [{path: %s}]\nshadow: {models: [{path: no-such-model}]}\n", filepath.Join(testenv.Root(), "models", "squeezenet1_1"))
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("check-config", "-config", p); code != 1 || !strings.Contains(errs, "shadow.models[0].path") {
		t.Errorf("exit %d, %s", code, errs)
	}
}

// A site that never turned shadow on: the stream lacks the shadow subject,
// and the default selection (live and shadow) still reads the live results.
func TestEvalStoredWithoutShadowSubject(t *testing.T) {
	s := testenv.NATS(t)
	cfg := config.Default()
	cfg.NATS.URL = s.ClientURL()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pub, err := publish.New(nc, provision.Publisher(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for i, sc := range []float64{0.9, 0.1} {
		r := &publish.Result{Film: publish.Film{SOPInstanceUID: fmt.Sprint("1.2.", i)}, ModelSet: "ms-live", Score: sc, Thresholds: publish.Thresholds{Urgent: 0.5, Critical: 0.8}, ScoredAt: time.Now()}
		if _, err := pub.PublishResult(ctx, r, false); err != nil {
			t.Fatal(err)
		}
	}
	labels := filepath.Join(t.TempDir(), "l.csv")
	if err := os.WriteFile(labels, []byte("sop_instance_uid,label\n1.2.0,1\n1.2.1,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run("model", "eval", "-stored", "-labels", labels, "-server", s.ClientURL(), "-o", t.TempDir())
	if code != 0 || !strings.Contains(out, "| ms-live | live |  | 2 | 1 / 1 | 0 | 0 | 1.000") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
}
