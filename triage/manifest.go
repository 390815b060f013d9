// Package triage scores preprocessed films with the Deep-COVID models through
// ONNX Runtime: model manifests, sessions, dynamic batching, the ensemble and
// the priority a score earns.
package triage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/triaged/triaged/drift"
)

// ManifestSchema is the manifest format this daemon reads.
const ManifestSchema = "triaged.model/v1"

// Manifest describes one model; it lives next to the ONNX file as
// manifest.json and is written by training/export.py.
type Manifest struct {
	Schema       string     `json:"schema"`
	Name         string     `json:"name"`
	Architecture string     `json:"architecture"`
	Version      string     `json:"version"`
	File         string     `json:"file"`
	SHA256       string     `json:"sha256"`
	Input        IOSpec     `json:"input"`
	Outputs      OutputSpec `json:"outputs"`
	Labels       []string   `json:"labels"`
	COVIDIndex   int        `json:"covid_index"`
	Thresholds   Thresholds `json:"thresholds"`
	// Training is free-form provenance (mode, epochs, data split, metrics).
	Training json.RawMessage `json:"training,omitempty"`
	// Drift is the calibration distribution (scores and input statistics)
	// that `triaged model calibrate -write` stores and the daemon's drift
	// watch compares recent films with; absent in older manifests.
	Drift *drift.Profile `json:"drift,omitempty"`
}

// IOSpec names the input tensor and its expected preprocessing.
type IOSpec struct {
	Name  string    `json:"name"`
	Shape []int64   `json:"shape"`
	Mean  []float64 `json:"mean"`
	Std   []float64 `json:"std"`
}

// OutputSpec names the model outputs. Probs is required; CAM (per-class
// activation maps, N x classes x h x w) is optional.
type OutputSpec struct {
	Logits   string `json:"logits,omitempty"`
	Probs    string `json:"probs"`
	Features string `json:"features,omitempty"`
	CAM      string `json:"cam,omitempty"`
}

// Thresholds are operating points on P(COVID-19), calibrated on a
// validation set: urgent at >= 98% sensitivity, critical at >= 99% specificity.
type Thresholds struct {
	Urgent   float64 `json:"urgent"`
	Critical float64 `json:"critical"`
	// Provenance of the calibration, shown in results.
	UrgentSensitivity   float64 `json:"urgent_sensitivity,omitempty"`
	CriticalSpecificity float64 `json:"critical_specificity,omitempty"`
	CalibratedOn        string  `json:"calibrated_on,omitempty"`
}

// LoadManifest reads and checks dir/manifest.json. It does not hash the
// model file; Load does that on the bytes it actually loads.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model manifest %s: %w", path, err)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse model manifest %s: %w", path, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("model manifest %s: %w", path, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	var probs []string
	if m.Schema != ManifestSchema {
		probs = append(probs, fmt.Sprintf("schema %q, want %q", m.Schema, ManifestSchema))
	}
	if m.Name == "" || m.Version == "" || m.File == "" {
		probs = append(probs, "name, version and file are required")
	}
	if strings.ContainsAny(m.File, "/\\") || m.File == ".." {
		probs = append(probs, fmt.Sprintf("file %q must be a plain file name in the model directory", m.File))
	}
	if len(m.SHA256) != 64 {
		probs = append(probs, "sha256 must be 64 hex digits")
	}
	if m.Input.Name == "" || m.Outputs.Probs == "" {
		probs = append(probs, "input.name and outputs.probs are required")
	}
	if m.COVIDIndex < 0 || m.COVIDIndex >= len(m.Labels) {
		probs = append(probs, fmt.Sprintf("covid_index %d outside labels %v", m.COVIDIndex, m.Labels))
	}
	t := m.Thresholds
	if t.Urgent <= 0 || t.Urgent >= 1 || t.Critical <= 0 || t.Critical >= 1 || t.Critical < t.Urgent {
		probs = append(probs, fmt.Sprintf("thresholds must satisfy 0 < urgent (%g) <= critical (%g) < 1", t.Urgent, t.Critical))
	}
	if m.Drift != nil {
		if err := m.Drift.Check(); err != nil {
			probs = append(probs, err.Error())
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// ModelSetVersion identifies a set of models independently of their order:
// it is part of every result's message ID, so re-scoring a film with the same
// models deduplicates and a new model set publishes anew.
func ModelSetVersion(ms []*Manifest) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Name + "@" + m.Version + ":" + m.SHA256
	}
	sort.Strings(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return "ms-" + hex.EncodeToString(h[:6])
}
