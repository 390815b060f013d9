package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
)

// The default configuration the package installs passes check-config
// (rendered with the repository's models standing in for /usr/share).
func TestPackagedConfigIsValid(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join(testenv.Root(), "packaging", "triaged.yaml.in"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	y := strings.NewReplacer("@DATADIR@", testenv.Root(), "@STATEDIR@", dir, "@CONFDIR@", dir, "@DOCDIR@", dir).Replace(string(tmpl))
	p := filepath.Join(dir, "triaged.yaml")
	os.WriteFile(p, []byte(y), 0o644)
	if code, out, errs := run("check-config", "-config", p); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// The level gate drops lines below the level in force, which a reload
// changes.
func TestLevelGate(t *testing.T) {
	var b bytes.Buffer
	g := newLevelGate(&b, "warn")
	log := newLogger(g, "trace")
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	g.set("debug")
	log.Debug().Msg("now shown")
	if s := b.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "shown") || !strings.Contains(s, "now shown") {
		t.Fatalf("log:\n%s", s)
	}
}
