package triage

import "testing"

// One rule decides "asked for first", for queueing and escalation alike:
// DICOM's STAT and HIGH, and a sender's URGENT or CRITICAL hint.
func TestIsStat(t *testing.T) {
	for p, want := range map[string]bool{
		"STAT": true, "HIGH": true, "URGENT": true, "CRITICAL": true, "urgent": true, " critical ": true, "stat": true,
		"ROUTINE": false, "MEDIUM": false, "LOW": false, "": false, "STATX": false,
	} {
		if got := IsStat(p); got != want {
			t.Errorf("IsStat(%q) = %v, want %v", p, got, want)
		}
	}
}

// Escalation follows the same rule as queueing: a positive film sent as
// URGENT or CRITICAL is escalated like a STAT one; ROUTINE is not.
func TestClassifyEscalatesWhatQueueingPutsFirst(t *testing.T) {
	e := &Engine{Thresholds: Thresholds{Urgent: 0.3, Critical: 0.8}, opts: EngineOptions{EscalateStat: true}}
	for _, hint := range []string{"URGENT", "CRITICAL", "STAT", "HIGH"} {
		if p, _ := e.Classify(0.5, hint); p != Critical {
			t.Errorf("score 0.5 sent as %s: %s, want critical (escalated)", hint, p)
		}
		if p, _ := e.Classify(0.1, hint); p != Routine {
			t.Errorf("score 0.1 sent as %s: %s, want routine (a negative film is never escalated)", hint, p)
		}
	}
	if p, _ := e.Classify(0.5, "ROUTINE"); p != Urgent {
		t.Errorf("score 0.5 sent as ROUTINE: %s, want urgent", p)
	}
	e.opts.EscalateStat = false
	if p, _ := e.Classify(0.5, "CRITICAL"); p != Urgent {
		t.Errorf("escalation off: %s, want urgent", p)
	}
}
