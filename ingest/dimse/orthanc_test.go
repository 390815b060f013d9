package dimse

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// TestOrthancPushesByCStore: Orthanc, configured with triaged as a DICOM
// modality, pushes films to the SCP through its REST API; every one is
// stored and Orthanc is told so.
func TestOrthancPushesByCStore(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs Orthanc")
	}
	s := startSCP(t, nil)
	films := []string{
		testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"),
		testenv.DICOM(t, "original/RG1_J2KI.dcm"),
		testenv.DICOM(t, "original/pydicom_tiny_CR_6154.dcm"),
	}
	scpPort, _ := strconv.Atoi(s.port)
	base := orthanc.Start(t, orthanc.Options{DICOM: true, Config: map[string]any{
		"DicomModalities": map[string]any{"triaged": []any{"TRIAGED", "127.0.0.1", scpPort}},
	}}).URL
	post := func(path string, body []byte) []byte {
		t.Helper()
		r, err := http.Post(base+path, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		out, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("POST %s: %s\n%s", path, r.Status, out)
		}
		return out
	}
	post("/modalities/triaged/echo", []byte("{}"))
	var ids []string
	for _, f := range films {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ ID string }
		json.Unmarshal(post("/instances", data), &res)
		ids = append(ids, res.ID)
	}
	req, _ := json.Marshal(map[string]any{"Resources": ids, "Synchronous": true})
	out := post("/modalities/triaged/store", req)
	var res struct {
		FailedInstancesCount int
		InstancesCount       int
	}
	json.Unmarshal(out, &res)
	if res.InstancesCount != len(films) || res.FailedInstancesCount != 0 {
		t.Errorf("Orthanc reports %s", out)
	}
	stored := s.stored(t)
	if len(stored) != len(films) {
		t.Fatalf("%d films stored, want %d", len(stored), len(films))
	}
	for _, p := range stored {
		header(t, p)
	}
	// Orthanc may open more than one association for a store job; every
	// one must end in a release.
	if st := s.srv.Stats(); len(st.Associations) != 1 || st.Associations["released"] < 2 {
		t.Errorf("associations %v, want only releases (echo, store)", st.Associations)
	}
}
