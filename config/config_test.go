package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	if ps := Default().Validate(); len(ps) > 0 {
		t.Fatalf("defaults invalid: %v", ps)
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	c, err := Parse([]byte("# nothing\n"), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ingest.Settle != time.Second || c.Models[0].Path != "models/squeezenet1_1" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if got := c.Resolve("var/incoming"); got != "/etc/triaged/var/incoming" {
		t.Fatalf("relative paths resolve against the config directory: got %s", got)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse([]byte(`
log: {level: debug}
nats:
  url: nats://a:4222,nats://b:4222
  result_stream: {name: R, replicas: 3, duplicate_window: 48h, max_age: 720h}
ingest:
  folders: [{path: /data/in}, {path: /data/in2, done_dir: /data/done2}]
  settle: 250ms
  max_file_size: 64MiB
models: [{path: /m/a}, {path: /m/b}]
triage: {urgent_threshold: 0.2, critical_threshold: 0.9}
`), "/")
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.ResultStream.Replicas != 3 || c.NATS.ResultStream.DuplicateWindow != 48*time.Hour {
		t.Errorf("stream: %+v", c.NATS.ResultStream)
	}
	if c.Ingest.Settle != 250*time.Millisecond || c.Ingest.MaxFileSize != 64<<20 || len(c.Ingest.Folders) != 2 {
		t.Errorf("ingest: %+v", c.Ingest)
	}
	if c.NATS.AlertStream.Name != "TRIAGED_ALERTS" {
		t.Errorf("unset fields keep their defaults: %+v", c.NATS.AlertStream)
	}
}

// Every problem is reported at once, each with its path.
func TestProblemsHavePaths(t *testing.T) {
	_, err := Parse([]byte(`
log: {levle: debug}
nats:
  result_stream: {replicas: 9}
ingest:
  folders: [{path: /x, dne_dir: /y}]
  settle: soon
  max_file_size: lots
pipeline: {workers: -1}
models: []
triage: {urgent_threshold: 2}
onnxruntime: {device: tpu}
`), "/")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		`log.levle: unknown key (did you mean "level"?)`,
		"nats.result_stream.replicas: must be between 1 and 5 (value 9)",
		"ingest.folders[0].dne_dir: unknown key",
		"ingest.settle: ",
		"ingest.max_file_size: ",
		"pipeline.workers: must be between 0 (auto) and 256 (value -1)",
		"models: needs at least one model",
		"triage.urgent_threshold: must be a probability",
		"onnxruntime.device: must be cpu, cuda or auto (value tpu)",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1024": 1024, "1KiB": 1024, "512MiB": 512 << 20, "1GB": 1e9, "1.5GiB": 3 << 29} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("12 parsecs"); err == nil {
		t.Error("nonsense size accepted")
	}
	if s := ByteSize(512 << 20).String(); s != "512MiB" {
		t.Errorf("String() = %s", s)
	}
}
