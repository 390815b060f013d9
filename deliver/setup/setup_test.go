package setup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/deliver/internal/delivertest"
	"github.com/triaged/triaged/deliver/setup"
	"github.com/triaged/triaged/deliver/webhook"
	"github.com/triaged/triaged/internal/testkit/testenv"
)

// From the YAML to a delivered, signed request with a header read from a
// file: the whole wiring the daemon uses.
func TestEngineFromConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: runs an embedded JetStream server and a delivery (over a second)")
	}
	env := delivertest.Start(t)
	rc := delivertest.NewReceiver(t)
	dir := t.TempDir()
	for name, v := range map[string]string{"triage.key": string(delivertest.Key) + "\n", "hook.key": "s1gn\n", "api.key": "abc123\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
deliver:
  triage_key_file: triage.key
  worklist_url: https://worklist.example/films/{{.TriageID}}
  destinations:
    - name: ris
      type: webhook
      url: %s/hook
      signing_key_file: hook.key
      headers: [{name: X-Api-Key, value_file: api.key}]
`, rc.URL)), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.AlertStream.Name = "TRIAGED_ALERTS"
	e, err := setup.Engine(cfg, env.JS, setup.Hooks{Acks: env.Pub, Log: zerolog.Nop()})
	if err != nil || e == nil {
		t.Fatalf("engine %v %v", e, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	id := env.Alert(t, 1, "urgent", 0.7)
	testenv.Eventually(t, 10*time.Second, "delivery", func() bool { return len(rc.Accepted()) == 1 })
	r := rc.Accepted()[0]
	if r.Header.Get("X-Api-Key") != "abc123" || r.Header.Get("Idempotency-Key") != id ||
		r.Header.Get("Triaged-Triage-Id") != deliver.TriageID(delivertest.Key, id) {
		t.Errorf("headers %v", r.Header)
	}
	if err := webhook.Verify(r.Header.Get(webhook.SignatureHeader), r.Body, []byte("s1gn"), time.Now(), time.Minute); err != nil {
		t.Error(err)
	}

	// No destinations: no engine.
	if e, err := setup.Engine(config.Default(), env.JS, setup.Hooks{Acks: env.Pub}); e != nil || err != nil {
		t.Errorf("without destinations: %v %v", e, err)
	}
}
