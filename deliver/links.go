package deliver

import (
	"bytes"
	"fmt"
	"text/template"
)

// Links are the URLs a notification carries instead of anything from the
// film: a runbook, and the film's page in the worklist (a template over
// the triage ID, so the link holds no patient data either).
type Links struct {
	Runbook  string
	worklist *template.Template
}

// LinkData is what the worklist URL template sees.
type LinkData struct {
	TriageID string
	Priority string
	ModelSet string
}

// ParseLinks checks the worklist URL template ({{.TriageID}},
// {{.Priority}}, {{.ModelSet}}); an empty one gives no worklist link.
func ParseLinks(runbook, worklistTemplate string) (Links, error) {
	l := Links{Runbook: runbook}
	if worklistTemplate == "" {
		return l, nil
	}
	t, err := template.New("worklist_url").Option("missingkey=error").Parse(worklistTemplate)
	if err != nil {
		return l, fmt.Errorf("worklist URL template: %w", err)
	}
	if err := t.Execute(&bytes.Buffer{}, LinkData{}); err != nil {
		return l, fmt.Errorf("worklist URL template: %w", err)
	}
	l.worklist = t
	return l, nil
}

// Worklist is the film's worklist URL, or "".
func (l Links) Worklist(ev *Event) string {
	if l.worklist == nil {
		return ""
	}
	var b bytes.Buffer
	if err := l.worklist.Execute(&b, LinkData{TriageID: ev.TriageID, Priority: ev.Priority, ModelSet: ev.ModelSet}); err != nil {
		return ""
	}
	return b.String()
}

// Summary is the one line a pager shows: priority, score, model set; no
// patient data.
func Summary(ev *Event) string {
	score := ""
	if ev.Alert != nil {
		score = fmt.Sprintf(" score %.3f", ev.Alert.Score)
	}
	return fmt.Sprintf("%s chest X-ray triage alert:%s (COVID-19 ensemble %s, triage ID %s)", ev.Priority, score, ev.ModelSet, ev.TriageID)
}
