package eval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseUIDLabels(t *testing.T) {
	l, err := ParseUIDLabels(strings.NewReader("\ufeffSOP_Instance_UID,label,note\n1.2.3,covid,x\n1.2.4,0,\n1.2.3,1,again\n,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.By != BySOP || len(l.Positive) != 2 || !l.Positive["1.2.3"] || l.Positive["1.2.4"] {
		t.Fatalf("%+v", l)
	}
	l, err = ParseUIDLabels(strings.NewReader("study_instance_uid,label\n9.8,non\n"))
	if err != nil || l.By != ByStudy || len(l.Positive) != 1 {
		t.Fatalf("%+v %v", l, err)
	}
	for in, want := range map[string]string{
		"":                          "empty file",
		"file,label\na.dcm,covid\n": "no sop_instance_uid or study_instance_uid column",
		"sop_instance_uid,study_instance_uid,label\n":                      "give one",
		"sop_instance_uid\n1.2\n":                                          "no label column",
		"sop_instance_uid,label\n1.2,maybe\n":                              "line 2: unknown label",
		"sop_instance_uid,label\n1.2,covid\n1.2,non\n":                     "line 3: a UID labeled both ways",
		"sop_instance_uid,label\n":                                         "no labels",
		"label,sop_instance_uid\ncovid\n":                                  "line 2: 1 fields",
		"sop_instance_uid,label\n" + strings.Repeat("1", 200) + ",covid\n": "longer than",
	} {
		if _, err := ParseUIDLabels(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", in, err, want)
		}
	}
}

func FuzzParseUIDLabels(f *testing.F) {
	f.Add("sop_instance_uid,label\n1.2.3,covid\n1.2.4,non\n")
	f.Add("study_instance_uid,label\n\"1.2\",1\n")
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ParseUIDLabels(strings.NewReader(in))
		if err != nil {
			return
		}
		if l.By != BySOP && l.By != ByStudy || len(l.Positive) == 0 {
			t.Fatalf("accepted without labels: %+v", l)
		}
		for uid := range l.Positive {
			if uid == "" || len(uid) > maxUIDLen {
				t.Fatalf("bad UID kept: %q", uid)
			}
		}
	})
}

// Two model sets over the same six films, labeled by SOP: the live set
// separates them perfectly, the shadow one does not; a film without a
// label and a label without a film are counted and skipped, a repeat
// counts once (its latest result), a threshold retuned mid-period is
// applied film by film.
func TestCompareStored(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	labels := &UIDLabels{By: BySOP, Positive: map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": false, "zz": true}}
	live := []float64{0.9, 0.8, 0.3, 0.2, 0.1, 0.5} // a..f
	cand := []float64{0.4, 0.9, 0.6, 0.2, 0.1, 0.5}
	var rs []StoredResult
	for i, u := range []string{"a", "b", "c", "d", "e", "f"} {
		at := t0.Add(time.Duration(i) * time.Hour)
		urgent := 0.25
		if i >= 3 {
			urgent = 0.15 // retuned by a reload
		}
		rs = append(rs,
			StoredResult{SOPInstanceUID: u, ModelSet: "ms-live", Models: []string{"squeezenet1_1"}, Score: live[i], Urgent: urgent, Critical: 0.85, ScoredAt: at},
			StoredResult{SOPInstanceUID: u, ModelSet: "ms-cand", Models: []string{"resnet18"}, Shadow: true, Score: cand[i], Urgent: 0.5, Critical: 0.95, ScoredAt: at})
	}
	// "a" rescored later by the candidate, lower: the latest counts.
	rs = append(rs, StoredResult{SOPInstanceUID: "a", ModelSet: "ms-cand", Models: []string{"resnet18"}, Shadow: true, Score: 0.3, Urgent: 0.5, Critical: 0.95, ScoredAt: t0.Add(48 * time.Hour)})

	rep := CompareStored("labels.csv", rs, labels)
	if len(rep.Sets) != 2 || rep.Sets[0].Role != "live" || rep.Sets[1].Role != "shadow" {
		t.Fatalf("sets: %+v", rep.Sets)
	}
	l, c := rep.Sets[0], rep.Sets[1]
	for _, s := range []SetReport{l, c} {
		if s.Films != 6 || s.Unlabeled != 1 || s.LabelsWithoutResult != 1 || s.Positives != 2 || s.Negatives != 3 {
			t.Errorf("%s: films %d unlabeled %d labels without result %d, %d/%d", s.Role, s.Films, s.Unlabeled, s.LabelsWithoutResult, s.Positives, s.Negatives)
		}
	}
	if l.AUC != 1 || !l.ThresholdsVaried || l.Operating[0].Threshold != 0.15 || l.Repeats != 0 {
		t.Errorf("live: AUC %v varied %t urgent %v repeats %d", l.AUC, l.ThresholdsVaried, l.Operating[0].Threshold, l.Repeats)
	}
	// urgent: a,b >= their 0.25; c 0.3 >= 0.25 is a false positive; d 0.2 >= 0.15 too; e 0.1 not.
	if u := l.Operating[0].Confusion; u != (Confusion{TP: 2, FN: 0, FP: 2, TN: 1}) {
		t.Errorf("live urgent confusion %+v", u)
	}
	if cr := l.Operating[1].Confusion; cr != (Confusion{TP: 1, FN: 1, FP: 0, TN: 3}) {
		t.Errorf("live critical confusion %+v", cr)
	}
	// Candidate: positives a 0.3, b 0.9; negatives c 0.6, d 0.2, e 0.1: 5 of 6 pairs ordered.
	if math.Abs(c.AUC-5.0/6) > 1e-12 || c.Repeats != 1 || c.ThresholdsVaried {
		t.Errorf("candidate: AUC %v repeats %d varied %t", c.AUC, c.Repeats, c.ThresholdsVaried)
	}
	if u := c.Operating[0].Confusion; u != (Confusion{TP: 1, FN: 1, FP: 1, TN: 2}) {
		t.Errorf("candidate urgent confusion %+v", u)
	}
	md := rep.Markdown()
	for _, want := range []string{"| ms-live | live | squeezenet1_1 | 6 | 2 / 3 | 1 | 1 | 1.000", "0.1500 (varied)", "| ms-cand | shadow | resnet18 | 6 | 2 / 3 | 1 | 1 | 0.833", "| ms-cand | shadow | 1 | 1 | 1 | 2 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	// By study: a study label covers each of its films.
	for i := range rs {
		rs[i].StudyInstanceUID = "s-" + rs[i].SOPInstanceUID[:1]
	}
	rep = CompareStored("studies.csv", rs, &UIDLabels{By: ByStudy, Positive: map[string]bool{"s-a": true, "s-c": false}})
	if s := rep.Sets[0]; s.Positives != 1 || s.Negatives != 1 || s.Unlabeled != 4 || s.LabelsWithoutResult != 0 || s.AUC != 1 {
		t.Errorf("by study: %+v", s)
	}
	if rep := CompareStored("x", nil, labels); len(rep.Sets) != 0 || !strings.Contains(rep.Markdown(), "No results selected") {
		t.Errorf("no results: %+v", rep)
	}
}
