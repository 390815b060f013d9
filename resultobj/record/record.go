// Package record keeps a film's DICOM result objects (package resultobj)
// in the record, JetStream, for the PACS deliveries to send: each object
// in an object store bucket under its SOP Instance UID (a re-scored film
// replaces its objects), then one message per film on
// <prefix>.objects.<priority> in its own stream naming them, with a
// message ID that deduplicates. The daemon stores (Store.Put) before it
// acknowledges the film; a delivery consumes the messages and reads the
// objects back (Fetch).
//
// The messages carry UIDs, the model set and the priority, never patient
// attributes; the objects themselves do (they are clinical output), so the
// bucket has the same access rules as the results.
package record

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/resultobj"
)

// Schema of the messages naming a film's result objects.
const Schema = "triaged.result-objects/v1"

// Defaults of the bucket and the stream.
const (
	DefaultBucket = "TRIAGED_RESULT_OBJECTS"
	DefaultStream = "TRIAGED_OBJECTS"
	// Subject is what follows the prefix: objects.<priority>.
	Subject = "objects"
)

// Ref names one stored object.
type Ref struct {
	Kind              string `json:"kind"` // sr or sc
	SOPClassUID       string `json:"sop_class_uid"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	TransferSyntaxUID string `json:"transfer_syntax_uid"`
	Bucket            string `json:"bucket"`
	Name              string `json:"name"` // object name: the SOP Instance UID
	Size              int64  `json:"size"`
	SHA256            string `json:"sha256"`
}

// Message says that a film's result objects are stored.
type Message struct {
	Schema    string `json:"schema"`
	MessageID string `json:"message_id"`
	// The source film's study and instance: the objects go into its study.
	StudyInstanceUID string    `json:"study_instance_uid"`
	SOPInstanceUID   string    `json:"sop_instance_uid"`
	ModelSet         string    `json:"model_set"`
	Priority         string    `json:"priority"`
	Objects          []Ref     `json:"objects"`
	At               time.Time `json:"at"`
	Daemon           string    `json:"daemon,omitempty"`
	Host             string    `json:"host,omitempty"`
}

// MessageID of a film's objects message: the SR's SOP Instance UID, which
// derives from the film and the model set, so a film processed again
// within the stream's duplicate window (a crash, a resend) is announced
// once. Its objects in the bucket are replaced by the newest build, and a
// delivery always sends what the bucket holds.
func MessageID(srInstance string) string { return "objects:" + srInstance }

// Options say where the objects are kept.
type Options struct {
	Prefix string
	// Bucket holds the objects, Stream the messages (<prefix>.objects.>);
	// both take Replicas and MaxAge (0: kept until removed).
	Bucket, Stream  string
	Replicas        int
	MaxAge          time.Duration
	DuplicateWindow time.Duration // of the stream (0: 2m, JetStream's default)
	Memory          bool
	// ManageStreams creates or updates them; false only checks they exist.
	ManageStreams bool
	Timeout       time.Duration // of each store (0: 10s)
}

func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = "triaged"
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
}

// SubjectFilter is what the stream captures and a delivery consumes.
func SubjectFilter(prefix string) string { return prefix + "." + Subject + ".>" }

// Store puts result objects into the record.
type Store struct {
	js   jetstream.JetStream
	obs  jetstream.ObjectStore
	opts Options
}

// Open creates (or checks) the bucket and the stream.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	o.defaults()
	spec := bus.StreamSpec{Name: o.Bucket, Replicas: o.Replicas, MaxAge: o.MaxAge, Memory: o.Memory}
	obs, err := bus.EnsureObjectStore(ctx, js, spec, "triaged DICOM result objects (SR, SC) for the PACS deliveries; same access rules as the results", o.ManageStreams)
	if err != nil {
		return nil, err
	}
	ss := spec
	ss.Name, ss.DuplicateWindow = o.Stream, o.DuplicateWindow
	if err := bus.EnsureStream(ctx, js, bus.Stream{Spec: ss, Subjects: []string{SubjectFilter(o.Prefix)},
		Description: "triaged: result objects stored for the PACS deliveries", NeedDuplicates: true}, o.ManageStreams); err != nil {
		return nil, err
	}
	return &Store{js: js, obs: obs, opts: o}, nil
}

// Put stores every object, then the message naming them, and returns it
// and whether the stream already held it (a film processed again). An
// object stored again replaces the one under its name. A failure is
// retryable: nothing half-stored is ever announced.
func (s *Store) Put(ctx context.Context, objs *resultobj.Objects, priority, modelSet, studyUID, sopUID, daemon, host string) (*Message, bool, error) {
	msg := &Message{Schema: Schema, StudyInstanceUID: studyUID, SOPInstanceUID: sopUID, ModelSet: modelSet,
		Priority: priority, At: time.Now().UTC(), Daemon: daemon, Host: host}
	for _, o := range objs.List() {
		kind := "sr"
		if o.SOPClassUID == resultobj.SecondaryCaptureStorage {
			kind = "sc"
		}
		ref, err := s.putObject(ctx, kind, o)
		if err != nil {
			return nil, false, err
		}
		msg.Objects = append(msg.Objects, ref)
	}
	if len(msg.Objects) == 0 {
		return nil, false, errors.New("record: no result objects to store")
	}
	msg.MessageID = MessageID(objs.UIDs.SRInstance)
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, false, err
	}
	m := nats.NewMsg(s.opts.Prefix + "." + Subject + "." + priority)
	m.Data = data
	m.Header.Set(nats.MsgIdHdr, msg.MessageID)
	m.Header.Set("Triaged-Schema", Schema)
	pctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	ack, err := s.js.PublishMsg(pctx, m)
	if err != nil {
		// Not the message ID: it holds a UID, and this error is logged.
		return nil, false, fmt.Errorf("record: publish result objects message: %w", err)
	}
	return msg, ack.Duplicate, nil
}

func (s *Store) putObject(ctx context.Context, kind string, o resultobj.Object) (Ref, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	sum := sha256.Sum256(o.File)
	ref := Ref{Kind: kind, SOPClassUID: o.SOPClassUID, SOPInstanceUID: o.SOPInstanceUID, TransferSyntaxUID: o.TransferSyntaxUID,
		Bucket: s.opts.Bucket, Name: o.SOPInstanceUID, Size: int64(len(o.File)), SHA256: hex.EncodeToString(sum[:])}
	// The same bytes already stored (a film processed again): keep them.
	if info, err := s.obs.GetInfo(ctx, ref.Name); err == nil && !info.Deleted && int64(info.Size) == ref.Size && digestIs(info.Digest, sum[:]) {
		return ref, nil
	}
	if _, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: ref.Name, Metadata: map[string]string{
		"content_type": "application/dicom", "sop_class_uid": o.SOPClassUID, "kind": kind,
	}}, bytes.NewReader(o.File)); err != nil {
		return Ref{}, fmt.Errorf("record: store %s object in %s: %w", kind, s.opts.Bucket, err)
	}
	return ref, nil
}

func digestIs(d string, sum []byte) bool {
	b64, ok := strings.CutPrefix(d, "SHA-256=")
	return ok && b64 == encodeDigest(sum)
}

// MaxMessage bounds a message a delivery decodes.
const MaxMessage = 64 << 10

// Decode reads a message from the stream, checking what a delivery
// relies on.
func Decode(data []byte) (*Message, error) {
	if len(data) > MaxMessage {
		return nil, fmt.Errorf("record: message of %d bytes, at most %d", len(data), MaxMessage)
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("record: decode message: %w", err)
	}
	if m.Schema != Schema {
		return nil, fmt.Errorf("record: schema %q, want %q", m.Schema, Schema)
	}
	if len(m.Objects) == 0 || len(m.Objects) > 8 {
		return nil, fmt.Errorf("record: %d objects in a message, want 1 to 8", len(m.Objects))
	}
	for i, o := range m.Objects {
		if o.Bucket == "" || o.Name == "" || o.SOPClassUID == "" || o.SOPInstanceUID == "" || o.TransferSyntaxUID == "" {
			return nil, fmt.Errorf("record: object %d lacks its bucket, name, SOP class, SOP instance or transfer syntax", i)
		}
		if o.Size <= 0 || o.Size > MaxObject {
			return nil, fmt.Errorf("record: object %d claims %d bytes, at most %d", i, o.Size, MaxObject)
		}
	}
	return &m, nil
}

// MaxObject bounds an object's size: an SR is kilobytes, an SC a few
// megabytes.
const MaxObject = 64 << 20

// ErrGone: an object named by a message is no longer in its bucket (its
// max_age passed, or it was removed).
var ErrGone = errors.New("record: result object no longer stored")

// Fetch reads the objects a message names, in order, as resultobj.Objects
// ready to send. An object replaced since (a re-score) is read as it is
// now: the newest result goes to the PACS.
func Fetch(ctx context.Context, js jetstream.JetStream, m *Message) ([]resultobj.Object, error) {
	var out []resultobj.Object
	stores := map[string]jetstream.ObjectStore{}
	for _, r := range m.Objects {
		obs, ok := stores[r.Bucket]
		if !ok {
			var err error
			if obs, err = js.ObjectStore(ctx, r.Bucket); err != nil {
				return nil, fmt.Errorf("record: object store %s: %w", r.Bucket, err)
			}
			stores[r.Bucket] = obs
		}
		info, err := obs.GetInfo(ctx, r.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("%w: %s object in %s", ErrGone, r.Kind, r.Bucket)
		}
		if err != nil {
			return nil, fmt.Errorf("record: look up %s object in %s: %w", r.Kind, r.Bucket, err)
		}
		if info.Size > MaxObject {
			return nil, fmt.Errorf("record: %s object in %s holds %d bytes, at most %d", r.Kind, r.Bucket, info.Size, MaxObject)
		}
		b, err := obs.GetBytes(ctx, r.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil, fmt.Errorf("%w: %s object in %s", ErrGone, r.Kind, r.Bucket)
		}
		if err != nil {
			return nil, fmt.Errorf("record: fetch %s object from %s: %w", r.Kind, r.Bucket, err)
		}
		out = append(out, resultobj.Object{SOPClassUID: r.SOPClassUID, SOPInstanceUID: r.SOPInstanceUID, TransferSyntaxUID: r.TransferSyntaxUID, File: b})
	}
	return out, nil
}

func encodeDigest(sum []byte) string { return base64.URLEncoding.EncodeToString(sum) }
