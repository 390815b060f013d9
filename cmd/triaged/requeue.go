package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/triaged/triaged/ingest/folder"
)

func cmdRequeue(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("requeue", stdout, stderr)
	cfgPath := fs.configFlag("daemon settings")
	only := fs.String("folder", "", "only this drop folder (default: every configured one)")
	codes := fs.String("code", "", "requeue films quarantined with these reason codes (comma separated)")
	all := fs.Bool("all", false, "requeue every quarantined film")
	dry := fs.Bool("dry-run", false, "only say what would be requeued")
	verbose := fs.verboseFlag("also print file names (they may identify a patient: keep them out of logs)")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	var cs []string
	for _, c := range strings.Split(*codes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cs = append(cs, c)
		}
	}
	if !*all && len(cs) == 0 && fs.NArg() == 0 {
		return fs.usageError()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	var folders []folder.Options
	for _, fc := range cfg.Ingest.Folders {
		o := folder.Options{Path: cfg.Resolve(fc.Path), FailedDir: cfg.Resolve(fc.FailedDir)}
		if *only == "" || sameDir(*only, o.Path) {
			folders = append(folders, o)
		}
	}
	if *only != "" && len(folders) == 0 {
		// A folder no longer configured may still hold quarantined films.
		abs, _ := filepath.Abs(*only)
		folders = append(folders, folder.Options{Path: abs})
	}
	n, failed := 0, false
	for _, fo := range folders {
		done, err := folder.Requeue(folder.RequeueOptions{Folder: fo, Names: fs.Args(), Codes: cs, All: *all, DryRun: *dry})
		for _, r := range done {
			verb := "requeued"
			if *dry {
				verb = "would requeue"
			}
			line := fmt.Sprintf("%s film %s (%s) into %s", verb, r.FilmID, r.Code, fo.Path)
			if *verbose {
				line += fmt.Sprintf(": %s -> %s", filepath.Base(r.From), filepath.Base(r.To))
			}
			fmt.Fprintln(stdout, line)
			n++
		}
		if err != nil {
			fmt.Fprintf(stderr, "triaged: %v\n", err)
			failed = true
		}
	}
	switch {
	case *dry:
		fmt.Fprintf(stdout, "%d film(s) would be requeued\n", n)
	default:
		fmt.Fprintf(stdout, "%d film(s) requeued\n", n)
	}
	if failed {
		return 1
	}
	return 0
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}
