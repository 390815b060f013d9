package pacs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/resultobj"
)

// daemonConfig scores every film critical (thresholds near 0: the test
// does not depend on what the model thinks of a film), with the CAM only
// (no occlusion), result objects on and sent to dests.
func daemonConfig(t *testing.T, natsURL string, dests ...config.PACSDestination) *config.Config {
	cfg := config.Default()
	cfg.NATS.URL = natsURL
	cfg.Ingest.Folders = []config.Folder{{Path: filepath.Join(t.TempDir(), "incoming")}}
	cfg.Ingest.Settle = 100 * time.Millisecond
	cfg.Models = []config.Model{{Path: testenv.Model(t, "squeezenet1_1")}}
	cfg.Pipeline.Workers = 2
	cfg.Pipeline.DrainTimeout = 10 * time.Second
	cfg.Triage.UrgentThreshold, cfg.Triage.CriticalThreshold = 0.0001, 0.0002
	cfg.Heatmap.Occlusion.Budget = config.OcclusionBudget{Critical: config.BudgetOff, Urgent: config.BudgetOff}
	cfg.Route.BodyParts, cfg.Route.ViewPositions = nil, nil // every shared film is scored
	// The 16x16 shared films are under the input-quality gate's
	// min_size: not assessable films get no result objects.
	cfg.Quality.Enabled = false
	cfg.ResultObjects.Enabled = true
	cfg.ResultObjects.Destinations = dests
	cfg.Deliver.MinBackoff, cfg.Deliver.MaxBackoff = 200*time.Millisecond, 2*time.Second
	cfg.Deliver.AckWait = 5 * time.Second
	return cfg
}

// runDaemon runs a real daemon (in-process) until the test ends.
func runDaemon(t *testing.T, cfg *config.Config) string {
	t.Helper()
	d, err := daemon.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx); d.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	select {
	case <-d.Ready:
	case err := <-done:
		t.Fatalf("daemon stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon not ready")
	}
	return cfg.Ingest.Folders[0].Path
}

// dropFilm copies a shared film into the drop folder (write, then rename)
// and returns its Study Instance UID.
func dropFilm(t *testing.T, dir, rel string) string {
	t.Helper()
	p := testenv.DICOM(t, rel)
	src, err := resultobj.ReadSourceFile(p, decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(filepath.Base(rel), ".dcm", "") + ".dcm"
	tmp := filepath.Join(dir, "."+name+".part")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return src.StudyInstanceUID
}

// resultsIn says whether Orthanc holds, for every study, one SR series
// and one SC (OT) series with one instance per film of the study in each,
// and nothing else: the film itself is never sent back, and a film's
// objects are stored once.
func resultsIn(o *orthanc.Server, studies []string) (bool, string) {
	films := map[string]int{}
	for _, st := range studies {
		films[st]++
	}
	for st, n := range films {
		ss, err := o.StudySeries(st)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]int{}
		for _, s := range ss {
			got[s.MainDicomTags["Modality"]] += len(s.Instances)
		}
		if len(ss) != 2 || got["SR"] != n || got["OT"] != n {
			return false, fmt.Sprintf("a study of %d film(s) has %d series, instances by modality %v", n, len(ss), got)
		}
	}
	n, err := o.CountInstances()
	if err != nil || n != 2*len(studies) {
		return false, fmt.Sprintf("%d instances (%v), want %d", n, err, 2*len(studies))
	}
	return true, ""
}

func waitResults(t *testing.T, o *orthanc.Server, studies []string, within time.Duration, what string) {
	t.Helper()
	var why string
	deadline := time.Now().Add(within)
	for {
		ok, w := resultsIn(o, studies)
		if ok {
			return
		}
		why = w
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s\n%s", what, why, tail(o.Log()))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// Films scored by a real daemon arrive in two real PACS (Orthanc), one
// by C-STORE, one by STOW-RS: the SR and the heatmap SC of each film in
// the film's own study (same Study Instance UID), in their own series,
// once per film and model set; and as files in an outbox folder. Then
// the C-STORE PACS goes away while more
// films are scored: nothing is lost, all arrive once it is back.
func TestDaemonResultsIntoOrthanc(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	cst := orthanc.Start(t, orthanc.Options{DICOM: true, AET: "PACS"})
	web := orthanc.Start(t, orthanc.Options{DICOMweb: true})
	srv := testenv.NATS(t)
	outbox := t.TempDir()
	cfg := daemonConfig(t, srv.ClientURL(),
		config.PACSDestination{Name: "pacs-dimse", Type: "cstore", Address: fmt.Sprintf("127.0.0.1:%d", cst.DICOMPort), CalledAE: "PACS", CallingAE: "TRIAGED"},
		config.PACSDestination{Name: "pacs-web", Type: "stowrs", URL: web.URL + "/dicom-web"},
		config.PACSDestination{Name: "gateway", Type: "outbox", Dir: outbox})
	drop := runDaemon(t, cfg)

	var studies []string
	for _, f := range []string{"original/nih_cxr_dx_implicit.dcm", "original/RG1_J2KI.dcm", "original/pydicom_tiny_CR_6154.dcm"} {
		studies = append(studies, dropFilm(t, drop, f))
	}
	waitResults(t, cst, studies, 3*time.Minute, "C-STORE PACS")
	waitResults(t, web, studies, time.Minute, "STOW-RS PACS")

	// PACS down: films scored meanwhile wait in the record.
	cst.Stop()
	for _, f := range []string{"original/RG3_J2KI.dcm", "original/pydicom_tiny_CR_6247.dcm"} {
		studies = append(studies, dropFilm(t, drop, f))
	}
	waitResults(t, web, studies, 3*time.Minute, "STOW-RS PACS while the C-STORE one is down")
	time.Sleep(3 * time.Second) // a few retries against the closed port
	cst.Start()
	waitResults(t, cst, studies, time.Minute, "C-STORE PACS back")
	// Nothing more arrives later (no duplicates as new objects).
	time.Sleep(2 * time.Second)
	if ok, why := resultsIn(cst, studies); !ok {
		t.Errorf("C-STORE PACS after settling: %s", why)
	}
	// The outbox folder holds each film's SR and SC, once.
	testenv.Eventually(t, 30*time.Second, "every film's objects in the outbox", func() bool {
		dcm, other := outboxFiles(t, outbox)
		return len(dcm) == 2*len(studies) && len(other) == 0
	})
}
