// Package orthanc starts Orthanc (Debian package orthanc) as a real PACS
// for tests: on loopback, storing under the test's temporary directory,
// with its DICOM server and the DICOMweb plugin (orthanc-dicomweb) when
// asked, and stopped when the test ends. Stop and Start again keep the
// ports and the storage: a PACS that goes away and comes back.
package orthanc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// DICOMwebPlugin is where Debian's orthanc-dicomweb installs the plugin.
const DICOMwebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

// Options shape the Orthanc started.
type Options struct {
	// DICOM turns the DICOM server on, with AE title AET (ORTHANC).
	DICOM bool
	AET   string
	// DICOMweb loads the DICOMweb plugin (STOW-RS at URL+"/dicom-web");
	// the test is skipped when the plugin is not installed.
	DICOMweb bool
	// Lua is a script Orthanc runs (e.g. a ReceivedInstanceFilter that
	// refuses some objects).
	Lua string
	// Config adds or overrides configuration options.
	Config map[string]any
}

// Server is a running (or stopped) Orthanc.
type Server struct {
	URL       string // REST API
	DICOMPort int
	AET       string
	t         testing.TB
	cfgPath   string
	logPath   string
	cancel    context.CancelFunc
	cmd       *exec.Cmd
}

// Start starts Orthanc, skipping the test (naming the Debian package)
// when it is not installed; it is stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("Orthanc"); err != nil {
		t.Skip("skipping: Orthanc not found (Debian package orthanc)")
	}
	if o.DICOMweb {
		if _, err := os.Stat(DICOMwebPlugin); err != nil {
			t.Skipf("skipping: %s not found (Debian package orthanc-dicomweb)", DICOMwebPlugin)
		}
	}
	if o.AET == "" {
		o.AET = "ORTHANC"
	}
	dir := t.TempDir()
	s := &Server{t: t, AET: o.AET, cfgPath: filepath.Join(dir, "orthanc.json"), logPath: filepath.Join(dir, "orthanc.log")}
	httpPort := testenv.FreePort(t)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	cfg := map[string]any{
		"Name": "triaged-test", "StorageDirectory": filepath.Join(dir, "db"), "IndexDirectory": filepath.Join(dir, "db"),
		"HttpPort": httpPort, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
		"DicomServerEnabled": o.DICOM, "OverwriteInstances": true, "Plugins": []string{}, "DicomAet": o.AET,
		// Any calling AE may store (the SCU's AE is checked by the test).
		"DicomCheckCalledAet": true, "DicomAlwaysAllowStore": true,
	}
	if o.DICOM {
		s.DICOMPort = testenv.FreePort(t)
		cfg["DicomPort"] = s.DICOMPort
	}
	if o.DICOMweb {
		cfg["Plugins"] = []string{DICOMwebPlugin}
	}
	if o.Lua != "" {
		lua := filepath.Join(dir, "filter.lua")
		if err := os.WriteFile(lua, []byte(o.Lua), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg["LuaScripts"] = []string{lua}
	}
	for k, v := range o.Config {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(s.cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("Orthanc log:\n%s", s.Log())
		}
	})
	return s
}

// Start (re)starts a stopped Orthanc and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "Orthanc", s.cfgPath)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		s.t.Fatal(err)
	}
	logf.Close()
	s.cmd, s.cancel = cmd, cancel
	for deadline := time.Now().Add(60 * time.Second); ; { // slow on a loaded 2-core machine
		r, err := http.Get(s.URL + "/system")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("Orthanc did not start: %v\n%s", err, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops Orthanc (SIGTERM) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cancel()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Log is what Orthanc printed so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// JSON calls the REST API and decodes a 200 answer into v.
func (s *Server) JSON(method, path string, body []byte, v any) error {
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// Series is one series of a study as Orthanc lists it.
type Series struct {
	MainDicomTags map[string]string
	Instances     []string
}

// StudySeries lists the series of the study with this Study Instance UID
// (nil while Orthanc holds none).
func (s *Server) StudySeries(studyUID string) ([]Series, error) {
	var found []struct{ ID, Type string }
	if err := s.JSON("POST", "/tools/lookup", []byte(studyUID), &found); err != nil {
		return nil, err
	}
	for _, f := range found {
		if f.Type == "Study" {
			var ss []Series
			err := s.JSON("GET", "/studies/"+f.ID+"/series", nil, &ss)
			return ss, err
		}
	}
	return nil, nil
}

// CountInstances is how many instances Orthanc holds.
func (s *Server) CountInstances() (int, error) {
	var st struct{ CountInstances int }
	err := s.JSON("GET", "/statistics", nil, &st)
	return st.CountInstances, err
}
