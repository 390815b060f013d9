package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// shortcutFlags are model eval's checks for the source shortcut (issue 19).
type shortcutFlags struct {
	border *float64
	probe  *bool
}

func addShortcutFlags(fs *flags) shortcutFlags {
	return shortcutFlags{
		border: fs.Float64("border", 0, "border test: replace the outer band of this fraction of the crop (e.g. 0.12) by the mean and report how P(COVID-19) moves; 0 = off"),
		probe:  fs.Bool("source-probe", false, "source probe: how well a logistic regression on each model's pooled features predicts the image's source within a class (cross-validated by patient)"),
	}
}

func (sf shortcutFlags) on() bool { return *sf.border > 0 || *sf.probe }

// shortcutChecks runs the border test and the source probe on the scored
// films (their inputs kept), writes shortcut.json into out and returns the
// Markdown to append to the report.
func shortcutChecks(sf shortcutFlags, eng *triage.Engine, outs []eval.Outcome, out string) (string, error) {
	if !sf.on() {
		return "", nil
	}
	var xs [][]float32
	var kept []eval.Outcome
	for _, o := range outs {
		if o.Err != nil || o.Input == nil {
			continue
		}
		x := make([]float32, preprocess.TensorLen)
		preprocess.Tensor(o.Input.Gray, x)
		xs = append(xs, x)
		kept = append(kept, o)
	}
	var res struct {
		Within []eval.WithinResult `json:"within_source,omitempty"`
		Border []eval.BorderResult `json:"border,omitempty"`
		Probe  []eval.ProbeResult  `json:"source_probe,omitempty"`
	}
	for mi, m := range eng.Models {
		sc := make([]eval.Scored, len(kept))
		srcs := make([]string, len(kept))
		for i, o := range kept {
			sc[i], srcs[i] = eval.Scored{Score: o.Models[mi], Positive: o.Item.Positive}, o.Item.Source
		}
		res.Within = append(res.Within, eval.WithinSourceAUC(m.Manifest.Name, sc, srcs))
		if *sf.border > 0 {
			pos := make([]bool, len(kept))
			orig := make([]float64, len(kept))
			for i, o := range kept {
				pos[i], orig[i] = o.Item.Positive, o.Models[mi]
			}
			score := func(x []float32, n int) ([]float64, error) {
				rs, _, err := m.Run(x, n)
				if err != nil {
					return nil, err
				}
				ps := make([]float64, len(rs))
				for i, o := range rs {
					ps[i] = o.Prob
				}
				return ps, nil
			}
			br, err := eval.Border(m.Manifest.Name, score, xs, pos, orig, *sf.border, m.Manifest.Thresholds.Urgent)
			if err != nil {
				return "", err
			}
			res.Border = append(res.Border, br)
		}
		if *sf.probe {
			fs, err := eval.PooledFeatures(m, xs)
			if err != nil {
				return "", err
			}
			items := make([]eval.ProbeItem, len(kept))
			for i, o := range kept {
				items[i] = eval.ProbeItem{Features: fs[i], Positive: o.Item.Positive, Source: o.Item.Source, Patient: o.Item.Patient}
			}
			res.Probe = append(res.Probe, eval.SourceProbe(m.Manifest.Name, items, 5, 1.0)...)
		}
	}
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "shortcut.json"), append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	return eval.ShortcutMarkdown(res.Within, res.Border, res.Probe), nil
}
