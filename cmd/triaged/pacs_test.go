package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Kill -9 while result objects are going to a PACS, restart: every film's
// SR and heatmap image end in the PACS (Orthanc) once; what was in flight
// at the kill is sent again under the same SOP Instance UIDs, so the PACS
// holds exactly two instances per film.
func TestKill9MidPACSDeliveryLosesNothing(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	pacs := orthanc.Start(t, orthanc.Options{DICOM: true, AET: "PACS"})
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cfgPath := writeConfig(t, dir, port)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `triage: {urgent_threshold: 0.0001, critical_threshold: 0.0002} # every film critical: an SR and an image each
heatmap: {occlusion: {budget: {critical: "off", urgent: "off"}}}
deliver: {min_backoff: 200ms, max_backoff: 2s, ack_wait: 5s}
result_objects:
  enabled: true
  destinations:
    - {name: pacs, type: cstore, address: "127.0.0.1:%d", called_ae: PACS}
`, pacs.DICOMPort)
	f.Close()
	drop := filepath.Join(dir, "incoming")
	const n = 8
	p := startProc(t, "run", "-config", cfgPath)
	for i, b := range films(t, n) {
		tmp := filepath.Join(drop, fmt.Sprintf(".f%02d.tmp", i))
		os.WriteFile(tmp, b, 0o644)
		os.Rename(tmp, filepath.Join(drop, fmt.Sprintf("f%02d.dcm", i)))
	}
	testenv.Eventually(t, 120*time.Second, "some objects in the PACS", func() bool {
		c, _ := pacs.CountInstances()
		return c >= 2
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	atKill, _ := pacs.CountInstances()
	t.Logf("killed with %d of %d objects in the PACS, %d films done", atKill, 2*n, count(filepath.Join(drop, "done")))
	if atKill == 2*n {
		t.Fatal("every object was delivered before the kill; the test proves nothing")
	}
	p2 := startProc(t, "run", "-config", cfgPath)
	testenv.Eventually(t, 180*time.Second, "every film's objects in the PACS", func() bool {
		c, _ := pacs.CountInstances()
		return c >= 2*n
	})
	time.Sleep(2 * time.Second) // anything more would arrive now
	var series []orthanc.Series
	var studies []string
	if err := pacs.JSON("GET", "/studies", nil, &studies); err != nil || len(studies) != 1 {
		t.Fatalf("studies %v (%v), want the films' one", studies, err)
	}
	if err := pacs.JSON("GET", "/studies/"+studies[0]+"/series", nil, &series); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range series {
		got[s.MainDicomTags["Modality"]] += len(s.Instances)
	}
	if c, _ := pacs.CountInstances(); c != 2*n || got["SR"] != n || got["OT"] != n || len(series) != 2 {
		t.Errorf("%d instances, %d series, by modality %v: want %d SR and %d OT in two series", c, len(series), got, n, n)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.exited:
	case <-time.After(30 * time.Second):
		t.Error("no exit after SIGTERM")
	}
}
