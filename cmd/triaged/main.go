// Command triaged is the chest X-ray triage daemon and its operator tools.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"run":          {"run the daemon (embedded defaults unless -config is given)", cmdRun},
	"score":        {"score DICOM or image files once and print one JSON result per file", cmdScore},
	"decode":       {"write what the model sees of a film: display-ready PNG (-o), stored values (-raw), crop (-crop)", cmdDecode},
	"check-config": {"validate a config file and print every problem", cmdCheckConfig},
	"version":      {"print the version", cmdVersion},
	"alerts":       {"print alerts from NATS (-follow to keep tailing)", cmdAlerts},
	"eval":         {"evaluate the models on a labeled set: metrics with CIs, per source, figures", cmdEval},
	"calibrate":    {"derive the urgent/critical thresholds from a labeled set", cmdCalibrate},
	"submit":       {"publish DICOM films to the NATS ingest subject (inline or object store)", cmdSubmit},
	"requeue":      {"move quarantined films back into their drop folder", cmdRequeue},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "triaged %s: streaming chest X-ray triage daemon\n\nUsage: triaged COMMAND [flags]\n\nCommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'triaged COMMAND -h' for a command's flags.\n")
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return 0
	}
	c, ok := commands[strings.TrimLeft(name, "-")]
	if !ok {
		fmt.Fprintf(stderr, "triaged: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}
