// Package publish writes triaged's results, alerts and events to JetStream
// and reads them back for operators. It owns the message schema and the
// subject layout; both are documented in README.md.
package publish

import "time"

// Schema versions carried in every message's "schema" field and header.
const (
	ResultSchema = "triaged.result/v1"
	EventSchema  = "triaged.event/v1"
)

// Subjects under the configured prefix.
const (
	SubjectResult  = "result"       // every scored film
	SubjectAlert   = "alert"        // alert.<priority>: positive films
	SubjectSkipped = "skipped"      // films handled without scoring (routing filter)
	SubjectError   = "error"        // films that could not be processed
	SubjectUpdate  = "alert.update" // follow-ups to an alert (late heatmaps)
	// SubjectShadowResult carries shadow results (Result.Shadow): a
	// candidate model set's, or every result of a daemon in shadow
	// (config shadow.all). In the results stream; nothing alerts on it.
	SubjectShadowResult = "shadow.result"
)

// Source says where a film came from. File is the base name the sender
// gave it; it is part of the clinical message, never of logs.
type Source struct {
	Kind   string `json:"kind"` // folder or nats
	Name   string `json:"name"` // folder path or subject
	File   string `json:"file,omitempty"`
	FilmID string `json:"film_id"` // the daemon's own ingest ID
	// Sender is what the film's producer said about itself (NATS intake:
	// the Triaged-Source header).
	Sender string `json:"sender,omitempty"`
}

// Film identifies the DICOM instance.
type Film struct {
	StudyInstanceUID  string `json:"study_instance_uid"`
	SeriesInstanceUID string `json:"series_instance_uid"`
	SOPInstanceUID    string `json:"sop_instance_uid"`
	SOPClassUID       string `json:"sop_class_uid,omitempty"`
	Modality          string `json:"modality,omitempty"`
	BodyPart          string `json:"body_part,omitempty"`
	ViewPosition      string `json:"view_position,omitempty"`
	DICOMPriority     string `json:"dicom_priority,omitempty"`
	TransferSyntax    string `json:"transfer_syntax,omitempty"`
	Rows              int    `json:"rows,omitempty"`
	Columns           int    `json:"columns,omitempty"`
}

// ModelScore is one model's probability of COVID-19.
type ModelScore struct {
	Name        string  `json:"name"`
	Version     string  `json:"version"`
	Provider    string  `json:"provider"`
	Probability float64 `json:"probability"`
}

// Thresholds are the operating points the priority was decided with.
type Thresholds struct {
	Urgent       float64 `json:"urgent"`
	Critical     float64 `json:"critical"`
	CalibratedOn string  `json:"calibrated_on,omitempty"`
}

// Timings are per-stage durations in milliseconds.
type Timings struct {
	QueueMS      float64 `json:"queue_ms"`
	DecodeMS     float64 `json:"decode_ms"`
	PreprocessMS float64 `json:"preprocess_ms"`
	InferenceMS  float64 `json:"inference_ms"`
	HeatmapMS    float64 `json:"heatmap_ms"`
	TotalMS      float64 `json:"total_ms"` // claim to just before publishing
	BatchSize    int     `json:"batch_size"`
}

// Decode describes a reduced-resolution decode (config decode.resolution).
type Decode struct {
	// Reduced is the number of JPEG 2000 resolution levels left out: the
	// model's preprocessing started from an image of about 1/2^Reduced of
	// the film's rows and columns.
	Reduced int `json:"reduced"`
}

// Attachment references a heatmap stored in the JetStream object store.
type Attachment struct {
	Kind        string `json:"kind"`   // overlay or raw
	Method      string `json:"method"` // cam or occlusion
	Model       string `json:"model,omitempty"`
	Bucket      string `json:"bucket"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`

	// Unit of the values (raw maps), and where the map lies in the film.
	Unit string      `json:"unit,omitempty"`
	Crop *CropWindow `json:"crop,omitempty"`
}

// Result is published for every scored film on <prefix>.result, and for a
// positive one also on <prefix>.alert.<priority>.
type Result struct {
	Schema         string       `json:"schema"`
	Kind           string       `json:"kind"` // result or alert
	MessageID      string       `json:"message_id"`
	Source         Source       `json:"source"`
	Film           Film         `json:"film"`
	Models         []ModelScore `json:"models"`
	Score          float64      `json:"score"` // ensemble: mean P(COVID-19)
	Priority       string       `json:"priority"`
	PriorityReason string       `json:"priority_reason"`
	Thresholds     Thresholds   `json:"thresholds"`
	ModelSet       string       `json:"model_set"`
	Timings        Timings      `json:"timings"`
	Attachments    []Attachment `json:"attachments,omitempty"`
	ScoredAt       time.Time    `json:"scored_at"`
	Daemon         string       `json:"daemon"` // triaged version
	Host           string       `json:"host"`

	// PendingAttachments name heatmaps that follow on <prefix>.alert.update
	// (e.g. "occlusion"); HeatmapNotes say why one is missing.
	PendingAttachments []string `json:"pending_attachments,omitempty"`
	HeatmapNotes       []string `json:"heatmap_notes,omitempty"`

	// Shadow marks a result that had no consequence: stored on
	// <prefix>.shadow.result only, no alert, no heatmap, no delivery
	// (a candidate model set, or a daemon in shadow). Absent: false, so
	// v1 readers are unaffected.
	Shadow bool `json:"shadow,omitempty"`
	// NotAssessable is the input-quality gate's reason code (blank,
	// uniform, too_small, outside_calibration) on a film whose Priority is
	// PriorityNotAssessable: it was decoded but not scored (Score 0, no
	// Models), raised no alert, and needs a human look. PriorityReason says
	// what was measured. Absent on every scored film.
	NotAssessable string `json:"not_assessable,omitempty"`
	// Decode says how the film's pixels were decoded when that was not at
	// full size (absent: full size, bit for bit as the reference).
	Decode *Decode `json:"decode,omitempty"`
}

// PriorityNotAssessable is the priority of a film the input-quality gate
// stopped (see Result.NotAssessable).
const PriorityNotAssessable = "not_assessable"

// Event is published on <prefix>.skipped and <prefix>.error.
type Event struct {
	Schema    string    `json:"schema"`
	Kind      string    `json:"kind"` // skipped or error
	MessageID string    `json:"message_id"`
	Source    Source    `json:"source"`
	Film      *Film     `json:"film,omitempty"`
	Code      string    `json:"code"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	Daemon    string    `json:"daemon"`
	Host      string    `json:"host"`
}
