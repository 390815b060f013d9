package publish

import (
	"context"
	"errors"
	"time"
)

// AckSchema is the acknowledgement event's schema.
const AckSchema = "triaged.ack/v1"

// SubjectAck carries acknowledgements: a person has seen an alerted film.
// It lies under alert.> so the alerts stream stores it beside the alerts it
// ends, and every delivery consuming that stream replays it in order.
const SubjectAck = "alert.ack"

// Ack says that a person has seen an alerted film. Deliveries resolve the
// alert (Alertmanager endsAt, PagerDuty resolve); the worklist marks it.
type Ack struct {
	Schema    string    `json:"schema"`
	Kind      string    `json:"kind"`       // ack
	MessageID string    `json:"message_id"` // AckID(AlertID)
	AlertID   string    `json:"alert_id"`   // the alert's message ID
	ResultID  string    `json:"result_id,omitempty"`
	By        string    `json:"by"`  // who: a user name, never patient data
	Via       string    `json:"via"` // cli, worklist, ttl
	Note      string    `json:"note,omitempty"`
	At        time.Time `json:"at"`
}

// AckID is an acknowledgement's message ID: the first acknowledgement of
// an alert within the duplicate window is the one stored.
func AckID(alertID string) string { return alertID + ":ack" }

// PublishAck stores an acknowledgement and waits for its PubAck.
func (p *Publisher) PublishAck(ctx context.Context, a *Ack) (Published, error) {
	if a.AlertID == "" || a.By == "" {
		return Published{}, errors.New("acknowledgement without alert ID or user")
	}
	a.Schema, a.Kind = AckSchema, "ack"
	if a.MessageID == "" {
		a.MessageID = AckID(a.AlertID)
	}
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	return p.publish(ctx, p.Subject(SubjectAck), a.MessageID, AckSchema, a, map[string]string{"Triaged-Alert-Id": a.AlertID})
}
