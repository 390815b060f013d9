package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// A scored film's SR and CAM image are in the record (bucket and message)
// by the time the film is acknowledged, also for a film owed a late
// occlusion map; in the film's study, under their own series.
func TestResultObjectsStoredBeforeAck(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	cfg := heatConfig(t, srv.ClientURL(), 0) // a zero budget: the occlusion map always comes late
	cfg.ResultObjects.Enabled = true
	h := start(t, cfg)
	films := []string{"original/nih_cxr_dx_implicit.dcm", "original/RG1_J2KI.dcm"}
	studies := map[string]string{} // source SOP Instance UID -> study
	for i, rel := range films {
		p := testenv.DICOM(t, rel)
		src, err := resultobj.ReadSourceFile(p, decode.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		studies[src.SOPInstanceUID] = src.StudyInstanceUID
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		drop(t, h.drop, string(rune('a'+i))+".dcm", b)
	}
	done := filepath.Join(h.drop, "done")
	testenv.Eventually(t, 120*time.Second, "films done", func() bool { return count(done, isFilm) == len(films) })
	// No waiting here: acknowledged means stored.
	msgs := testenv.StreamMessages(t, h.url, record.DefaultStream)
	if len(msgs) != len(films) {
		t.Fatalf("%d result object messages for %d films acknowledged", len(msgs), len(films))
	}
	js := jsClient(t, h.url)
	for _, m := range msgs {
		rm, err := record.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "triaged.objects.critical" || rm.Priority != "critical" || m.Header.Get("Nats-Msg-Id") != record.MessageID(rm.Objects[0].SOPInstanceUID) {
			t.Errorf("message on %s, priority %s, id %s", m.Subject, rm.Priority, m.Header.Get("Nats-Msg-Id"))
		}
		if studies[rm.SOPInstanceUID] == "" || rm.StudyInstanceUID != studies[rm.SOPInstanceUID] {
			t.Errorf("message names a film and study not dropped")
		}
		objs, err := record.Fetch(context.Background(), js, rm)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 2 || objs[0].SOPClassUID != resultobj.Comprehensive3DSRStorage || objs[1].SOPClassUID != resultobj.SecondaryCaptureStorage {
			t.Fatalf("objects %d, want the SR then the SC", len(objs))
		}
		for _, o := range objs {
			if !bytes.Contains(o.File, []byte(rm.StudyInstanceUID)) || !bytes.Contains(o.File, []byte(o.SOPInstanceUID)) {
				t.Errorf("object %s does not carry the film's study and its own instance UID", o.SOPClassUID)
			}
		}
	}
	// Processing the films again (a resend) replaces, never adds.
	for i, rel := range films {
		b, _ := os.ReadFile(testenv.DICOM(t, rel))
		drop(t, h.drop, string(rune('c'+i))+".dcm", b)
	}
	testenv.Eventually(t, 120*time.Second, "films done again", func() bool { return count(done, isFilm) == 2*len(films) })
	if n := len(testenv.StreamMessages(t, h.url, record.DefaultStream)); n != len(films) {
		t.Errorf("%d messages after a resend, want %d (deduplicated)", n, len(films))
	}
	obs, err := js.ObjectStore(context.Background(), record.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(context.Background())
	if err != nil || len(list) != 2*len(films) {
		t.Errorf("%d objects in the bucket (%v), want %d", len(list), err, 2*len(films))
	}
}
