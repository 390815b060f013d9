package worklist

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/triaged/triaged/publish"
)

// entry is one film (result and/or alert) or one skipped/error event.
type entry struct {
	key     string // opaque: carries no UID, so it may appear in URLs and logs
	seq     uint64 // insertion order, for eviction
	arrived time.Time

	// Films.
	resultID    string
	result      *publish.Result // the result, or the alert until it arrives
	resultSeq   uint64          // in the results stream; 0: not seen yet
	alertSeq    uint64
	alertIDs    []string
	attachments []publish.Attachment
	notes       []string
	ack         *publish.Ack

	// Skipped and error events.
	event    *publish.Event
	eventSeq uint64
}

func (e *entry) isEvent() bool { return e.event != nil }

func (e *entry) priority() string {
	if e.result == nil {
		return ""
	}
	return e.result.Priority
}

// alerted reports whether the film raised an alert (only those can be
// acknowledged).
func (e *entry) alerted() bool { return len(e.alertIDs) > 0 }

// rank orders the priorities. A film the input-quality gate could not
// assess comes before the routine films: the model said nothing about it,
// so a person has to look.
func rank(priority string) int {
	switch priority {
	case "critical":
		return 0
	case "urgent":
		return 1
	case publish.PriorityNotAssessable:
		return 2
	case "routine":
		return 3
	}
	return 4
}

// index holds the newest films in memory, rebuilt from the streams.
type index struct {
	max int

	mu      sync.RWMutex
	next    uint64
	byKey   map[string]*entry
	byAlert map[string]*entry
	order   []*entry // by insertion; evicted from the front
}

func newIndex(max int) *index {
	return &index{max: max, byKey: map[string]*entry{}, byAlert: map[string]*entry{}}
}

func filmKey(resultID string) string { return publish.AttachmentKey(resultID) }

// insert adds e and evicts the oldest entries beyond max. Caller holds mu.
func (ix *index) insert(e *entry) {
	ix.next++
	e.seq = ix.next
	ix.byKey[e.key] = e
	ix.order = append(ix.order, e)
	for len(ix.byKey) > ix.max && len(ix.order) > 0 {
		old := ix.order[0]
		ix.order[0] = nil
		ix.order = ix.order[1:]
		if ix.byKey[old.key] == old {
			delete(ix.byKey, old.key)
			for _, id := range old.alertIDs {
				delete(ix.byAlert, id)
			}
		}
	}
}

// film returns (creating) the film entry of a result ID. Caller holds mu.
func (ix *index) film(resultID string, arrived time.Time) *entry {
	key := filmKey(resultID)
	if e := ix.byKey[key]; e != nil {
		return e
	}
	e := &entry{key: key, resultID: resultID, arrived: arrived}
	ix.insert(e)
	return e
}

// addResult applies a result (alert false) or an alert (true) and returns
// the entry's key.
func (ix *index) addResult(r *publish.Result, seq uint64, alert bool) (string, error) {
	if r.Film.SOPInstanceUID == "" || r.ModelSet == "" {
		return "", fmt.Errorf("%s without SOP Instance UID or model set", r.Kind)
	}
	rid := publish.ResultID(r.Film.SOPInstanceUID, r.ModelSet)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.film(rid, r.ScoredAt)
	if alert {
		id := r.MessageID
		if id == "" {
			id = publish.AlertID(r.Film.SOPInstanceUID, r.ModelSet, r.Priority)
		}
		if !slices.Contains(e.alertIDs, id) {
			e.alertIDs = append(e.alertIDs, id)
			ix.byAlert[id] = e
		}
		e.alertSeq = seq
		if e.result == nil || rank(r.Priority) < rank(e.result.Priority) {
			e.result = r
		}
		e.addAttachments(r.Attachments, r.HeatmapNotes)
	} else {
		e.resultSeq = seq
		e.result = r
		e.addAttachments(r.Attachments, r.HeatmapNotes)
	}
	if !r.ScoredAt.IsZero() {
		e.arrived = r.ScoredAt
	}
	return e.key, nil
}

// maxAttachments bounds what one film holds, whatever its messages list.
const maxAttachments = 32

func (e *entry) addAttachments(as []publish.Attachment, notes []string) {
	for _, a := range as {
		if len(e.attachments) >= maxAttachments {
			break
		}
		if !slices.ContainsFunc(e.attachments, func(b publish.Attachment) bool { return b.Bucket == a.Bucket && b.Name == a.Name }) {
			e.attachments = append(e.attachments, a)
		}
	}
	for _, n := range notes {
		if len(e.notes) < maxAttachments && !slices.Contains(e.notes, n) {
			e.notes = append(e.notes, n)
		}
	}
}

// addUpdate applies an alert's follow-up (late heatmaps).
func (ix *index) addUpdate(u *publish.Update) (string, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.byAlert[u.AlertID]
	if e == nil {
		return "", false // its film is no longer held
	}
	e.addAttachments(u.Attachments, u.Notes)
	return e.key, true
}

// addAck marks the film of an acknowledged alert. The first
// acknowledgement stands, as in the stream's deduplication.
func (ix *index) addAck(a *publish.Ack) (string, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e := ix.byAlert[a.AlertID]
	if e == nil {
		return "", false
	}
	if e.ack == nil {
		e.ack = a
	}
	return e.key, true
}

// addEvent adds a skipped or error event.
func (ix *index) addEvent(ev *publish.Event, seq uint64) (string, error) {
	if ev.MessageID == "" {
		return "", fmt.Errorf("%s event without message ID", ev.Kind)
	}
	key := filmKey("event:" + ev.MessageID)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if e := ix.byKey[key]; e != nil {
		return key, nil
	}
	ix.insert(&entry{key: key, arrived: ev.At, event: ev, eventSeq: seq})
	return key, nil
}

// Filter selects the rows of the page.
type Filter struct {
	Tab      string        // films (default) or events
	Priority string        // critical, urgent, routine or "" (all)
	Since    time.Duration // 0: everything held
	Ack      string        // "" (all), no, yes
	Limit    int
}

func (f Filter) match(e *entry, now time.Time) bool {
	if (f.Tab == "events") != e.isEvent() {
		return false
	}
	if f.Since > 0 && e.arrived.Before(now.Add(-f.Since)) {
		return false
	}
	if e.isEvent() {
		return f.Priority == "" || f.Priority == e.event.Kind
	}
	if f.Priority != "" && e.priority() != f.Priority {
		return false
	}
	switch f.Ack {
	case "no":
		return e.alerted() && e.ack == nil
	case "yes":
		return e.ack != nil
	}
	return true
}

// less orders the worklist: priority, then the newest first.
func less(a, b *entry) int {
	if c := cmp.Compare(rank(a.priority()), rank(b.priority())); c != 0 {
		return c
	}
	if c := b.arrived.Compare(a.arrived); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq)
}

// list returns the rows matching f in worklist order, and how many matched.
func (ix *index) list(f Filter, now time.Time) ([]Row, int) {
	ix.mu.RLock()
	var es []*entry
	for _, e := range ix.byKey {
		if f.match(e, now) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, less)
	total := len(es)
	if f.Limit > 0 && len(es) > f.Limit {
		es = es[:f.Limit]
	}
	rows := make([]Row, len(es))
	for i, e := range es {
		rows[i] = e.row(now)
	}
	ix.mu.RUnlock()
	return rows, total
}

// row returns one entry's row (nil if no longer held).
func (ix *index) row(key string, now time.Time) *Row {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := ix.byKey[key]
	if e == nil {
		return nil
	}
	r := e.row(now)
	return &r
}

// counts returns the unacknowledged critical films and all entries held.
func (ix *index) counts() (unackedCritical, held int) {
	t := ix.tally()
	return t.UnackedCritical, t.Held
}

// tally is what the page's header counts.
type tally struct {
	UnackedCritical int
	// NotAssessable counts the held films the input-quality gate stopped:
	// no alert, so they are counted apart from the alerts.
	NotAssessable int
	Held          int
}

func (ix *index) tally() tally {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var t tally
	for _, e := range ix.byKey {
		if e.isEvent() {
			continue
		}
		switch e.priority() {
		case "critical":
			if e.alerted() && e.ack == nil {
				t.UnackedCritical++
			}
		case publish.PriorityNotAssessable:
			t.NotAssessable++
		}
	}
	t.Held = len(ix.byKey)
	return t
}

// Row is what the page shows of an entry.
type Row struct {
	Key      string
	Tab      string
	At       time.Time
	Priority string
	Rank     int
	Score    float64
	Urgent   float64 // the thresholds the priority was decided with
	Critical float64
	Models   string // per-model scores, for the hover title
	Modality string
	View     string
	BodyPart string
	Alerted  bool
	AckBy    string
	AckAt    time.Time
	Code     string // events
	Reason   string
	// NotAssessable is the input-quality gate's reason in plain words on a
	// film it stopped ("" on every scored film): such a row shows no score.
	NotAssessable string
}

// notAssessableWords says a gate reason code the way a radiologist reads
// it. An unknown code (a newer daemon) still says the film was not judged.
func notAssessableWords(code string) string {
	switch code {
	case "blank":
		return "blank image"
	case "uniform":
		return "nearly uniform image"
	case "too_small":
		return "image too small"
	case "outside_calibration":
		return "image unlike the calibration films"
	}
	return "image the model could not judge"
}

// priorityLabel is a priority as the page writes it.
func priorityLabel(p string) string {
	if p == publish.PriorityNotAssessable {
		return "not assessable"
	}
	return p
}

func (e *entry) row(now time.Time) Row {
	r := Row{Key: e.key, At: e.arrived}
	if e.isEvent() {
		r.Tab, r.Priority, r.Rank, r.Code, r.Reason = "events", e.event.Kind, 3, e.event.Code, e.event.Reason
		if f := e.event.Film; f != nil {
			r.Modality, r.View, r.BodyPart = f.Modality, f.ViewPosition, f.BodyPart
		}
		return r
	}
	r.Tab = "films"
	if res := e.result; res != nil {
		r.Priority, r.Rank, r.Score = res.Priority, rank(res.Priority), res.Score
		r.Urgent, r.Critical = res.Thresholds.Urgent, res.Thresholds.Critical
		r.Modality, r.View, r.BodyPart = res.Film.Modality, res.Film.ViewPosition, res.Film.BodyPart
		var ms []string
		for _, m := range res.Models {
			ms = append(ms, fmt.Sprintf("%s %.3f", m.Name, m.Probability))
		}
		r.Models = strings.Join(ms, ", ")
		if res.Priority == publish.PriorityNotAssessable {
			r.NotAssessable = notAssessableWords(res.NotAssessable)
		}
	}
	r.Alerted = e.alerted()
	if e.ack != nil {
		r.AckBy, r.AckAt = e.ack.By, e.ack.At
	}
	return r
}

// detail is what the film view shows; copied under the lock.
type detail struct {
	Row         Row
	Result      *publish.Result
	Event       *publish.Event
	ResultSeq   uint64
	AlertSeq    uint64
	EventSeq    uint64
	AlertID     string // the one an acknowledgement names
	ResultID    string
	Attachments []publish.Attachment
	Notes       []string
	Ack         *publish.Ack
}

func (ix *index) detail(key string, now time.Time) (*detail, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := ix.byKey[key]
	if e == nil {
		return nil, false
	}
	d := &detail{Row: e.row(now), Result: e.result, Event: e.event, ResultSeq: e.resultSeq, AlertSeq: e.alertSeq,
		EventSeq: e.eventSeq, ResultID: e.resultID, Attachments: slices.Clone(e.attachments), Notes: slices.Clone(e.notes), Ack: e.ack}
	// The highest-priority alert is the one deliveries page about.
	best := -1
	for _, id := range e.alertIDs {
		p := id[strings.LastIndexByte(id, ':')+1:]
		if best < 0 || rank(p) < best {
			best, d.AlertID = rank(p), id
		}
	}
	return d, true
}
