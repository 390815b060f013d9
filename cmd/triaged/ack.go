package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/publish"
)

// cmdAck publishes a publish.Ack. The alert is named by its message ID
// (<SOP Instance UID>:<model set>:<priority>, as `triaged alerts` prints
// it) or by the triage ID the on-call saw in a page, which is looked up in
// the active-alerts bucket, else among the stored alerts with the triage
// key.
func cmdAck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ack", stdout, stderr)
	cfgPath := fs.configFlag("NATS address, subject prefix, deliver section")
	server := fs.String("server", "", "NATS URL (default from the config)")
	by := fs.String("by", "", "who acknowledges (a user name; required)")
	note := fs.String("note", "", "optional note stored with the acknowledgement")
	// The ID may come before the flags, as the usage line shows it.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" || *by == "" || fs.NArg() > 1 {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	nc, js, err := dialJetStream(cfg, *server, "triaged ack")
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	alertID, err := resolveAlertID(ctx, cfg, js, id)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	p, err := publish.New(nc, publish.Options{Prefix: cfg.NATS.SubjectPrefix, Timeout: cfg.NATS.PublishTimeout})
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	a := &publish.Ack{AlertID: alertID, By: *by, Via: "cli", Note: *note}
	pub, err := p.PublishAck(ctx, a)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: store the acknowledgement: %v\n", err)
		return 1
	}
	out := map[string]any{"alert_id": alertID, "by": a.By, "at": a.At, "stream_seq": pub.Sequence, "duplicate": pub.Duplicate}
	if key := triageKey(cfg); key != nil {
		out["triage_id"] = deliver.TriageID(key, alertID)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(stdout, "%s\n", b)
	if pub.Duplicate {
		fmt.Fprintf(stderr, "triaged: this alert was already acknowledged (the first acknowledgement stands)\n")
	}
	return 0
}

func triageKey(cfg *config.Config) []byte {
	if cfg.Deliver.TriageKeyFile == "" {
		return nil
	}
	k, err := deliver.ReadSecret(cfg.Resolve(cfg.Deliver.TriageKeyFile))
	if err != nil {
		return nil
	}
	return k
}

// resolveAlertID turns what the operator typed into an alert ID.
func resolveAlertID(ctx context.Context, cfg *config.Config, js jetstream.JetStream, id string) (string, error) {
	if strings.Contains(id, ":") {
		if _, _, ok := deliver.SplitAlertID(id); !ok {
			return "", errors.New("not an alert ID (<SOP Instance UID>:<model set>:<priority>) nor a triage ID")
		}
		return id, nil
	}
	if !deliver.LooksLikeTriageID(id) {
		return "", errors.New("not an alert ID (<SOP Instance UID>:<model set>:<priority>) nor a triage ID (32 hex digits)")
	}
	bucket := cfg.Deliver.ActiveBucket
	if bucket == "" {
		bucket = deliver.DefaultActiveBucket
	}
	if act, err := deliver.OpenActive(ctx, js, bucket); err == nil {
		if a, err := act.Get(ctx, id); err == nil {
			return a.AlertID, nil
		}
	}
	// Not active (already resolved, or no delivery running): search the
	// stored alerts, which needs the key.
	key := triageKey(cfg)
	if key == nil {
		return "", fmt.Errorf("triage ID %s is not among the active alerts, and without deliver.triage_key_file the stored alerts cannot be searched", id)
	}
	prefix := cfg.NATS.SubjectPrefix + "." + publish.SubjectAlert + "."
	cons, err := js.OrderedConsumer(ctx, cfg.NATS.AlertStream.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + "critical", prefix + "urgent"}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return "", fmt.Errorf("read stream %s: %w", cfg.NATS.AlertStream.Name, err)
	}
	for {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			return "", fmt.Errorf("triage ID %s matches no stored alert", id)
		}
		var r struct {
			MessageID string `json:"message_id"`
		}
		if json.Unmarshal(m.Data(), &r) == nil && r.MessageID != "" && deliver.TriageID(key, r.MessageID) == id {
			return r.MessageID, nil
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			return "", fmt.Errorf("triage ID %s matches no stored alert", id)
		}
	}
}
