package deliver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// prometheus/alerts.yml refers only to metrics that exist (the daemon's,
// from metrics/metrics.go, the delivery collector's and the PACS
// delivery collector's), and promtool
// accepts it and passes its unit tests.
func TestPrometheusRules(t *testing.T) {
	root := testenv.Root()
	rules, err := os.ReadFile(filepath.Join(root, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "metrics", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"up": true}
	for _, m := range regexp.MustCompile(`f\.\w+\(\s*"([a-z_]+)"`).FindAllSubmatch(src, -1) {
		known["triaged_"+string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`Namespace\+"(_[a-z_]+)"`).FindAllSubmatch(src, -1) {
		known["triaged"+string(m[1])] = true
	}
	for _, n := range []string{deliver.MetricDeliveries, deliver.MetricPending, deliver.MetricOldest, deliver.MetricFailing, deliver.MetricTickFailed} {
		known[n] = true
	}
	// The PACS deliveries' collector (deliver/pacs).
	known[pacs.MetricDeliveries], known[pacs.MetricFailing] = true, true
	for _, m := range regexp.MustCompile(`\btriaged_[a-z_]+`).FindAll(rules, -1) {
		n := string(m)
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, suf) && known[strings.TrimSuffix(n, suf)] {
				n = strings.TrimSuffix(n, suf)
			}
		}
		if !known[n] {
			t.Errorf("alerts.yml uses %s, which nothing exports", m)
		}
	}

	if testing.Short() {
		t.Skip("skipping promtool under -short")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("skipping: promtool not installed (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(root, "prometheus")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
