package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/triaged/triaged/publish"
)

// Kind is what a delivered message is.
type Kind string

const (
	KindAlert  Kind = "alert"  // a positive film: <prefix>.alert.<priority>
	KindUpdate Kind = "update" // a late heatmap: <prefix>.alert.update
	KindAck    Kind = "ack"    // a person (or the TTL) ended the alert: <prefix>.alert.ack
)

// Priorities are the alerting priorities, most urgent first.
var Priorities = []string{"critical", "urgent"}

// Event is one stored message handed to a destination. ID is the message's
// own ID (Nats-Msg-Id): the idempotency key a receiver deduplicates on.
// AlertID and TriageID name the alert the message belongs to, so an ack or
// an update reaches the same incident at the receiver as its alert.
type Event struct {
	Kind     Kind
	ID       string
	AlertID  string
	TriageID string // opaque keyed hash of AlertID: no patient data
	Priority string // the alert's priority
	ModelSet string
	Seq      uint64    // stream sequence
	Stored   time.Time // when JetStream stored it
	// Redelivered is set when JetStream has handed this message out before:
	// the receiver may have seen it already and should deduplicate on ID.
	Redelivered bool

	Alert  *publish.Result // KindAlert
	Update *publish.Update // KindUpdate
	Ack    *publish.Ack    // KindAck
	Body   []byte          // the message as stored (JSON)
}

// TriageID is the opaque identifier of an alert outside the hospital: the
// first 128 bits of HMAC-SHA256(key, alertID) in hex. The alert ID holds
// the SOP Instance UID; the triage ID is useless without the key.
func TriageID(key []byte, alertID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(alertID))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// LooksLikeTriageID reports whether s has the shape TriageID produces.
func LooksLikeTriageID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// SplitAlertID returns the model set and priority an alert ID ends with
// (<SOP Instance UID>:<model set>:<priority>), so an ack, which carries only
// the alert ID, can be routed and labelled like its alert.
func SplitAlertID(alertID string) (modelSet, priority string, ok bool) {
	i := strings.LastIndexByte(alertID, ':')
	if i <= 0 {
		return "", "", false
	}
	j := strings.LastIndexByte(alertID[:i], ':')
	if j <= 0 {
		return "", "", false
	}
	modelSet, priority = alertID[j+1:i], alertID[i+1:]
	if modelSet == "" || rank(priority) < 0 {
		return "", "", false
	}
	return modelSet, priority, true
}

// rank orders priorities: 0 is the most urgent, -1 unknown.
func rank(p string) int {
	for i, q := range Priorities {
		if p == q {
			return i
		}
	}
	return -1
}

// maxMessage bounds what is decoded: JetStream's own max payload is the
// real limit; this guards against a misconfigured server.
const maxMessage = 8 << 20

// DecodeEvent parses a message stored under <prefix>.alert.>. It never
// trusts the subject alone: an alert's body must say the same priority.
func DecodeEvent(prefix, subject string, data []byte, key []byte) (*Event, error) {
	if len(data) > maxMessage {
		return nil, fmt.Errorf("message on %s is %d bytes, over the %d limit", subject, len(data), maxMessage)
	}
	rest, ok := strings.CutPrefix(subject, prefix+"."+publish.SubjectAlert+".")
	if !ok || rest == "" || strings.Contains(rest, ".") {
		return nil, fmt.Errorf("subject %q is not an alert subject under %q", subject, prefix)
	}
	ev := &Event{Body: data}
	switch rest {
	case "ack":
		var a publish.Ack
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("decode acknowledgement: %w", err)
		}
		if a.AlertID == "" {
			return nil, errors.New("acknowledgement without alert_id")
		}
		ev.Kind, ev.Ack, ev.AlertID, ev.ID = KindAck, &a, a.AlertID, a.MessageID
		if ev.ID == "" {
			ev.ID = publish.AckID(a.AlertID)
		}
	case "update":
		var u publish.Update
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, fmt.Errorf("decode alert update: %w", err)
		}
		if u.AlertID == "" || u.MessageID == "" {
			return nil, errors.New("alert update without alert_id or message_id")
		}
		ev.Kind, ev.Update, ev.AlertID, ev.ID = KindUpdate, &u, u.AlertID, u.MessageID
	default:
		var r publish.Result
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("decode alert: %w", err)
		}
		if r.MessageID == "" || r.Priority != rest {
			return nil, fmt.Errorf("alert on %s: message_id present %t, priority %q", subject, r.MessageID != "", r.Priority)
		}
		ev.Kind, ev.Alert, ev.AlertID, ev.ID = KindAlert, &r, r.MessageID, r.MessageID
	}
	ms, p, ok := SplitAlertID(ev.AlertID)
	if !ok {
		return nil, fmt.Errorf("%s message: alert ID does not end with :<model set>:<priority>", ev.Kind)
	}
	ev.ModelSet, ev.Priority = ms, p
	if ev.Kind == KindAlert && ev.Alert.Priority != p {
		return nil, fmt.Errorf("alert priority %q differs from its ID's %q", ev.Alert.Priority, p)
	}
	ev.TriageID = TriageID(key, ev.AlertID)
	return ev, nil
}
