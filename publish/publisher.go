package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
)

// Options configure the publisher.
type Options struct {
	Prefix        string
	Results       bus.StreamSpec // result, skipped, error
	Alerts        bus.StreamSpec // alert.>
	ManageStreams bool
	Timeout       time.Duration
	// Shadow adds <prefix>.shadow.result to the results stream (config
	// shadow; an operator-managed stream must then capture it too).
	Shadow bool
}

// Publisher publishes to JetStream and returns only once the server has
// stored the message (PubAck), which is what lets the caller acknowledge
// the input.
type Publisher struct {
	JS   jetstream.JetStream
	opts Options
}

// New wraps a connection.
func New(nc *nats.Conn, o Options) (*Publisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream context: %w", err)
	}
	return &Publisher{JS: js, opts: o}, nil
}

// Subject returns <prefix>.<s>.
func (p *Publisher) Subject(s string) string { return p.opts.Prefix + "." + s }

func (p *Publisher) streams() []bus.Stream {
	results := []string{p.Subject(SubjectResult), p.Subject(SubjectSkipped), p.Subject(SubjectError)}
	if p.opts.Shadow {
		results = append(results, p.Subject(SubjectShadowResult))
	}
	return []bus.Stream{
		{Spec: p.opts.Results, Subjects: results,
			Description: "triaged results, skipped and error events", NeedDuplicates: true},
		{Spec: p.opts.Alerts, Subjects: []string{p.Subject(SubjectAlert) + ".>"},
			Description: "triaged alerts, their updates and acknowledgements", NeedDuplicates: true},
	}
}

// EnsureStreams creates or updates the streams (ManageStreams), or checks
// that operator-managed ones exist and cover the daemon's subjects.
func (p *Publisher) EnsureStreams(ctx context.Context) error {
	for _, s := range p.streams() {
		if err := bus.EnsureStream(ctx, p.JS, s, p.opts.ManageStreams); err != nil {
			return err
		}
	}
	return nil
}

// Published is the outcome of one stored message.
type Published struct {
	Subject   string
	Stream    string
	Sequence  uint64
	Duplicate bool // the stream already held this message ID
}

// publish stores one message and waits for its PubAck.
func (p *Publisher) publish(ctx context.Context, subject, msgID, schema string, v any, hdr map[string]string) (Published, error) {
	data, err := Encode(v)
	if err != nil {
		return Published{}, fmt.Errorf("encode %s message: %w", subject, err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, msgID)
	m.Header.Set("Triaged-Schema", schema)
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	ack, err := p.JS.PublishMsg(ctx, m)
	if err != nil {
		// Not the message ID: it holds the SOP Instance UID, and this error
		// is logged.
		return Published{}, fmt.Errorf("publish %s: %w", subject, err)
	}
	return Published{Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// ResultID is the message ID of a film's result: SOP Instance UID and model
// set, so scoring the same instance with the same models again is dropped by
// JetStream's deduplication.
func ResultID(sopUID, modelSet string) string { return sopUID + ":" + modelSet }

// AlertID adds the priority: an instance alerts at most once per priority.
func AlertID(sopUID, modelSet, priority string) string {
	return sopUID + ":" + modelSet + ":" + priority
}

// PublishResult stores the alert (for a positive film) and then the result.
// Both must be acknowledged before the input may be.
func (p *Publisher) PublishResult(ctx context.Context, r *Result, positive bool) ([]Published, error) {
	if r.Shadow {
		pr, err := p.PublishShadow(ctx, r)
		if err != nil {
			return nil, err
		}
		return []Published{pr}, nil
	}
	var out []Published
	hdr := map[string]string{"Triaged-Priority": r.Priority, "Triaged-Model-Set": r.ModelSet}
	if positive {
		a := *r
		a.Kind = "alert"
		a.MessageID = AlertID(r.Film.SOPInstanceUID, r.ModelSet, r.Priority)
		pa, err := p.publish(ctx, p.Subject(SubjectAlert+"."+r.Priority), a.MessageID, ResultSchema, &a, hdr)
		if err != nil {
			return out, err
		}
		out = append(out, pa)
	}
	r.Kind = "result"
	r.MessageID = ResultID(r.Film.SOPInstanceUID, r.ModelSet)
	pr, err := p.publish(ctx, p.Subject(SubjectResult), r.MessageID, ResultSchema, r, hdr)
	if err != nil {
		return out, err
	}
	return append(out, pr), nil
}

// PublishEvent stores a skipped or error event.
func (p *Publisher) PublishEvent(ctx context.Context, e *Event) (Published, error) {
	subj := SubjectError
	if e.Kind == "skipped" {
		subj = SubjectSkipped
	}
	if e.MessageID == "" {
		return Published{}, errors.New("event without message ID")
	}
	return p.publish(ctx, p.Subject(subj), e.MessageID, EventSchema, e, map[string]string{"Triaged-Code": e.Code})
}

// Encode renders a message as compact JSON, without HTML escaping (reasons
// contain ">=").
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
