package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNATSIngestAndSecurityParse(t *testing.T) {
	c, err := Parse([]byte(`
nats:
  url: tls://nats-1:4222,tls://nats-2:4222
  tls: {ca_file: pki/ca.pem, cert_file: pki/triaged.pem, key_file: pki/triaged-key.pem}
  credentials_file: /etc/triaged/triaged.creds
ingest:
  folders: []
  nats:
    enabled: true
    subject: hospital.films.>
    stream: {replicas: 3}
    backoff: [2s, 1m]
    max_ack_pending: 300
`), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	in := c.Ingest.NATS
	if !in.Enabled || in.Subject != "hospital.films.>" || in.Stream.Replicas != 3 || in.Stream.Name != "TRIAGED_INGEST" ||
		len(in.Backoff) != 2 || in.Backoff[1] != time.Minute || in.MaxAckPending != 300 || in.AckWait != 30*time.Second {
		t.Errorf("ingest.nats: %+v", in)
	}
	if c.Resolve(c.NATS.TLS.CAFile) != "/etc/triaged/pki/ca.pem" {
		t.Errorf("tls paths resolve against the config directory: %s", c.Resolve(c.NATS.TLS.CAFile))
	}
}

func TestNATSIngestAndSecurityProblems(t *testing.T) {
	_, err := Parse([]byte(`
nats:
  tls: {cert_file: a.pem}
  token_file: t
  user: me
ingest:
  folders: []
  nats:
    subject: triaged.>
    stream: {name: TRIAGED_RESULTS, duplicate_window: 0s}
    durable: "a.b"
    ack_wait: 10ms
    max_deliver: 0
    backoff: []
    dead_letter_subject: "dl.*"
    object_bucket: "bad bucket"
    max_ack_pending: -1
    retry: yes
`), "/")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		"ingest.folders: needs at least one drop folder (or ingest.nats.enabled)",
		"ingest.nats.retry: unknown key",
		"ingest.nats.subject: overlaps the daemon's output subject triaged.result",
		"ingest.nats.stream.name: must differ",
		"ingest.nats.stream.duplicate_window: must be positive",
		"ingest.nats.durable: must be a consumer name",
		"ingest.nats.ack_wait: must be at least 1s",
		"ingest.nats.max_deliver: must be between 1 and 1000",
		"ingest.nats.backoff: needs at least one delay",
		"ingest.nats.dead_letter_subject: must be a NATS subject without wildcards",
		"ingest.nats.object_bucket: must be a bucket name",
		"ingest.nats.max_ack_pending: must not be negative",
		"nats.password_file: is required with nats.user",
		"nats: set at most one of credentials_file",
		"nats.tls: set both cert_file and key_file",
		"nats.url: is required with TLS or credentials",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing problem %q in:\n%s", w, got)
		}
	}
}

func TestSubjectsOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {"a.*", "a.b", true}, {"a.>", "a.b.c", true},
		{"a.>", "a", false}, {"a.*", "a.b.c", false}, {"*.b", "a.*", true}, {"triaged.ingest", "triaged.alert.>", false},
	} {
		if got := subjectsOverlap(c.a, c.b); got != c.want {
			t.Errorf("overlap(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
