package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDICOMwebDefaults(t *testing.T) {
	c, err := Parse([]byte("ingest:\n  dicomweb:\n    enabled: true\n    max_instance_size: 64MiB\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := c.Ingest.DICOMweb
	want := DefaultDICOMweb()
	want.Enabled, want.MaxInstanceSize = true, 64<<20
	if d != want {
		t.Errorf("section with two keys: %+v, want the defaults under them %+v", d, want)
	}
	if ps := c.ValidateDICOMweb(); len(ps) != 0 {
		t.Errorf("defaults on loopback: %v", ps)
	}
	off, err := Parse(nil, t.TempDir())
	if err != nil || off.Ingest.DICOMweb.Enabled || len(off.ValidateDICOMweb()) != 0 {
		t.Errorf("without the section: %+v %v", off.Ingest.DICOMweb, err)
	}
	if _, err := Parse([]byte("ingest:\n  dicomweb:\n    enabeld: true\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "ingest.dicomweb.enabeld: unknown key") {
		t.Errorf("misspelt key: %v", err)
	}
	_, err = Parse([]byte("ingest:\n  dicomweb:\n    max_instance_size: lots\n    body_timeout: soon\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "ingest.dicomweb.max_instance_size: cannot parse") || !strings.Contains(err.Error(), "ingest.dicomweb.body_timeout") {
		t.Errorf("values of the wrong type: %v", err)
	}
}

func TestDICOMwebProblems(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		yaml, path, msg string
	}{
		{"listen: 0.0.0.0:8043", "ingest.dicomweb.listen", "anonymous access is allowed only on loopback"},
		{"listen: 10.1.2.3:8043\n    token_file: tokens", "ingest.dicomweb.tls.cert_file", "must not travel in clear"},
		{"listen: 127.0.0.1:9464", "ingest.dicomweb.listen", "same port as http.listen"},
		{"listen: :4222", "ingest.dicomweb.listen", "same port as nats.embedded.listen"},
		{"listen: 127.0.0.1:99999", "ingest.dicomweb.listen", "port from 1 to 65535"},
		{"listen: pacs.example:8043", "ingest.dicomweb.listen", "must be an IP address"},
		{"tls: {cert_file: missing.pem, key_file: tokens}", "ingest.dicomweb.tls.cert_file", "cannot be read"},
		{"tls: {cert_file: tokens}", "ingest.dicomweb.tls", "both cert_file and key_file"},
		{"tls: {client_ca_file: tokens}", "ingest.dicomweb.tls.client_ca_file", "only over TLS"},
		{"token_file: nowhere", "ingest.dicomweb.token_file", "cannot be read"},
		{"folder: elsewhere", "ingest.dicomweb.folder", "must be one of ingest.folders"},
		{"base_path: dicomweb", "ingest.dicomweb.base_path", "must start with /"},
		{"max_request_size: 1MiB", "ingest.dicomweb.max_request_size", "at least max_instance_size"},
		{"max_concurrent_requests: 0", "ingest.dicomweb.max_concurrent_requests", "between 1 and 1024"},
		{"body_timeout: 10ms", "ingest.dicomweb.body_timeout", "between 1s and 1h"},
	} {
		// Validate runs the section's checks, so Parse reports them.
		_, err := Parse([]byte("ingest:\n  dicomweb:\n    enabled: true\n    "+c.yaml+"\n"), dir)
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: %v", c.yaml, err)
			continue
		}
		found := false
		for _, p := range ps {
			found = found || p.Path == c.path && strings.Contains(p.Msg, c.msg)
		}
		if !found {
			t.Errorf("%q: problems %v, want %s: ...%s...", c.yaml, ps, c.path, c.msg)
		}
	}
	// Off loopback with a token over TLS, or with client certificates: fine.
	cfg, err := Parse([]byte("ingest:\n  dicomweb:\n    enabled: true\n    listen: 0.0.0.0:8043\n    token_file: tokens\n    tls: {cert_file: tokens, key_file: tokens, client_ca_file: tokens}\n    body_timeout: 5m\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.ValidateDICOMweb(); len(ps) != 0 {
		t.Errorf("a secured public listener: %v", ps)
	}
	if cfg.Ingest.DICOMweb.BodyTimeout != 5*time.Minute || cfg.Resolve(cfg.Ingest.DICOMweb.TokenFile) != filepath.Join(dir, "tokens") {
		t.Errorf("parsed %+v", cfg.Ingest.DICOMweb)
	}
}
