package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TLS secures the connection to an external NATS. Paths only: the key never
// appears in the config itself, so `check-config -print` cannot leak it.
type TLS struct {
	// CAFile verifies the server's certificate (empty: the system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate, for servers that
	// verify clients (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// NATSIngest takes films from a JetStream stream: the daemon pulls from one
// durable consumer that any number of daemons share.
type NATSIngest struct {
	Enabled bool `yaml:"enabled"`
	// Subject the films are published to (the stream captures it and the
	// consumer filters on it; wildcards allowed).
	Subject string `yaml:"subject"`
	// Stream holding films until a daemon has acknowledged them (work-queue
	// retention: an acknowledged film leaves the stream). Its duplicate
	// window deduplicates re-submits carrying the same Nats-Msg-Id.
	Stream  Stream `yaml:"stream"`
	Durable string `yaml:"durable"`
	// AckWait is how long the server waits for an acknowledgement before
	// redelivering; a film in flight is kept alive with InProgress every
	// AckWait/3, so this bounds how long a crashed daemon's films wait.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxDeliver bounds deliveries: a film delivered more often (it keeps
	// failing, or keeps crashing daemons) goes to the dead-letter subject.
	MaxDeliver int `yaml:"max_deliver"`
	// Backoff is the redelivery delay after a transient failure, by attempt
	// (the last value repeats).
	Backoff []time.Duration `yaml:"backoff"`
	// MaxAckPending bounds films delivered and not yet acknowledged across
	// every daemon sharing the consumer; 0 means this daemon's own capacity
	// (pipeline.workers + pipeline.queue_capacity + admission slack).
	MaxAckPending int `yaml:"max_ack_pending"`
	// DeadLetterSubject receives a copy of every film that is given up on,
	// with its reason in headers; DeadLetterStream stores it.
	DeadLetterSubject string `yaml:"dead_letter_subject"`
	DeadLetterStream  string `yaml:"dead_letter_stream"`
	// ObjectBucket is the JetStream Object Store bucket for films larger
	// than the server's max payload; ObjectMaxAge is how long they are kept.
	ObjectBucket string        `yaml:"object_bucket"`
	ObjectMaxAge time.Duration `yaml:"object_max_age"`
	// SpoolDir holds object-store films while in flight (unlinked files,
	// gone when the daemon exits); empty means $TMPDIR.
	SpoolDir string `yaml:"spool_dir"`
}

var (
	natsNameRe   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	natsTokenBad = " \t\r\n"
)

func validSubject(s string, wildcards bool) bool {
	if s == "" || strings.ContainsAny(s, natsTokenBad) {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return false
		case t == ">":
			if !wildcards || i != len(toks)-1 {
				return false
			}
		case t == "*":
			if !wildcards {
				return false
			}
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// subjectsOverlap reports whether some subject matches both filters.
func subjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(at) || i == len(bt) {
			return len(at) == len(bt)
		}
		if at[i] == ">" || bt[i] == ">" {
			return true
		}
		if at[i] != "*" && bt[i] != "*" && at[i] != bt[i] {
			return false
		}
	}
}

// validateNATSExtras checks the NATS security settings and the NATS ingest
// section.
func (c *Config) validateNATSExtras(add func(path string, v any, msg string, args ...any)) {
	n := c.NATS
	auth := 0
	for _, f := range []string{n.CredentialsFile, n.NKeyFile, n.TokenFile} {
		if f != "" {
			auth++
		}
	}
	if n.User != "" || n.PasswordFile != "" {
		auth++
		if n.User == "" {
			add("nats.user", "", "is required with nats.password_file")
		}
		if n.PasswordFile == "" {
			add("nats.password_file", "", "is required with nats.user (a file holding the password)")
		}
	}
	if auth > 1 {
		add("nats", "", "set at most one of credentials_file, nkey_file, user + password_file, token_file")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		add("nats.tls", "", "set both cert_file and key_file, or neither")
	}
	secured := auth > 0 || n.TLS != (TLS{})
	if secured && n.URL == "" {
		add("nats.url", "", "is required with TLS or credentials (the embedded server has neither)")
	}

	in := c.Ingest.NATS
	p := "ingest.nats."
	if !validSubject(in.Subject, true) {
		add(p+"subject", in.Subject, "must be a NATS subject (wildcards * and > allowed)")
	} else if validSubject(n.SubjectPrefix, false) {
		for _, s := range []string{n.SubjectPrefix + ".result", n.SubjectPrefix + ".skipped", n.SubjectPrefix + ".error", n.SubjectPrefix + ".alert.>"} {
			if subjectsOverlap(in.Subject, s) {
				add(p+"subject", in.Subject, "overlaps the daemon's output subject %s", s)
			}
		}
	}
	s := in.Stream
	if !natsNameRe.MatchString(s.Name) {
		add(p+"stream.name", s.Name, "must be a stream name (letters, digits, - and _)")
	} else if s.Name == n.ResultStream.Name || s.Name == n.AlertStream.Name || s.Name == in.DeadLetterStream {
		add(p+"stream.name", s.Name, "must differ from the result, alert and dead-letter streams")
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		add(p+"stream.replicas", s.Replicas, "must be between 1 and 5")
	}
	if s.MaxAge < 0 {
		add(p+"stream.max_age", s.MaxAge, "must not be negative (0 keeps films until acknowledged)")
	}
	if s.DuplicateWindow <= 0 {
		add(p+"stream.duplicate_window", s.DuplicateWindow, "must be positive: it is what makes a re-submit of the same film a no-op")
	}
	if s.MaxAge > 0 && s.DuplicateWindow > s.MaxAge {
		add(p+"stream.duplicate_window", s.DuplicateWindow, "must not exceed max_age (%s)", s.MaxAge)
	}
	if s.Storage != "file" && s.Storage != "memory" {
		add(p+"stream.storage", s.Storage, "must be file or memory")
	}
	if !natsNameRe.MatchString(in.Durable) {
		add(p+"durable", in.Durable, "must be a consumer name (letters, digits, - and _)")
	}
	if in.AckWait < time.Second {
		add(p+"ack_wait", in.AckWait, "must be at least 1s")
	}
	if in.MaxDeliver < 1 || in.MaxDeliver > 1000 {
		add(p+"max_deliver", in.MaxDeliver, "must be between 1 and 1000")
	}
	if len(in.Backoff) == 0 {
		add(p+"backoff", "[]", "needs at least one delay")
	}
	for i, b := range in.Backoff {
		if b <= 0 || b > 24*time.Hour {
			add(fmt.Sprintf("%sbackoff[%d]", p, i), b, "must be between 0 and 24h")
		}
	}
	if in.MaxAckPending < 0 {
		add(p+"max_ack_pending", in.MaxAckPending, "must not be negative (0 = this daemon's capacity)")
	}
	if !validSubject(in.DeadLetterSubject, false) {
		add(p+"dead_letter_subject", in.DeadLetterSubject, "must be a NATS subject without wildcards")
	} else if validSubject(in.Subject, true) && subjectsOverlap(in.Subject, in.DeadLetterSubject) {
		add(p+"dead_letter_subject", in.DeadLetterSubject, "must not match ingest.nats.subject (%s)", in.Subject)
	}
	if !natsNameRe.MatchString(in.DeadLetterStream) {
		add(p+"dead_letter_stream", in.DeadLetterStream, "must be a stream name (letters, digits, - and _)")
	} else if in.DeadLetterStream == n.ResultStream.Name || in.DeadLetterStream == n.AlertStream.Name {
		add(p+"dead_letter_stream", in.DeadLetterStream, "must differ from the result and alert streams")
	}
	if !natsNameRe.MatchString(in.ObjectBucket) {
		add(p+"object_bucket", in.ObjectBucket, "must be a bucket name (letters, digits, - and _)")
	}
	if in.ObjectMaxAge < 0 {
		add(p+"object_max_age", in.ObjectMaxAge, "must not be negative (0 keeps objects forever)")
	}
}
