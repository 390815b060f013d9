package dicomweb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// startOrthanc runs Orthanc on loopback with a temporary database and
// triaged configured as the DICOMweb server "triaged"; it returns its REST
// root and stops it at the end of the test.
func startOrthanc(t *testing.T, stowRoot, token string) string {
	t.Helper()
	return orthanc.Start(t, orthanc.Options{DICOMweb: true, Config: map[string]any{
		"DicomWeb": map[string]any{
			"Enable": true,
			"Servers": map[string]any{
				"triaged": map[string]any{
					"Url":         stowRoot + "/",
					"HttpHeaders": map[string]string{"Authorization": "Bearer " + token},
				},
			},
		},
	}}).URL
}

func orthancPost(t *testing.T, url string, body []byte, ctype string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("POST %s: %v: %s", url, err, raw)
	}
	return m
}

// Orthanc, configured with triaged as a DICOMweb server and a bearer token,
// pushes a study over STOW-RS: the films land in the drop folder byte for
// byte, and a wrong token makes Orthanc's push fail.
func TestOrthancPushesOverSTOW(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: starts Orthanc")
	}
	films := []string{testenv.DICOM(t, "original/nih_cxr_dx_implicit.dcm"), testenv.DICOM(t, "derived/RG1_chest_CR_mono1_jpegLS_lossless.dcm")}
	const token = "orthanc-push-token-0123456789"
	ts := serve(t, Options{TokenFile: writeTokens(t, "orthanc "+token)}, spool.Options{MinFreeBytes: 1})
	root := startOrthanc(t, ts.url, token)

	want := map[[32]byte]bool{}
	var studies []string
	for _, f := range films {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want[sha256.Sum256(b)] = true
		m := orthancPost(t, root+"/instances", b, "application/dicom")
		studies = append(studies, m["ParentStudy"].(string))
	}
	req, _ := json.Marshal(map[string]any{"Resources": studies, "Synchronous": true})
	orthancPost(t, root+"/dicom-web/servers/triaged/stow", req, "application/json")

	got := spooled(t, ts.dir)
	if len(got) != len(films) {
		t.Fatalf("%d films in the drop folder after Orthanc's push, want %d", len(got), len(films))
	}
	for _, p := range got {
		b, _ := os.ReadFile(p)
		if !want[sha256.Sum256(b)] {
			t.Errorf("%s differs from every film uploaded to Orthanc", filepath.Base(p))
		}
		if kind, sender := spool.Origin(filepath.Base(p)); kind != "dicomweb" || sender != "orthanc" {
			t.Errorf("%s: sender is not the token's label", filepath.Base(p))
		}
	}
	if st := ts.srv.Stats(); st.Stored != uint64(len(films)) {
		t.Errorf("stats: %+v", st)
	}
	t.Logf("log: %s", ts.logs.String())

	// The same push with a token triaged does not know fails in Orthanc.
	ts2 := serve(t, Options{TokenFile: writeTokens(t, "someone-else-token-0123456789")}, spool.Options{MinFreeBytes: 1})
	root2 := startOrthanc(t, ts2.url, token)
	b, _ := os.ReadFile(films[0])
	m := orthancPost(t, root2+"/instances", b, "application/dicom")
	req, _ = json.Marshal(map[string]any{"Resources": []string{m["ID"].(string)}, "Synchronous": true})
	hr, _ := http.NewRequest(http.MethodPost, root2+"/dicom-web/servers/triaged/stow", bytes.NewReader(req))
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("Orthanc's push with a wrong token succeeded: %s", raw)
	}
	if n := len(spooled(t, ts2.dir)); n != 0 || ts2.srv.Stats().Requests[401] == 0 {
		t.Errorf("wrong token: %d stored, stats %+v", n, ts2.srv.Stats())
	}
	if strings.Contains(ts.logs.String()+ts2.logs.String(), token) {
		t.Error("the token appears in the log")
	}
}
