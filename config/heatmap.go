package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Heatmap configures the heatmaps attached to alerts (see docs/heatmaps.md).
type Heatmap struct {
	// Enabled attaches a class activation map (free: it comes out of the
	// scoring pass) to every alert, and occlusion maps per Occlusion.Budget.
	Enabled bool `yaml:"enabled"`
	// Bucket is the JetStream object store holding the attachments. Its
	// max_age is their retention.
	Bucket Bucket `yaml:"bucket"`
	// MaxSide bounds the overlay's longer side in pixels.
	MaxSide int `yaml:"max_side"`
	// Alpha is the opacity of the hottest color over the film.
	Alpha float64 `yaml:"alpha"`
	// Colormap: inferno, viridis or magma (perceptually uniform).
	Colormap  string    `yaml:"colormap"`
	Occlusion Occlusion `yaml:"occlusion"`
}

// Bucket is an object store bucket.
type Bucket struct {
	Name     string        `yaml:"name"`
	Replicas int           `yaml:"replicas"`
	MaxAge   time.Duration `yaml:"max_age"`
	Storage  string        `yaml:"storage"`
}

// Occlusion configures occlusion sensitivity maps.
type Occlusion struct {
	// Size (N) and Stride (S) of the occluding patch, in pixels of the
	// 224x224 model input: ((224-N)/S+1)^2 forward passes per film and model.
	Size   int `yaml:"size"`
	Stride int `yaml:"stride"`
	// Fill is what the patch holds: "mean" (zero in the normalised input,
	// the ImageNet mean) or a gray level 0-255.
	Fill string `yaml:"fill"`
	// BatchSize is the number of occluded copies per ONNX Runtime call.
	BatchSize int `yaml:"batch_size"`
	// Budget says, per priority, whether alerts get an occlusion map and
	// how long the alert may wait for it. A map not ready in time follows
	// the alert as an update on <prefix>.alert.update.
	Budget OcclusionBudget `yaml:"budget"`
	// MaxPending bounds the occlusion maps queued or in progress; a film
	// arriving beyond it gets the CAM only, and its alert says so.
	MaxPending int `yaml:"max_pending"`
}

// OcclusionBudget is the occlusion budget of each alerting priority.
type OcclusionBudget struct {
	Critical Budget `yaml:"critical"`
	Urgent   Budget `yaml:"urgent"`
}

// For returns the budget of a priority (off for any other).
func (b OcclusionBudget) For(priority string) Budget {
	switch priority {
	case "critical":
		return b.Critical
	case "urgent":
		return b.Urgent
	}
	return BudgetOff
}

// Budget is how long an alert may wait for its occlusion map: a duration
// (0: never wait, always send it as an update), or "off": no occlusion map.
type Budget time.Duration

// BudgetOff is the "off" budget.
const BudgetOff Budget = -1

// On reports whether the priority gets occlusion maps at all.
func (b Budget) On() bool { return b >= 0 }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *Budget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.Value == "off" || n.Value == "false") {
		*b = BudgetOff
		return nil
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is neither a duration (e.g. 2s) nor off", n.Line, n.Value)}}
	}
	*b = Budget(d)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b Budget) MarshalYAML() (any, error) { return b.String(), nil }

func (b Budget) String() string {
	if !b.On() {
		return "off"
	}
	return time.Duration(b).String()
}

var bucketNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (h *Heatmap) validate(add func(path string, v any, msg string, args ...any)) {
	if !bucketNameRe.MatchString(h.Bucket.Name) {
		add("heatmap.bucket.name", h.Bucket.Name, "must be letters, digits, _ or - only")
	}
	if h.Bucket.Replicas < 1 || h.Bucket.Replicas > 5 {
		add("heatmap.bucket.replicas", h.Bucket.Replicas, "must be between 1 and 5")
	}
	if h.Bucket.MaxAge < 0 {
		add("heatmap.bucket.max_age", h.Bucket.MaxAge, "must not be negative (0 keeps attachments until deleted)")
	}
	if h.Bucket.Storage != "file" && h.Bucket.Storage != "memory" {
		add("heatmap.bucket.storage", h.Bucket.Storage, "must be file or memory")
	}
	if h.MaxSide < 256 || h.MaxSide > 8192 {
		add("heatmap.max_side", h.MaxSide, "must be between 256 and 8192 pixels")
	}
	if h.Alpha <= 0 || h.Alpha > 1 {
		add("heatmap.alpha", h.Alpha, "must be in (0, 1]")
	}
	switch h.Colormap {
	case "inferno", "viridis", "magma":
	default:
		add("heatmap.colormap", h.Colormap, "must be inferno, viridis or magma")
	}
	o := h.Occlusion
	if o.Size < 1 || o.Size > 224 {
		add("heatmap.occlusion.size", o.Size, "must be between 1 and 224 (pixels of the model input)")
	}
	if o.Stride < 1 || o.Stride > max(o.Size, 1) {
		add("heatmap.occlusion.stride", o.Stride, "must be between 1 and heatmap.occlusion.size (%d)", o.Size)
	}
	if f := strings.TrimSpace(o.Fill); f != "mean" {
		if g, err := strconv.Atoi(f); err != nil || g < 0 || g > 255 {
			add("heatmap.occlusion.fill", o.Fill, "must be mean or a gray level 0-255")
		}
	}
	if o.BatchSize < 1 || o.BatchSize > 256 {
		add("heatmap.occlusion.batch_size", o.BatchSize, "must be between 1 and 256")
	}
	for p, b := range map[string]Budget{"critical": o.Budget.Critical, "urgent": o.Budget.Urgent} {
		if b.On() && time.Duration(b) > 10*time.Minute {
			add("heatmap.occlusion.budget."+p, b, "must be off or between 0 (always as an update) and 10m")
		}
	}
	if o.MaxPending < 1 || o.MaxPending > 256 {
		add("heatmap.occlusion.max_pending", o.MaxPending, "must be between 1 and 256")
	}
}
