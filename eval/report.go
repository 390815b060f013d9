package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// OperatingPoint is sensitivity and specificity at one threshold.
type OperatingPoint struct {
	Name        string     `json:"name"`
	Threshold   float64    `json:"threshold"`
	Confusion   Confusion  `json:"confusion"`
	Sensitivity Proportion `json:"sensitivity"`
	Specificity Proportion `json:"specificity"`
}

// SourceReport breaks a model's results down by data source: positives and
// negatives of this data set come from different sources, so a high overall
// AUC can reflect telling sources apart.
type SourceReport struct {
	Source    string           `json:"source"`
	Positives int              `json:"positives"`
	Negatives int              `json:"negatives"`
	AUC       float64          `json:"auc"`
	Operating []OperatingPoint `json:"operating"`
}

// ModelReport is one model's (or the ensemble's) evaluation.
type ModelReport struct {
	Name       string           `json:"name"`
	Version    string           `json:"version,omitempty"`
	AUC        float64          `json:"auc"`
	AUCLow     float64          `json:"auc_ci_low"`
	AUCHigh    float64          `json:"auc_ci_high"`
	AP         float64          `json:"average_precision"`
	Operating  []OperatingPoint `json:"operating"`
	PerSource  []SourceReport   `json:"per_source"`
	ROC        []Point          `json:"roc"`
	PR         []Point          `json:"pr"`
	Scores     []Scored         `json:"-"`
	Thresholds Thresholds       `json:"-"`
}

// Report is the whole evaluation.
type Report struct {
	Schema    string        `json:"schema"`
	Generated time.Time     `json:"generated"`
	Dataset   string        `json:"dataset"`
	Items     int           `json:"items"`
	Positives int           `json:"positives"`
	Negatives int           `json:"negatives"`
	Failed    []string      `json:"failed,omitempty"`
	Models    []ModelReport `json:"models"`
	// Faithfulness is the heatmap deletion check, when it was run.
	Faithfulness []Faithfulness `json:"heatmap_faithfulness,omitempty"`
}

// Faithfulness is one model's heatmap deletion check (see heatmap.Deletion).
type Faithfulness struct {
	Model        string                        `json:"model"`
	Films        int                           `json:"films"`
	RandomDrop10 float64                       `json:"random_drop_at_10pct"`
	Methods      map[string]MethodFaithfulness `json:"methods"`
}

// MethodFaithfulness is a heatmap method's result in the deletion check.
type MethodFaithfulness struct {
	Drop10      float64 `json:"drop_at_10pct"`
	Wins        int     `json:"films_beating_random"`
	BeatsRandom bool    `json:"beats_random"`
	DeletionAUC float64 `json:"deletion_auc"`
}

// ModelInfo names a column of outcome scores and its operating thresholds.
type ModelInfo struct {
	Name, Version    string
	Urgent, Critical float64
}

// Build computes the report. models describes Outcome.Models in order; the
// ensemble is added last when there is more than one model.
func Build(dataset string, outs []Outcome, models []ModelInfo, ensemble ModelInfo) *Report {
	r := &Report{Schema: "triaged.eval/v1", Generated: time.Now().UTC(), Dataset: dataset}
	var ok []Outcome
	for _, o := range outs {
		if o.Err != nil {
			r.Failed = append(r.Failed, o.Err.Error())
			continue
		}
		ok = append(ok, o)
		if o.Item.Positive {
			r.Positives++
		} else {
			r.Negatives++
		}
	}
	r.Items = len(ok)
	cols := append([]ModelInfo(nil), models...)
	if len(models) > 1 {
		cols = append(cols, ensemble)
	}
	for ci, mi := range cols {
		score := func(o Outcome) float64 {
			if ci < len(models) {
				return o.Models[ci]
			}
			return o.Ensemble
		}
		var all []Scored
		bySrc := map[string][]Scored{}
		for _, o := range ok {
			s := Scored{Score: score(o), Positive: o.Item.Positive}
			all = append(all, s)
			bySrc[o.Item.Source] = append(bySrc[o.Item.Source], s)
		}
		mr := ModelReport{Name: mi.Name, Version: mi.Version, AUC: AUC(all), AP: AveragePrecision(all),
			ROC: ROC(all), PR: PR(all), Scores: all, Thresholds: Thresholds{Urgent: mi.Urgent, Critical: mi.Critical}}
		mr.AUCLow, mr.AUCHigh = AUCInterval(all, 2000, 20201)
		mr.Operating = operating(all, mi)
		srcs := make([]string, 0, len(bySrc))
		for s := range bySrc {
			srcs = append(srcs, s)
		}
		sort.Strings(srcs)
		for _, src := range srcs {
			ss := bySrc[src]
			sr := SourceReport{Source: src, AUC: AUC(ss), Operating: operating(ss, mi)}
			for _, s := range ss {
				if s.Positive {
					sr.Positives++
				} else {
					sr.Negatives++
				}
			}
			mr.PerSource = append(mr.PerSource, sr)
		}
		r.Models = append(r.Models, mr)
	}
	return r
}

func operating(s []Scored, mi ModelInfo) []OperatingPoint {
	var ops []OperatingPoint
	for _, p := range []struct {
		name string
		t    float64
	}{{"urgent", mi.Urgent}, {"critical", mi.Critical}, {"0.5", 0.5}} {
		c := At(s, p.t)
		ops = append(ops, OperatingPoint{Name: p.name, Threshold: p.t, Confusion: c, Sensitivity: c.Sensitivity(), Specificity: c.Specificity()})
	}
	return ops
}

// WriteJSON writes the report.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func pct(p Proportion) string {
	if math.IsNaN(p.Value) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% [%.1f, %.1f] (%d/%d)", 100*p.Value, 100*p.Low, 100*p.High, p.K, p.N)
}

func num(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", f)
}

// Markdown renders the report's tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Evaluation of %s: %d images (%d COVID-19, %d non-COVID)", r.Dataset, r.Items, r.Positives, r.Negatives)
	if len(r.Failed) > 0 {
		fmt.Fprintf(&b, ", %d could not be read", len(r.Failed))
	}
	b.WriteString(". Intervals are 95% (Wilson for proportions, bootstrap for AUC).\n\n")
	b.WriteString("| model | ROC AUC [95% CI] | AP | urgent threshold | sensitivity | specificity | critical threshold | sensitivity | specificity |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range r.Models {
		u, c := m.Operating[0], m.Operating[1]
		fmt.Fprintf(&b, "| %s | %s [%s, %s] | %s | %.4f | %s | %s | %.4f | %s | %s |\n", m.Name, num(m.AUC), num(m.AUCLow), num(m.AUCHigh), num(m.AP),
			u.Threshold, pct(u.Sensitivity), pct(u.Specificity), c.Threshold, pct(c.Sensitivity), pct(c.Specificity))
	}
	b.WriteString("\nPer source, at the urgent threshold (sensitivity only where the source has COVID-19 images, specificity only where it has non-COVID ones):\n\n")
	b.WriteString("| model | source | COVID-19 | non-COVID | AUC | sensitivity | specificity |\n|---|---|---|---|---|---|---|\n")
	for _, m := range r.Models {
		for _, s := range m.PerSource {
			u := s.Operating[0]
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s | %s |\n", m.Name, s.Source, s.Positives, s.Negatives, num(s.AUC), pct(u.Sensitivity), pct(u.Specificity))
		}
	}
	b.WriteString("\nConfusion matrices (rows: truth, columns: prediction) at the urgent / critical thresholds:\n\n")
	b.WriteString("| model | urgent: TP | FN | FP | TN | critical: TP | FN | FP | TN |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range r.Models {
		u, c := m.Operating[0].Confusion, m.Operating[1].Confusion
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", m.Name, u.TP, u.FN, u.FP, u.TN, c.TP, c.FN, c.FP, c.TN)
	}
	return b.String()
}
