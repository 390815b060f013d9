package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
)

// loadConfig reads -config, else $TRIAGED_CONFIG, else the embedded defaults.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv("TRIAGED_CONFIG")
	}
	if path == "" {
		c := config.Default()
		if ps := c.Validate(); len(ps) > 0 {
			return nil, ps
		}
		return c, nil
	}
	return config.Load(path)
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "triaged").Logger()
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("triaged "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// reportConfigError prints a config error, one problem per line.
func reportConfigError(w io.Writer, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		fmt.Fprintf(w, "triaged: %d configuration problem(s):\n", len(ps))
		for _, p := range ps {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintf(w, "triaged: %v\n", err)
}
