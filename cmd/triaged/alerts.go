package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/provision"
	"github.com/triaged/triaged/publish"
)

// natsURL is where an operator tool connects: the configured URL, or the
// embedded server's listen address.
func natsURL(cfg *config.Config, override string) string {
	if override != "" {
		return override
	}
	if cfg.NATS.URL != "" {
		return cfg.NATS.URL
	}
	return "nats://" + cfg.NATS.Embedded.Listen
}

// dialJetStream connects an operator tool to the daemon's NATS with the
// configured security.
func dialJetStream(cfg *config.Config, server, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := bus.Dial(natsURL(cfg, server), name, provision.NATSSecurity(cfg), opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func cmdAlerts(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("alerts", stdout, stderr)
	cfgPath := fs.configFlag("NATS address, subject prefix, stream names")
	server := fs.String("server", "", "NATS URL (default from the config)")
	follow := fs.Bool("follow", false, "keep printing new alerts as they arrive")
	all := fs.Bool("all", false, "start from the oldest stored alert (default: with -follow only new ones, else all)")
	results := fs.Bool("results", false, "print every result instead of alerts only")
	save := fs.String("save", "", "also fetch each message's heatmap attachments into this directory")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	nc, js, err := dialJetStream(cfg, *server, "triaged alerts", nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	defer nc.Close()
	if *save != "" {
		if err := os.MkdirAll(*save, 0o750); err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	stream, subject := cfg.NATS.AlertStream.Name, cfg.NATS.SubjectPrefix+"."+publish.SubjectAlert+".>"
	if *results {
		stream, subject = cfg.NATS.ResultStream.Name, cfg.NATS.SubjectPrefix+"."+publish.SubjectResult
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if *follow && !*all {
		occ.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, occ)
	if err != nil {
		fmt.Fprintf(stderr, "triaged: consume %s: %v\n", stream, err)
		return 1
	}
	for {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			if !*follow {
				return 0 // caught up
			}
			continue
		}
		if err := printAlert(stdout, msg.Data()); err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			continue
		}
		if *save != "" {
			var seq uint64
			if md, err := msg.Metadata(); err == nil {
				seq = md.Sequence.Stream
			}
			saveAttachments(ctx, js, *save, seq, msg.Data(), stderr)
		}
	}
}

func printAlert(w io.Writer, data []byte) error {
	var v json.RawMessage = data
	if !json.Valid(v) {
		return fmt.Errorf("message is not JSON")
	}
	_, err := fmt.Fprintf(w, "%s\n", data)
	return err
}
