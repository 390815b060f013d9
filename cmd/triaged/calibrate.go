package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/triaged/triaged/eval"
)

func cmdCalibrate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("model calibrate", stdout, stderr)
	lf := addLabeledFlags(fs, "val")
	sens := fs.Float64("sensitivity", 0.98, "urgent threshold: the highest threshold keeping at least this sensitivity")
	spec := fs.Float64("specificity", 0.99, "critical threshold: the lowest threshold keeping at least this specificity")
	write := fs.Bool("write", false, "write each model's thresholds and drift profile (score and input distributions) into its manifest.json")
	writeDriftOnly := fs.Bool("write-drift", false, "write only each model's drift profile into its manifest.json, leaving its thresholds as they are")
	if code, ok := fs.parse(args); !ok {
		return code
	}
	items, name, err := lf.load()
	if err != nil {
		fmt.Fprintf(stderr, "triaged: %v\n", err)
		return 2
	}
	eng, err := lf.engine(stderr)
	if err != nil {
		reportConfigError(stderr, err)
		return 1
	}
	defer eng.Close()
	outs := eval.Run(context.Background(), eng, items, eval.Options{Workers: *lf.workers, Progress: newProgress(stderr, len(items)).counter()})
	type row struct {
		Model string          `json:"model"`
		Dir   string          `json:"dir,omitempty"`
		On    string          `json:"calibrated_on"`
		T     eval.Thresholds `json:"thresholds"`
	}
	var rows []row
	failed := 0
	cols := len(eng.Models)
	if cols > 1 {
		cols++
	}
	for c := 0; c < cols; c++ {
		var s []eval.Scored
		for _, o := range outs {
			if o.Err != nil {
				if c == 0 {
					failed++
				}
				continue
			}
			v := o.Ensemble
			if c < len(eng.Models) {
				v = o.Models[c]
			}
			s = append(s, eval.Scored{Score: v, Positive: o.Item.Positive})
		}
		t, ok := eval.Calibrate(s, *sens, *spec)
		if !ok {
			fmt.Fprintln(stderr, "triaged: calibration needs both positive and negative films")
			return 1
		}
		r := row{Model: "ensemble", T: t, On: fmt.Sprintf("%s, %d images", name, len(s))}
		if c < len(eng.Models) {
			r.Model, r.Dir = eng.Models[c].Manifest.Name, eng.Models[c].Dir
		}
		rows = append(rows, r)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	enc.Encode(rows)
	if len(eng.Models) > 1 {
		e := rows[len(rows)-1].T
		fmt.Fprintf(stdout, "# ensemble thresholds for the config:\ntriage:\n  urgent_threshold: %.6f\n  critical_threshold: %.6f\n", e.Urgent, e.Critical)
	}
	if *write || *writeDriftOnly {
		samples := inputSamples(outs, *lf.workers)
		for c, r := range rows {
			if r.Dir == "" {
				continue
			}
			if *write {
				if err := writeThresholds(r.Dir, r.T, r.On); err != nil {
					fmt.Fprintf(stderr, "triaged: %v\n", err)
					return 1
				}
			}
			p := driftProfile(r.On, outs, samples, c)
			if err := writeDrift(r.Dir, p); err != nil {
				fmt.Fprintf(stderr, "triaged: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "drift profile of %s: %s\n", r.Model, describeProfile(p))
			fmt.Fprintf(stderr, "updated %s\n", filepath.Join(r.Dir, "manifest.json"))
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "triaged: %d files could not be scored\n", failed)
		return 1
	}
	return 0
}

// writeThresholds replaces the thresholds in a manifest, leaving every other
// field as it is (the model file's sha256 does not change).
func writeThresholds(dir string, t eval.Thresholds, on string) error {
	p := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	m["thresholds"] = map[string]any{"urgent": t.Urgent, "critical": t.Critical,
		"urgent_sensitivity": t.UrgentSensitivity, "critical_specificity": t.CriticalSpecificity, "calibrated_on": on}
	out, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
