package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/daemon"
	"github.com/triaged/triaged/internal/dicomtest"
	"github.com/triaged/triaged/internal/testkit/natstest"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
)

// natsYAML is a config taking films from NATS at url; extra is appended
// under nats:.
func natsYAML(t *testing.T, dir, url, extraNATS string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
log: {level: warn}
nats:
  url: %q
%s
ingest:
  folders: []
  nats: {enabled: true, ack_wait: 5s, spool_dir: %s}
pipeline: {workers: 2, drain_timeout: 20s}
models: [{path: %s}]
`, url, extraNATS, dir, testenv.Model(t, "squeezenet1_1"))
	p := filepath.Join(dir, "triaged.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inProcess runs a daemon from a config file until the test ends.
func inProcess(t *testing.T, cfgPath string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); d.Close(); close(done) }()
	<-d.Ready
	t.Cleanup(func() { cancel(); <-done })
}

func submitLines(t *testing.T, out string) []submitted {
	t.Helper()
	var rs []submitted
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r submitted
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("submit output line %q: %v", l, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func resultsByUID(t *testing.T, url string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range testenv.Stored[publish.Result](t, url, "TRIAGED_RESULTS", "triaged.result") {
		n[r.Film.SOPInstanceUID]++
	}
	return n
}

// A 15 MB film goes through a server with the default 1 MB max payload (via
// the object store), a small one inline; both are scored; submitting them
// again is a no-op; a missing file makes the exit status non-zero.
func TestSubmit15MBFilmThroughDefaultMaxPayload(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	srv := testenv.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if mp := nc.MaxPayload(); mp > 1<<20 {
		t.Fatalf("server max payload %d, want the 1 MB default", mp)
	}
	nc.Close()
	dir := t.TempDir()
	cfgPath := natsYAML(t, dir, srv.ClientURL(), "")
	inProcess(t, cfgPath)

	big := filepath.Join(dir, "films", "big.dcm")
	small := filepath.Join(dir, "films", "small.dcm")
	os.MkdirAll(filepath.Dir(big), 0o755)
	const bigUID, smallUID = "1.2.826.0.1.3680043.10.1234.88.1", "1.2.826.0.1.3680043.10.1234.88.2"
	os.WriteFile(big, dicomtest.Film(bigUID, 2740, 2740, ""), 0o644)
	os.WriteFile(small, dicomtest.Film(smallUID, 128, 128, ""), 0o644)
	if st, _ := os.Stat(big); st.Size() < 15_000_000 {
		t.Fatalf("the big film is only %d bytes", st.Size())
	}

	code, out, errs := run("submit", "-config", cfgPath, "-priority", "stat", "-source", "test", filepath.Dir(big))
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s%s", code, out, errs)
	}
	rs := submitLines(t, out)
	if len(rs) != 2 || rs[0].Mode != "object" || rs[1].Mode != "inline" || rs[0].Duplicate || rs[0].Sequence == 0 {
		t.Fatalf("submit output: %+v", rs)
	}
	testenv.Eventually(t, 180*time.Second, "both films scored", func() bool {
		n := resultsByUID(t, srv.ClientURL())
		return n[bigUID] == 1 && n[smallUID] == 1
	})

	code, out, _ = run("submit", "-config", cfgPath, big, small)
	if rs := submitLines(t, out); code != 0 || !rs[0].Duplicate || !rs[1].Duplicate {
		t.Fatalf("a re-submit must be deduplicated: exit %d, %+v", code, rs)
	}
	code, out, errs = run("submit", "-config", cfgPath, small, filepath.Join(dir, "no-such.dcm"))
	if code == 0 || !strings.Contains(errs, "no-such.dcm") {
		t.Fatalf("missing file: exit %d\n%s%s", code, out, errs)
	}
}

// The whole secured path from a config file: mutual TLS and user/password,
// read from files, for the daemon, `submit` and `alerts`; the wrong
// password is refused with a clear error by each; `check-config -print`
// shows file paths, never the secret.
func TestSecuredNATSFromConfig(t *testing.T) {
	testenv.Slow(t)
	testenv.ORT(t)
	pki := natstest.NewPKI(t)
	const password = "correct-horse-battery-staple"
	srv := testenv.NATSWith(t, &server.Options{
		TLSConfig: pki.ServerTLS(t), TLSVerify: true, TLSTimeout: 5,
		Users: []*server.User{{Username: "triaged", Password: password}},
	})
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	secure := func(pwFile string) string {
		return fmt.Sprintf("  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n  user: triaged\n  password_file: %s",
			pki.CAFile, pki.ClientCert, pki.ClientKey, pwFile)
	}
	goodDir, badDir := t.TempDir(), t.TempDir()
	good := natsYAML(t, goodDir, url, secure(natstest.WriteSecret(t, goodDir, "pw", password)))
	bad := natsYAML(t, badDir, url, secure(natstest.WriteSecret(t, badDir, "pw", "wrong-password")))

	code, out, errs := run("check-config", "-print", "-config", good)
	if code != 0 || strings.Contains(out+errs, password) || !strings.Contains(out, "password_file:") {
		t.Fatalf("check-config -print: exit %d\n%s%s", code, out, errs)
	}

	inProcess(t, good)
	film := filepath.Join(goodDir, "a.dcm")
	const uid = "1.2.826.0.1.3680043.10.1234.89.1"
	os.WriteFile(film, dicomtest.Film(uid, 128, 128, ""), 0o644)
	if code, out, errs := run("submit", "-config", good, film); code != 0 {
		t.Fatalf("submit over TLS: exit %d\n%s%s", code, out, errs)
	}
	testenv.Eventually(t, 60*time.Second, "the film scored", func() bool {
		code, out, _ := run("alerts", "-config", good, "-results")
		return code == 0 && strings.Contains(out, uid)
	})

	for _, cmd := range [][]string{{"submit", "-config", bad, film}, {"alerts", "-config", bad, "-results"}} {
		code, out, errs := run(cmd...)
		if code == 0 || !strings.Contains(errs, "refused the credentials") || strings.Contains(out+errs, "wrong-password") {
			t.Errorf("%s with a wrong password: exit %d\n%s%s", cmd[0], code, out, errs)
		}
	}
	cfg, err := config.Load(bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.New(cfg, zerolog.Nop(), "test")
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("daemon with a wrong password: %v", err)
	}
}
