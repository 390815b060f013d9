package main

import (
	"fmt"
	"io"

	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/triage"
)

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", stdout, stderr)
	cfgPath := fs.configFlag("daemon settings")
	print := fs.Bool("print", false, "print the effective configuration (defaults filled in)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	if fs.NArg() == 1 && *cfgPath == "" {
		*cfgPath = fs.Arg(0)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	// Model manifests are part of a config being usable.
	var ps config.Problems
	for i, m := range cfg.Models {
		if _, err := triage.LoadManifest(cfg.Resolve(m.Path)); err != nil {
			ps = append(ps, config.Problem{Path: fmt.Sprintf("models[%d].path", i), Value: m.Path, Msg: err.Error()})
		}
	}
	for i, m := range cfg.Shadow.Models {
		if _, err := triage.LoadManifest(cfg.Resolve(m.Path)); err != nil {
			ps = append(ps, config.Problem{Path: fmt.Sprintf("shadow.models[%d].path", i), Value: m.Path, Msg: err.Error()})
		}
	}
	if len(ps) > 0 {
		reportConfigError(stderr, ps)
		return 1
	}
	if *print {
		b, err := config.Marshal(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			return 1
		}
		stdout.Write(b)
	}
	fmt.Fprintf(stdout, "configuration OK (%s)\n", describeConfig(*cfgPath))
	return 0
}
