package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/publish"
)

// Evaluation over the record: the results the daemon stored (live and
// shadow, docs/adopting-a-model.md) joined with labels collected later,
// per model set side by side, so a site compares a candidate with the set
// in force on its own films before switching.

// StoredResult is what an evaluation keeps of one stored result message.
type StoredResult struct {
	SOPInstanceUID   string
	StudyInstanceUID string
	ModelSet         string
	Models           []string // model names
	Shadow           bool
	Score            float64 // ensemble P(COVID-19)
	Urgent, Critical float64 // the thresholds in force when it was scored
	ScoredAt         time.Time
}

// StoredQuery selects stored results.
type StoredQuery struct {
	Stream   string
	Subjects []string
	// Since, Until bound ScoredAt (zero: unbounded).
	Since, Until time.Time
	// ModelSets keeps only these model sets (empty: all).
	ModelSets []string
	// Max bounds how many results are held (0: 2,000,000): a range too
	// wide is refused rather than exhausting memory.
	Max int
	// Wait is how long to wait for the next message before giving up (0: 10s).
	Wait time.Duration
}

// ReadStats counts what a read skipped.
type ReadStats struct {
	Messages   int // read from the stream
	Undecoded  int // not a result message
	OutOfRange int // outside Since..Until or of another model set
	// NotAssessable: films the input-quality gate stopped (score 0, not a
	// prediction), left out of every metric.
	NotAssessable int
}

// ReadStored reads the results a query selects, from the oldest, until it
// has caught up with the stream.
func ReadStored(ctx context.Context, js jetstream.JetStream, q StoredQuery) ([]StoredResult, ReadStats, error) {
	var st ReadStats
	if q.Max <= 0 {
		q.Max = 2_000_000
	}
	if q.Wait <= 0 {
		q.Wait = 10 * time.Second
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: q.Subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !q.Since.IsZero() {
		// Messages are stored at most a publish timeout after they were
		// scored; an hour's margin, then ScoredAt decides.
		start := q.Since.Add(-time.Hour)
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.OrderedConsumer(ctx, q.Stream, occ)
	if err != nil {
		return nil, st, fmt.Errorf("read stream %s (%s): %w", q.Stream, strings.Join(q.Subjects, ", "), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, st, fmt.Errorf("read stream %s: %w", q.Stream, err)
	}
	var out []StoredResult
	for pending := info.NumPending; pending > 0; {
		fctx, cancel := context.WithTimeout(ctx, q.Wait)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			return nil, st, fmt.Errorf("read stream %s after %d messages: %w", q.Stream, st.Messages, err)
		}
		st.Messages++
		if md, err := msg.Metadata(); err == nil {
			pending = md.NumPending
		} else {
			pending--
		}
		var r publish.Result
		if err := json.Unmarshal(msg.Data(), &r); err != nil || r.Film.SOPInstanceUID == "" || r.ModelSet == "" {
			st.Undecoded++
			continue
		}
		if (!q.Since.IsZero() && r.ScoredAt.Before(q.Since)) || (!q.Until.IsZero() && !r.ScoredAt.Before(q.Until)) ||
			(len(q.ModelSets) > 0 && !slices.Contains(q.ModelSets, r.ModelSet)) {
			st.OutOfRange++
			continue
		}
		if r.NotAssessable != "" {
			st.NotAssessable++
			continue
		}
		if len(out) >= q.Max {
			return nil, st, fmt.Errorf("more than %d results selected: narrow the time range", q.Max)
		}
		s := StoredResult{SOPInstanceUID: r.Film.SOPInstanceUID, StudyInstanceUID: r.Film.StudyInstanceUID, ModelSet: r.ModelSet,
			Shadow: r.Shadow, Score: r.Score, Urgent: r.Thresholds.Urgent, Critical: r.Thresholds.Critical, ScoredAt: r.ScoredAt}
		for _, m := range r.Models {
			s.Models = append(s.Models, m.Name)
		}
		out = append(out, s)
	}
	return out, st, nil
}

// SetReport is one model set's results joined with the labels.
type SetReport struct {
	ModelSet string   `json:"model_set"`
	Role     string   `json:"role"` // live or shadow
	Models   []string `json:"models"`
	// Films: distinct films with a result; Repeats: further results of a
	// film already counted (rescored after the deduplication window; the
	// latest counts).
	Films   int `json:"films"`
	Repeats int `json:"repeats"`
	// Unlabeled films were skipped; LabelsWithoutResult are labels no
	// result of this set matched.
	Unlabeled           int              `json:"unlabeled"`
	LabelsWithoutResult int              `json:"labels_without_result"`
	Positives           int              `json:"positives"`
	Negatives           int              `json:"negatives"`
	AUC                 float64          `json:"auc"`
	AUCLow              float64          `json:"auc_ci_low"`
	AUCHigh             float64          `json:"auc_ci_high"`
	AP                  float64          `json:"average_precision"`
	Operating           []OperatingPoint `json:"operating"`
	// ThresholdsVaried: the thresholds changed during the period (a
	// reload); each film is counted at the thresholds it was scored with,
	// and Operating names the latest.
	ThresholdsVaried bool   `json:"thresholds_varied,omitempty"`
	First            string `json:"first_scored,omitempty"`
	Last             string `json:"last_scored,omitempty"`
}

// MarshalJSON writes undefined values (one class missing) as null.
func (s SetReport) MarshalJSON() ([]byte, error) {
	type plain SetReport
	return json.Marshal(struct {
		plain
		AUC     *float64 `json:"auc"`
		AUCLow  *float64 `json:"auc_ci_low"`
		AUCHigh *float64 `json:"auc_ci_high"`
		AP      *float64 `json:"average_precision"`
	}{plain(s), finite(s.AUC), finite(s.AUCLow), finite(s.AUCHigh), finite(s.AP)})
}

// StoredReport compares the model sets over stored results.
type StoredReport struct {
	Schema    string      `json:"schema"`
	Generated time.Time   `json:"generated"`
	Labels    string      `json:"labels"`
	LabeledBy string      `json:"labeled_by"`
	NLabels   int         `json:"n_labels"`
	Read      ReadStats   `json:"read"`
	Sets      []SetReport `json:"sets"`
}

// CompareStored joins stored results with labels, per model set (live
// before shadow, then by model set). A film counts once per set: its
// latest result.
func CompareStored(name string, rs []StoredResult, labels *UIDLabels) *StoredReport {
	rep := &StoredReport{Schema: "triaged.eval-stored/v1", Generated: time.Now().UTC(), Labels: name, LabeledBy: labels.By, NLabels: len(labels.Positive)}
	type key struct {
		shadow bool
		set    string
	}
	latest := map[key]map[string]StoredResult{}
	repeats := map[key]int{}
	for _, r := range rs {
		k := key{r.Shadow, r.ModelSet}
		if latest[k] == nil {
			latest[k] = map[string]StoredResult{}
		}
		if prev, ok := latest[k][r.SOPInstanceUID]; ok {
			repeats[k]++
			if !r.ScoredAt.After(prev.ScoredAt) {
				continue
			}
		}
		latest[k][r.SOPInstanceUID] = r
	}
	keys := make([]key, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].shadow != keys[j].shadow {
			return !keys[i].shadow
		}
		return keys[i].set < keys[j].set
	})
	for _, k := range keys {
		rep.Sets = append(rep.Sets, setReport(k.set, k.shadow, latest[k], repeats[k], labels))
	}
	return rep
}

func setReport(set string, shadow bool, films map[string]StoredResult, repeats int, labels *UIDLabels) SetReport {
	sr := SetReport{ModelSet: set, Role: "live", Films: len(films), Repeats: repeats}
	if shadow {
		sr.Role = "shadow"
	}
	// Films in a stable order, so the bootstrap interval is reproducible.
	uids := make([]string, 0, len(films))
	for u := range films {
		uids = append(uids, u)
	}
	sort.Strings(uids)
	matched := map[string]bool{}
	var scored []Scored
	var joined []StoredResult
	var newest StoredResult
	for i, u := range uids {
		r := films[u]
		if i == 0 || r.ScoredAt.After(newest.ScoredAt) {
			newest = r
		}
		if at := r.ScoredAt.UTC().Format(time.RFC3339); sr.First == "" || at < sr.First {
			sr.First = at
		}
		if at := r.ScoredAt.UTC().Format(time.RFC3339); at > sr.Last {
			sr.Last = at
		}
		id := r.SOPInstanceUID
		if labels.By == ByStudy {
			id = r.StudyInstanceUID
		}
		pos, ok := labels.Positive[id]
		if !ok {
			sr.Unlabeled++
			continue
		}
		matched[id] = true
		if pos {
			sr.Positives++
		} else {
			sr.Negatives++
		}
		scored = append(scored, Scored{Score: r.Score, Positive: pos})
		joined = append(joined, r)
	}
	sr.Models = newest.Models
	sr.LabelsWithoutResult = len(labels.Positive) - len(matched)
	sr.AUC, sr.AP = AUC(scored), AveragePrecision(scored)
	sr.AUCLow, sr.AUCHigh = AUCInterval(scored, 2000, 20201)
	for _, p := range []struct {
		name string
		t    func(StoredResult) float64
	}{{"urgent", func(r StoredResult) float64 { return r.Urgent }}, {"critical", func(r StoredResult) float64 { return r.Critical }}} {
		var c Confusion
		for i, r := range joined {
			t := p.t(r)
			if t != p.t(newest) {
				sr.ThresholdsVaried = true
			}
			c = c.add(scored[i], t)
		}
		sr.Operating = append(sr.Operating, OperatingPoint{Name: p.name, Threshold: p.t(newest), Confusion: c, Sensitivity: c.Sensitivity(), Specificity: c.Specificity()})
	}
	return sr
}

// add counts one labeled score at threshold t (positive when score >= t).
func (c Confusion) add(s Scored, t float64) Confusion {
	switch {
	case s.Positive && s.Score >= t:
		c.TP++
	case s.Positive:
		c.FN++
	case s.Score >= t:
		c.FP++
	default:
		c.TN++
	}
	return c
}

// Markdown renders the comparison.
func (r *StoredReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stored results joined with %s (%d labels by %s). Each film counts once per model set, at the thresholds it was scored with. Intervals are 95%% (Wilson for proportions, bootstrap for AUC).\n\n", r.Labels, r.NLabels, r.LabeledBy)
	if len(r.Sets) == 0 {
		b.WriteString("No results selected.\n")
		return b.String()
	}
	b.WriteString("| model set | role | models | films | labeled (COVID-19 / non) | unlabeled | labels without result | ROC AUC [95% CI] | AP | urgent threshold | sensitivity | specificity | critical threshold | sensitivity | specificity |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Sets {
		u, c := s.Operating[0], s.Operating[1]
		ut, ct := fmt.Sprintf("%.4f", u.Threshold), fmt.Sprintf("%.4f", c.Threshold)
		if s.ThresholdsVaried {
			ut, ct = ut+" (varied)", ct+" (varied)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d / %d | %d | %d | %s [%s, %s] | %s | %s | %s | %s | %s | %s | %s |\n",
			s.ModelSet, s.Role, strings.Join(s.Models, "+"), s.Films, s.Positives, s.Negatives, s.Unlabeled, s.LabelsWithoutResult,
			num(s.AUC), num(s.AUCLow), num(s.AUCHigh), num(s.AP), ut, pct(u.Sensitivity), pct(u.Specificity), ct, pct(c.Sensitivity), pct(c.Specificity))
	}
	b.WriteString("\nConfusion counts (rows: truth, columns: prediction) at the urgent / critical thresholds:\n\n")
	b.WriteString("| model set | role | urgent: TP | FN | FP | TN | critical: TP | FN | FP | TN |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Sets {
		u, c := s.Operating[0].Confusion, s.Operating[1].Confusion
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", s.ModelSet, s.Role, u.TP, u.FN, u.FP, u.TN, c.TP, c.FN, c.FP, c.TN)
	}
	if n := r.Read.Undecoded; n > 0 {
		fmt.Fprintf(&b, "\n%d stored messages were not result messages and were skipped.\n", n)
	}
	if n := r.Read.NotAssessable; n > 0 {
		fmt.Fprintf(&b, "\n%d films were not assessable (input-quality gate) and are left out of the metrics.\n", n)
	}
	return b.String()
}
