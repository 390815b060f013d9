package dicomweb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// curl, an independent HTTP client, posts a 7 MB shared film over TLS with
// a bearer token (curl sends "Expect: 100-continue" for a body this size)
// and a part typed with a transfer-syntax parameter.
func TestCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping under -short: runs curl")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("skipping: curl is not installed (Debian package curl)")
	}
	film, err := os.ReadFile(testenv.DICOM(t, "derived/RG1_chest_CR_mono1_explicitLE.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	pki := natstest.NewPKI(t)
	const token = "curl-token-0123456789abcdef"
	ts := serve(t, Options{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, TokenFile: writeTokens(t, "curl "+token)}, spool.Options{MinFreeBytes: 1})
	ctype, body := multipartBody(t, part{"application/dicom; transfer-syntax=1.2.840.10008.1.2.1", film})
	bodyFile := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(tok string) (string, string) {
		out, err := exec.Command(curl, "-sS", "--cacert", pki.CAFile, "-o", "-", "-w", "\n%{http_code}",
			"-H", "Authorization: Bearer "+tok, "-H", "Content-Type: "+ctype, "-H", "Accept: application/dicom+json",
			"--data-binary", "@"+bodyFile, strings.Replace(ts.url, "127.0.0.1", "localhost", 1)+"/studies").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		return s[:max(i, 0)], s[i+1:]
	}
	resp, code := run(token)
	if code != "200" {
		t.Fatalf("curl got %s: %s", code, resp)
	}
	if r := parseResponse(t, []byte(resp)); len(r.Stored) != 1 {
		t.Fatalf("response %s", resp)
	}
	if _, code := run("not-the-token-0123456789"); code != "401" {
		t.Fatalf("curl with a wrong token got %s", code)
	}
	if n := len(spooled(t, ts.dir)); n != 1 {
		t.Fatalf("%d stored, want 1", n)
	}
}
