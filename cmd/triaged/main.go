// Command triaged is the chest X-ray triage daemon and its operator tools.
//
// Exit status, for every command: 0 success; 1 a film, a check or the
// configuration failed (the reason is on stderr); 2 the command line was
// wrong (usage on stderr). `-h` prints a command's usage on stdout and
// exits 0.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/triaged/triaged/ingest/folder"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// command is one entry of the one command table. A family (heatmap, model)
// has verbs; its run is nil.
type command struct {
	name     string
	synopsis string // the arguments after the name
	summary  string
	about    string // optional paragraph printed by -h
	run      func(args []string, stdout, stderr io.Writer) int
	verbs    []command
}

// commands is the one table: `triaged -h` lists it in this order. It is
// filled in init only because the commands' flag sets read it back.
var commands []command

func init() {
	commands = table()
}

func table() []command {
	return []command{
		{name: "run", synopsis: "[-config FILE]", summary: "run the daemon (embedded defaults unless -config is given)", run: cmdRun},
		{name: "score", synopsis: "[-config FILE] FILE...", summary: "score DICOM or image files once and print one JSON result per file", run: cmdScore},
		{name: "decode", synopsis: "FILE -o OUT.png [-raw RAW16.png] [-crop CROP.png] [-config FILE]", summary: "write what the model sees of a film: display-ready PNG (-o), stored values (-raw), crop (-crop)", run: cmdDecode},
		{name: "submit", synopsis: "[-config FILE] [flags] FILE...|DIR...", summary: "publish DICOM films to the NATS ingest subject (inline or object store)", run: cmdSubmit,
			about: "Publishes DICOM films to the NATS ingest subject, inline or through the object store by size.\nOne JSON line per film on stdout; exit status 1 if any film failed."},
		{name: "alerts", synopsis: "[-config FILE] [-follow] [-all] [-results]", summary: "print alerts from NATS (-follow to keep tailing)", run: cmdAlerts},
		{name: "ack", synopsis: "ALERT_ID|TRIAGE_ID -by NAME [-note TEXT] [-config FILE] [-server URL]", summary: "acknowledge an alert: every delivery resolves it and the worklist marks it", run: cmdAck},
		{name: "requeue", synopsis: "[-config FILE] [-folder DIR] (-all | -code CODE[,CODE] | NAME...)", summary: "move quarantined films back into their drop folder", run: cmdRequeue,
			about: "Moves quarantined films (failed/) back into their drop folder, where the daemon picks them up again;\neach reason file is kept under failed/" + folder.HistoryDir + "/. Nothing is deleted or overwritten."},
		{name: "heatmap", summary: "heatmaps of films: render overlays, check their faithfulness", verbs: []command{
			{name: "render", synopsis: "[-config FILE] [-method cam|occlusion|both] [-o DIR] FILE... | -test-positives N", summary: "render heatmap overlays of films (no NATS)", run: cmdHeatmap},
			{name: "check", synopsis: "[-config FILE] [-n N] [-cam-only]", summary: "deletion check: do the heatmaps beat random masking on the test split?", run: cmdHeatmapCheck},
		}},
		{name: "model", summary: "the models on a labeled set: evaluate, calibrate thresholds", verbs: []command{
			{name: "eval", synopsis: "[-config FILE] [flags]", summary: "evaluate the models on a labeled set: metrics with CIs, per source, figures", run: cmdEval,
				about: "With -stored, the results the daemon stored (the live model set and any shadow one) are joined with a\nlabels CSV keyed by SOP or Study Instance UID and reported per model set, side by side (docs/adopting-a-model.md)."},
			{name: "calibrate", synopsis: "[-config FILE] [flags]", summary: "derive the urgent/critical thresholds from a labeled set", run: cmdCalibrate},
		}},
		{name: "dataset", summary: "labeled DICOM films as training data", verbs: []command{
			{name: "export", synopsis: "(-labels CSV | -folder DIR) -o DIR [-config FILE] [-workers N]", summary: "decode labeled films as the daemon does: display-ready PNGs, labels.csv for training/, rejects.csv with reason codes", run: cmdDatasetExport,
				about: "One decode for training and serving: each film goes through the daemon's own decoder to the\ndisplay-ready 8-bit image its preprocessing starts from (images/<film_id>.png, lossless); labels.csv has\nthe columns training/train.py reads (file, label, source, view, patient_id) plus film_id (sha256 of the\nfile, 16 hex digits), sop_instance_uid, transfer_syntax, display and the DICOM path; films that cannot\nbe decoded go to rejects.csv with their reason code. Exit status 1 if none could be exported."},
		}},
		{name: "result-objects", synopsis: "-o DIR [-config FILE] FILE...", summary: "write the DICOM SR (and, for a positive film, the heatmap image) the daemon returns into a film's study, for inspection without a PACS", run: cmdResultObjects},
		{name: "check-config", synopsis: "[-config FILE] [-print]", summary: "validate a config file and print every problem", run: cmdCheckConfig},
		{name: "version", synopsis: "[-v] [-config FILE]", summary: "print the version (-v: the ONNX Runtime library and each model's execution provider)", run: cmdVersion},
	}
}

// renamed are the old command names, kept working for one release.
var renamed = map[string][]string{
	"eval":          {"model", "eval"},
	"calibrate":     {"model", "calibrate"},
	"heatmap-check": {"heatmap", "check"},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "triaged %s: streaming chest X-ray triage daemon\n\nUsage: triaged COMMAND [flags]\n\nCommands:\n", version)
	for _, c := range commands {
		if c.verbs == nil {
			fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
			continue
		}
		for _, v := range c.verbs {
			fmt.Fprintf(w, "  %-18s %s\n", c.name+" "+v.name, v.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'triaged COMMAND -h' for a command's flags.\n"+
		"Exit status: 0 success, 1 a film, check or configuration failed, 2 usage error.\n")
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// lookup finds a command by its full name ("heatmap render").
func lookup(name string) (command, bool) {
	parts := strings.Fields(name)
	for _, c := range commands {
		if c.name != parts[0] {
			continue
		}
		if len(parts) == 1 {
			return c, true
		}
		for _, v := range c.verbs {
			if v.name == parts[1] {
				v.name = c.name + " " + v.name
				return v, true
			}
		}
	}
	return command{}, false
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := strings.TrimLeft(args[0], "-")
	if name == "help" || name == "h" {
		usage(stdout)
		return 0
	}
	if to, ok := renamed[name]; ok {
		fmt.Fprintf(stderr, "triaged: %q is now %q; the old name works until the next release\n", name, strings.Join(to, " "))
		args = append(append([]string{}, to...), args[1:]...)
		name = to[0]
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "triaged: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	args = args[1:]
	if c.verbs != nil {
		verb := ""
		if len(args) > 0 {
			verb = strings.TrimLeft(args[0], "-")
		}
		if verb == "h" || verb == "help" {
			familyUsage(stdout, c)
			return 0
		}
		var v command
		ok := false
		if verb != "" {
			v, ok = lookup(c.name + " " + verb)
		}
		if !ok && c.name == "heatmap" && verb != "" {
			// `triaged heatmap FILE...` was the render command.
			fmt.Fprintln(stderr, `triaged: "heatmap FILE..." is now "heatmap render FILE..."; the old form works until the next release`)
			v, ok = lookup("heatmap render")
			args = append([]string{"render"}, args...)
		}
		if !ok {
			familyUsage(stderr, c)
			return 2
		}
		c, args = v, args[1:]
	}
	return c.run(args, stdout, stderr)
}

func familyUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "Usage: triaged %s VERB [flags]\n\n%s\n\nVerbs:\n", c.name, c.summary)
	for _, v := range c.verbs {
		fmt.Fprintf(w, "  %-10s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(w, "\nRun 'triaged %s VERB -h' for a verb's flags.\n", c.name)
}
