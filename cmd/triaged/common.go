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
		c := config.RunDefaults()
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

// flags is a command's flag set with the shared behaviour: -h prints the
// usage from the command table on stdout and exits 0; a bad flag prints the
// error and the usage on stderr and exits 2.
type flags struct {
	*flag.FlagSet
	cmd            command
	stdout, stderr io.Writer
}

func newFlags(name string, stdout, stderr io.Writer) *flags {
	c, _ := lookup(name)
	c.name = name
	f := &flags{FlagSet: flag.NewFlagSet("triaged "+name, flag.ContinueOnError), cmd: c, stdout: stdout, stderr: stderr}
	f.SetOutput(stderr)
	f.Usage = func() {}
	return f
}

// parse parses args; on false the command returns the code.
func (f *flags) parse(args []string) (int, bool) {
	err := f.Parse(args)
	if err == nil {
		return 0, true
	}
	if errors.Is(err, flag.ErrHelp) {
		f.printUsage(f.stdout)
		return 0, false
	}
	f.printUsage(f.stderr)
	return 2, false
}

// usageError prints the usage on stderr; the command returns 2.
func (f *flags) usageError() int {
	f.printUsage(f.stderr)
	return 2
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: triaged %s %s\n\n%s\n", f.cmd.name, f.cmd.synopsis, f.cmd.summary)
	if f.cmd.about != "" {
		fmt.Fprintf(w, "\n%s\n", f.cmd.about)
	}
	fmt.Fprintln(w, "\nflags:")
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(f.stderr)
}

// configFlag is -config, the same on every command.
func (f *flags) configFlag(what string) *string {
	return f.String("config", "", "config file ("+what+"; default $TRIAGED_CONFIG, else the embedded defaults)")
}

// outFlag is -o; old spellings still parse.
func (f *flags) outFlag(def, usage string, old ...string) *string {
	p := f.String("o", def, usage)
	for _, o := range old {
		f.Var(f.Lookup("o").Value, o, "deprecated: use -o")
	}
	return p
}

// verboseFlag is -v; old spellings still parse.
func (f *flags) verboseFlag(usage string, old ...string) *bool {
	p := f.Bool("v", false, usage)
	for _, o := range old {
		f.Var(f.Lookup("v").Value, o, "deprecated: use -v")
	}
	return p
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
