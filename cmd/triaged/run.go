package main

import (
	"io"
	"os"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stdout, stderr)
	cfgPath := fs.configFlag("daemon settings")
	if code, ok := fs.parse(args); !ok {
		return code
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
