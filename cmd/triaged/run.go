package main

import (
	"io"
	"os"
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
	return serve(*cfgPath, cfg, stderr)
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
