package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRequeueCommand(t *testing.T) {
	dir := t.TempDir()
	drop := filepath.Join(dir, "incoming")
	failed := filepath.Join(drop, "failed")
	os.MkdirAll(failed, 0o750)
	for _, f := range []struct{ name, id, code string }{{"a.dcm", "00112233445566a0", "codec_error"}, {"b.dcm", "00112233445566b0", "not_dicom"}} {
		os.WriteFile(filepath.Join(failed, f.name), []byte(f.name), 0o640)
		os.WriteFile(filepath.Join(failed, f.name+".reason.json"),
			[]byte(`{"film_id":"`+f.id+`","file":"`+f.name+`","code":"`+f.code+`","reason":"r"}`), 0o640)
	}
	cfg := filepath.Join(dir, "triaged.yaml")
	os.WriteFile(cfg, []byte("ingest: {folders: [{path: incoming}]}\n"), 0o644)

	if code, _, _ := run("requeue", "-config", cfg); code != 2 {
		t.Fatalf("no selection: exit %d", code)
	}
	code, out, errs := run("requeue", "-config", cfg, "-code", "codec_error", "-dry-run")
	if code != 0 || !strings.Contains(out, "would requeue film 00112233445566a0 (codec_error)") || strings.Contains(out, "a.dcm") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(drop, "a.dcm")); err == nil {
		t.Fatal("dry run moved a film")
	}
	code, out, errs = run("requeue", "-config", cfg, "-v", "b.dcm")
	if code != 0 || !strings.Contains(out, "requeued film 00112233445566b0 (not_dicom)") || !strings.Contains(out, "b.dcm -> b.dcm") || !strings.Contains(out, "1 film(s) requeued") {
		t.Fatalf("by name: %d\n%s%s", code, out, errs)
	}
	if b, err := os.ReadFile(filepath.Join(drop, "b.dcm")); err != nil || string(b) != "b.dcm" {
		t.Fatalf("b.dcm not back in the drop folder: %v", err)
	}
}
