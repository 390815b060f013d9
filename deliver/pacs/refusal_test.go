package pacs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// deadLetters reads the dead letters of a destination.
func deadLetters(t *testing.T, url, name string) []deliver.DeadLetterMsg {
	t.Helper()
	var out []deliver.DeadLetterMsg
	for _, m := range testenv.StreamMessages(t, url, deliver.DefaultDeadLetterStream) {
		if m.Subject != deliver.DeadLetterSubject("triaged", name) {
			continue
		}
		var d deliver.DeadLetterMsg
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func runDelivery(t *testing.T, d *pacs.Delivery) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-d.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("delivery not ready")
	}
}

// A PACS that refuses the objects (here: Orthanc accepting only implicit
// VR little endian, so no presentation context for the objects; and a
// STOW-RS service whose filter fails on SRs, answering 200 with the SR
// neither stored nor failed) is tried again RefusalRetries times, then
// the film goes to the dead letters with the reason: never a silent
// success, and never acknowledged as delivered.
func TestRefusingPACSDeadLetters(t *testing.T) {
	testenv.Slow(t)
	cst := orthanc.Start(t, orthanc.Options{DICOM: true, Config: map[string]any{"AcceptedTransferSyntaxes": []string{"1.2.840.10008.1.2"}}})
	web := orthanc.Start(t, orthanc.Options{DICOMweb: true, Lua: `function ReceivedInstanceFilter(dicom, origin, info)
  if dicom.Modality == 'SR' then error('this PACS takes no SR') end
  return true
end`})
	srv := testenv.NATS(t)
	js := jsOf(t, srv.ClientURL())
	storeInRecord(t, js, buildObjects(t, films[0]))
	c, err := pacs.NewCStore(pacs.CStoreOptions{Name: "refusing-dimse", Address: fmt.Sprintf("127.0.0.1:%d", cst.DICOMPort), CalledAE: cst.AET, CallingAE: "TRIAGED", Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pacs.NewSTOW(pacs.STOWOptions{Name: "refusing-web", URL: web.URL + "/dicom-web", Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pacs.New(js, pacs.Options{ManageStreams: true, MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, RefusalRetries: 2, Log: testLog(t)}, c, s)
	if err != nil {
		t.Fatal(err)
	}
	runDelivery(t, d)
	testenv.Eventually(t, 60*time.Second, "both refusals dead-lettered", func() bool {
		return len(deadLetters(t, srv.ClientURL(), "refusing-dimse")) == 1 && len(deadLetters(t, srv.ClientURL(), "refusing-web")) == 1
	})
	for _, st := range d.Stats() {
		if st.Delivered != 0 || st.DeadLetters != 1 || st.Retries != 2 {
			t.Errorf("%s: delivered %d, dead letters %d, retries %d; want 0, 1, 2", st.Destination, st.Delivered, st.DeadLetters, st.Retries)
		}
	}
	for _, name := range []string{"refusing-dimse", "refusing-web"} {
		dl := deadLetters(t, srv.ClientURL(), name)[0]
		t.Logf("%s dead letter: %s", name, dl.Error)
		if dl.Error == "" || len(dl.Message) == 0 || dl.MessageID == "" {
			t.Errorf("%s: dead letter without reason or message: %+v", name, dl)
		}
	}
	if n, _ := cst.CountInstances(); n != 0 {
		t.Errorf("the refusing C-STORE PACS holds %d instances", n)
	}
	// Orthanc's DICOMweb plugin drops the whole request when its filter
	// fails on one instance; whatever it kept, the film is dead-lettered
	// as a whole, since its SR is missing.
	if n, _ := web.CountInstances(); n > 1 {
		t.Errorf("the STOW-RS PACS holds %d instances, at most the SC expected", n)
	}
}
