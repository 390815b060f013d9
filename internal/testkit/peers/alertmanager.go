// Package peers starts the real outside programs tests talk to (Debian's
// prometheus-alertmanager, ...) on loopback, and stops them when the test
// ends. A test whose program is not installed is skipped, naming the
// Debian package.
package peers

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// Alertmanager runs Debian's prometheus-alertmanager on loopback, notifying
// the webhook URL hook (resolved alerts included) per triage ID and
// flushing fast, and returns its base URL once it is ready. Its log is
// printed if the test fails.
func Alertmanager(t testing.TB, hook string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Skip("skipping: prometheus-alertmanager not installed (Debian package prometheus-alertmanager)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, triage_id]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: %s
    send_resolved: true
`, hook)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logf, err := os.Create(filepath.Join(dir, "am.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "am.log"))
			t.Logf("alertmanager log:\n%s", b)
		}
	})
	base := "http://" + addr
	testenv.Eventually(t, 30*time.Second, "alertmanager ready", func() bool {
		time.Sleep(50 * time.Millisecond)
		r, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	return base
}
