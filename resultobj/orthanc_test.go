package resultobj

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/triaged/triaged/internal/testkit/orthanc"
)

func orthancJSON(t *testing.T, method, url string, body []byte, v any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %s\n%s", method, url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
}

// TestOrthancStoresObjects: a real PACS (Orthanc) takes the film, its SR
// and its SC into one study, three series; the same result stored again,
// or re-scored, stays one instance per object.
func TestOrthancStoresObjects(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts Orthanc (-short)")
	}
	// The DICOMweb plugin (Debian package orthanc-dicomweb), for STOW-RS,
	// when it is installed.
	_, noPlugin := os.Stat(orthanc.DICOMwebPlugin)
	url := orthanc.Start(t, orthanc.Options{DICOMweb: noPlugin == nil}).URL
	src, p := readSource(t, "original/nih_cxr_dx_implicit.dcm")
	objs, err := Build(src, testResult(src), overlay(t, p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	film, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	r2 := testResult(src)
	r2.Score, r2.Priority = 0.95, "critical"
	rescored, err := Build(src, r2, overlay(t, p), Options{})
	if err != nil {
		t.Fatal(err)
	}
	study := ""
	// The first SC goes by STOW-RS (DICOMweb), the rest by the REST API.
	if noPlugin == nil {
		stow(t, url+"/dicom-web/studies", objs.List()[1])
	} else {
		t.Logf("no STOW-RS check: %s not found (Debian package orthanc-dicomweb)", orthanc.DICOMwebPlugin)
	}
	for i, b := range [][]byte{film, objs.SR, objs.SC, objs.SR, rescored.SR, rescored.SC} {
		var st struct{ Status, ParentStudy string }
		orthancJSON(t, "POST", url+"/instances", b, &st)
		if st.Status != "Success" && st.Status != "AlreadyStored" {
			t.Fatalf("upload %d: status %q", i, st.Status)
		}
		if study == "" {
			study = st.ParentStudy
		} else if st.ParentStudy != study {
			t.Errorf("upload %d went to another study", i)
		}
	}
	var studies []string
	orthancJSON(t, "GET", url+"/studies", nil, &studies)
	if len(studies) != 1 {
		t.Fatalf("%d studies, want 1", len(studies))
	}
	var series []struct {
		MainDicomTags map[string]string
		Instances     []string
	}
	orthancJSON(t, "GET", url+"/studies/"+study+"/series", nil, &series)
	got := map[string]int{}
	for _, s := range series {
		got[s.MainDicomTags["Modality"]] += len(s.Instances)
	}
	if len(series) != 3 || got["SR"] != 1 || got["OT"] != 1 || got["DX"] != 1 {
		t.Errorf("series %d, instances by modality %v: want DX, SR, OT with one instance each", len(series), got)
	}
	// The re-scored SR replaced the first (OverwriteInstances).
	var found []struct{ ID string }
	orthancJSON(t, "POST", url+"/tools/lookup", []byte(objs.UIDs.SRInstance), &found)
	if len(found) != 1 {
		t.Fatalf("SR lookup: %v", found)
	}
	resp, err := http.Get(url + "/instances/" + found[0].ID + "/file")
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(stored, rescored.SR) {
		t.Error("the stored SR is not the re-scored one")
	}
	var stats struct{ CountInstances int }
	orthancJSON(t, "GET", url+"/statistics", nil, &stats)
	if stats.CountInstances != 3 {
		t.Errorf("%d instances stored, want 3", stats.CountInstances)
	}
}

// stow stores one object by STOW-RS and fails unless the response lists
// it as stored and nothing as failed.
func stow(t *testing.T, url string, o Object) {
	t.Helper()
	const boundary = "triaged-test-boundary"
	var body bytes.Buffer
	fmt.Fprintf(&body, "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary)
	body.Write(o.File)
	fmt.Fprintf(&body, "\r\n--%s--\r\n", boundary)
	req, _ := http.NewRequest("POST", url, &body)
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+boundary)
	req.Header.Set("Accept", "application/dicom+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("STOW-RS: %s\n%s", resp.Status, b)
	}
	var r map[string]struct{ Value []any }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("STOW-RS response: %v\n%s", err, b)
	}
	if failed := r["00081198"].Value; len(failed) > 0 { // Failed SOP Sequence
		t.Fatalf("STOW-RS refused the object: %s", b)
	}
	if len(r["00081199"].Value) != 1 { // Referenced SOP Sequence: what was stored
		t.Fatalf("STOW-RS stored %d objects, want 1: %s", len(r["00081199"].Value), b)
	}
}
