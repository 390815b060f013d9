package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/triaged/triaged/daemon"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	cfgPath := fs.String("config", "", "config file (default $TRIAGED_CONFIG, else embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	log := newLogger(stderr, cfg.Log.Level)
	log.Info().Str("version", version).Str("config", describeConfig(*cfgPath)).Msg("starting")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.New(cfg, log, version)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 1
	}
	runErr := d.Run(ctx)
	if err := d.Close(); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	if runErr != nil {
		log.Error().Err(runErr).Msg("stopped with an error")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

func describeConfig(p string) string {
	if p == "" {
		p = os.Getenv("TRIAGED_CONFIG")
	}
	if p == "" {
		return "embedded defaults"
	}
	return p
}
