package eval

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/triaged/triaged/plot"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// WriteFigures draws the paper's figures for the report into dir and returns
// the files written: ROC and precision-recall curves of every model, and per
// model a score histogram and the confusion matrices at both thresholds.
func (r *Report) WriteFigures(dir string) ([]string, error) {
	var files []string
	var roc, pr []plot.Series
	for _, m := range r.Models {
		s := plot.Series{Name: fmt.Sprintf("%s (AUC %.3f)", m.Name, m.AUC)}
		for _, p := range m.ROC {
			s.Points = append(s.Points, [2]float64{p.X, p.Y})
		}
		roc = append(roc, s)
		q := plot.Series{Name: fmt.Sprintf("%s (AP %.3f)", m.Name, m.AP)}
		q.Points = append(q.Points, [2]float64{0, 1})
		for _, p := range m.PR {
			q.Points = append(q.Points, [2]float64{p.X, p.Y})
		}
		pr = append(pr, q)
	}
	write := func(name string, err error) error {
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		files = append(files, filepath.Join(dir, name))
		return nil
	}
	if err := write("roc.png", plot.Save(filepath.Join(dir, "roc.png"),
		plot.Curves("ROC curves, "+r.Dataset, "1 - specificity", "sensitivity", roc, true, true))); err != nil {
		return files, err
	}
	if err := write("pr.png", plot.Save(filepath.Join(dir, "pr.png"),
		plot.Curves("Precision-recall curves, "+r.Dataset, "recall (sensitivity)", "precision", pr, false, true))); err != nil {
		return files, err
	}
	for _, m := range r.Models {
		base := unsafeName.ReplaceAllString(m.Name, "_")
		var pos, neg plot.Series
		pos.Name, neg.Name = "COVID-19", "non-COVID"
		for _, s := range m.Scores {
			if s.Positive {
				pos.Points = append(pos.Points, [2]float64{s.Score, 0})
			} else {
				neg.Points = append(neg.Points, [2]float64{s.Score, 0})
			}
		}
		h := plot.Histogram("Score distribution, "+m.Name, 20, []plot.Series{pos, neg},
			[]plot.Marker{{X: m.Thresholds.Urgent, Label: "urgent"}, {X: m.Thresholds.Critical, Label: "critical"}})
		if err := write("hist_"+base+".png", plot.Save(filepath.Join(dir, "hist_"+base+".png"), h)); err != nil {
			return files, err
		}
		mats := [][2][2]int{}
		names := []string{}
		for _, op := range m.Operating[:2] {
			c := op.Confusion
			mats = append(mats, [2][2]int{{c.TP, c.FN}, {c.FP, c.TN}})
			names = append(names, fmt.Sprintf("%s threshold %.3f", op.Name, op.Threshold))
		}
		cm := plot.Confusion("Confusion matrices, "+m.Name, names, mats)
		if err := write("confusion_"+base+".png", plot.Save(filepath.Join(dir, "confusion_"+base+".png"), cm)); err != nil {
			return files, err
		}
	}
	return files, nil
}
