package publish

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/bus"
)

// UpdateSchema is the schema of follow-ups to an alert.
const UpdateSchema = "triaged.update/v1"

// CropWindow is where a heatmap lies in the film, in film pixels.
type CropWindow struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Update follows an alert on <prefix>.alert.update with what was not ready
// when the alert went out (a late occlusion heatmap). AlertID is the alert's
// message ID.
type Update struct {
	Schema      string       `json:"schema"`
	Kind        string       `json:"kind"` // update
	MessageID   string       `json:"message_id"`
	AlertID     string       `json:"alert_id"`
	Source      Source       `json:"source"`
	Film        Film         `json:"film"`
	Score       float64      `json:"score"`
	Priority    string       `json:"priority"`
	ModelSet    string       `json:"model_set"`
	Attachments []Attachment `json:"attachments"`
	Notes       []string     `json:"notes,omitempty"` // why an attachment is missing
	HeatmapMS   float64      `json:"heatmap_ms"`
	At          time.Time    `json:"at"`
	Daemon      string       `json:"daemon"`
	Host        string       `json:"host"`
}

// UpdateID is the message ID of an alert's update carrying what: stable, so
// re-processing the film after a crash does not publish it twice.
func UpdateID(alertID, what string) string { return alertID + ":update:" + what }

// PublishUpdate stores an alert's update and waits for its PubAck.
func (p *Publisher) PublishUpdate(ctx context.Context, u *Update) (Published, error) {
	if u.MessageID == "" || u.AlertID == "" {
		return Published{}, errors.New("update without message ID or alert ID")
	}
	hdr := map[string]string{"Triaged-Priority": u.Priority, "Triaged-Model-Set": u.ModelSet}
	return p.publish(ctx, p.Subject(SubjectUpdate), u.MessageID, UpdateSchema, u, hdr)
}

// Attachments stores alert attachments in a JetStream object store bucket.
type Attachments struct {
	obs     jetstream.ObjectStore
	bucket  string
	timeout time.Duration
}

// EnsureBucket creates or updates the attachment bucket (ManageStreams), or
// checks that an operator-managed one exists.
func (p *Publisher) EnsureBucket(ctx context.Context, o bus.StreamSpec) (*Attachments, error) {
	obs, err := bus.EnsureObjectStore(ctx, p.JS, o, "triaged alert attachments (heatmaps); same access rules as the alerts", p.opts.ManageStreams)
	if err != nil {
		return nil, err
	}
	return &Attachments{obs: obs, bucket: o.Name, timeout: p.opts.Timeout}, nil
}

// Bucket is the bucket's name.
func (a *Attachments) Bucket() string { return a.bucket }

// Put stores data under name and returns its reference, once every chunk
// and the object's metadata are stored. An object already complete under
// that name is kept and referenced instead: a film processed again after a
// crash must not change a heatmap an alert already points at (and whose
// sha256 it carries).
func (a *Attachments) Put(ctx context.Context, name, contentType string, data []byte) (Attachment, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	info, err := a.obs.GetInfo(ctx, name)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrObjectNotFound):
		info, err = a.obs.Put(ctx, jetstream.ObjectMeta{
			Name:     name,
			Metadata: map[string]string{"content_type": contentType},
		}, strings.NewReader(string(data)))
		if err != nil {
			return Attachment{}, fmt.Errorf("store attachment %s in %s: %w", name, a.bucket, err)
		}
	default:
		return Attachment{}, fmt.Errorf("look up attachment %s in %s: %w", name, a.bucket, err)
	}
	sum, err := digestHex(info.Digest)
	if err != nil {
		return Attachment{}, fmt.Errorf("attachment %s: %w", name, err)
	}
	ct := contentType
	if v := info.Metadata["content_type"]; v != "" {
		ct = v
	}
	return Attachment{Bucket: a.bucket, Name: name, Size: int64(info.Size), SHA256: sum, ContentType: ct}, nil
}

// digestHex turns an object store digest ("SHA-256=<base64url>") into hex.
func digestHex(d string) (string, error) {
	b64, ok := strings.CutPrefix(d, "SHA-256=")
	if !ok {
		return "", fmt.Errorf("digest %q is not SHA-256", d)
	}
	b, err := base64.URLEncoding.DecodeString(b64)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("digest %q is not a SHA-256", d)
	}
	return hex.EncodeToString(b), nil
}

// AttachmentKey is the object-name prefix of a result's attachments: a hash
// of its message ID, so object names carry no UID, are the same every time
// the instance is scored with the same models, and differ otherwise.
func AttachmentKey(resultID string) string {
	h := sha256.Sum256([]byte(resultID))
	return hex.EncodeToString(h[:16])
}

// FetchAttachment reads an attachment and checks it against its reference
// (size and sha256), so a consumer never shows a heatmap other than the
// one the alert was published with.
func FetchAttachment(ctx context.Context, js jetstream.JetStream, a Attachment) ([]byte, error) {
	obs, err := js.ObjectStore(ctx, a.Bucket)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", a.Bucket, err)
	}
	b, err := obs.GetBytes(ctx, a.Name)
	if err != nil {
		return nil, fmt.Errorf("fetch %s from %s: %w", a.Name, a.Bucket, err)
	}
	if int64(len(b)) != a.Size {
		return nil, fmt.Errorf("attachment %s: %d bytes, the alert says %d", a.Name, len(b), a.Size)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != a.SHA256 {
		return nil, fmt.Errorf("attachment %s: sha256 does not match the alert's", a.Name)
	}
	return b, nil
}
