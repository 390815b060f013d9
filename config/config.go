// Package config holds triaged's configuration: its shape, its defaults (in
// Default, the one place they live), strict YAML loading that rejects unknown
// keys, and validation that reports every problem at once.
package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole daemon configuration. The YAML keys are the snake_case
// names in the struct tags; every field is documented in README.md.
type Config struct {
	Log         Log         `yaml:"log"`
	NATS        NATS        `yaml:"nats"`
	Ingest      Ingest      `yaml:"ingest"`
	Pipeline    Pipeline    `yaml:"pipeline"`
	Models      []Model     `yaml:"models"`
	Triage      Triage      `yaml:"triage"`
	ONNXRuntime ONNXRuntime `yaml:"onnxruntime"`
	Decode      Decode      `yaml:"decode"`
	Route       Route       `yaml:"route"`
	HTTP        HTTP        `yaml:"http"`
	Heatmap     Heatmap     `yaml:"heatmap"`
	// Worklist: the triage worklist page (config/worklist.go).
	Worklist Worklist `yaml:"worklist"`
	// Deliver: alerts to Alertmanager, webhooks and paging services
	// (config/deliver.go).
	Deliver DeliverConfig `yaml:"deliver"`
	// ResultObjects: DICOM SR and heatmap image per film (config/resultobj.go).
	ResultObjects ResultObjects `yaml:"result_objects"`
	// Shadow: a candidate model set scored beside the live one, or the
	// whole daemon without alerts (config/shadow.go).
	Shadow Shadow `yaml:"shadow"`
	// Quality: the input-quality gate; Drift: the drift watch (config/quality.go).
	Quality Quality `yaml:"quality"`
	Drift   Drift   `yaml:"drift"`

	// dir is the directory relative paths are resolved against: the config
	// file's directory, or the working directory for the embedded defaults.
	dir string
}

type Log struct {
	Level string `yaml:"level"`
	// PseudonymousIDs adds a keyed hash of the SOP Instance UID to log lines
	// so an operator can correlate them with results without the log ever
	// holding a real identifier. Off by default.
	PseudonymousIDs  bool   `yaml:"pseudonymous_ids"`
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
}

type NATS struct {
	// URL of an external NATS server or cluster (comma separated). Empty
	// starts the embedded server.
	URL            string        `yaml:"url"`
	Embedded       Embedded      `yaml:"embedded"`
	SubjectPrefix  string        `yaml:"subject_prefix"`
	ResultStream   Stream        `yaml:"result_stream"`
	AlertStream    Stream        `yaml:"alert_stream"`
	ManageStreams  bool          `yaml:"manage_streams"`
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	Name           string        `yaml:"name"`
	// Security for an external NATS (see docs/nats.md): secrets are read
	// from files, never written in the config.
	TLS             TLS    `yaml:"tls"`
	CredentialsFile string `yaml:"credentials_file"`
	NKeyFile        string `yaml:"nkey_file"`
	User            string `yaml:"user"`
	PasswordFile    string `yaml:"password_file"`
	TokenFile       string `yaml:"token_file"`
}

type Embedded struct {
	Listen   string `yaml:"listen"`
	StoreDir string `yaml:"store_dir"`
	// SyncAlways fsyncs every JetStream write before the PubAck, so an
	// acknowledged result survives a power cut, not just a process crash.
	SyncAlways bool `yaml:"sync_always"`
	// MaxStore caps the JetStream store (0: what the disk allows). MinFree
	// is the space the store leaves free on its filesystem: the daemon
	// keeps the store's limit at its usage plus the free space above it,
	// so a full disk refuses new messages cleanly instead of failing a
	// write (which nats-server does not recover from without a restart).
	MaxStore ByteSize `yaml:"max_store"`
	MinFree  ByteSize `yaml:"min_free"`
}

type Stream struct {
	Name     string        `yaml:"name"`
	Replicas int           `yaml:"replicas"`
	MaxAge   time.Duration `yaml:"max_age"`
	// DuplicateWindow bounds how long JetStream remembers message IDs. A film
	// re-processed after a crash is deduplicated only if it is re-published
	// within this window, so it must exceed the longest outage you expect.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	Storage         string        `yaml:"storage"`
}

type Ingest struct {
	Folders []Folder `yaml:"folders"`
	// Settle is how long a file's size and mtime must stay unchanged before it
	// is claimed, unless the kernel confirms no process has it open for writing.
	Settle         time.Duration `yaml:"settle"`
	RescanInterval time.Duration `yaml:"rescan_interval"`
	MaxFileSize    ByteSize      `yaml:"max_file_size"`
	NATS           NATSIngest    `yaml:"nats"`
	// DICOMweb is the STOW-RS intake (config/dicomweb.go).
	DICOMweb DICOMweb `yaml:"dicomweb"`
	// DIMSE is the C-STORE storage SCP intake (config/dimse.go).
	DIMSE DIMSEConfig `yaml:"dimse"`
}

type Folder struct {
	Path          string `yaml:"path"`
	ProcessingDir string `yaml:"processing_dir"`
	DoneDir       string `yaml:"done_dir"`
	FailedDir     string `yaml:"failed_dir"`
}

type Pipeline struct {
	// Workers is the number of films in flight at once (decode, score,
	// publish). 0 means 2 x CPUs.
	Workers       int      `yaml:"workers"`
	QueueCapacity int      `yaml:"queue_capacity"`
	DecodeMemory  ByteSize `yaml:"decode_memory"`
	// MemoryLimit is the Go runtime's soft memory limit (the collector runs
	// harder as the heap nears it; nothing fails). 0: GOMEMLIMIT, else 3/4
	// of the cgroup's memory.max (systemd's MemoryMax), else none.
	MemoryLimit  ByteSize      `yaml:"memory_limit"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// StallTimeout: a pipeline that has films in flight and has finished
	// none (and made no attempt to publish) for this long is wedged; the
	// systemd watchdog then goes unfed and /healthz fails.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// PoisonAfter: a film that was being decoded when the daemon died this
	// many times (a C codec crash cannot be recovered in Go) is quarantined
	// as poison_film instead of being decoded again at every start.
	PoisonAfter int `yaml:"poison_after"`
}

type Model struct {
	// Path is a model directory holding manifest.json and the ONNX file.
	Path string `yaml:"path"`
}

type Triage struct {
	BatchSize int           `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
	// CUDA: the batching used instead when every model runs on the CUDA
	// provider (config/cuda.go).
	CUDA CUDABatching `yaml:"cuda"`
	// Thresholds for the ensemble (mean COVID-19 probability). Zero means:
	// a single model's own calibrated thresholds, or for several models the
	// mean of theirs (run `triaged calibrate` to derive proper ones).
	UrgentThreshold   float64 `yaml:"urgent_threshold"`
	CriticalThreshold float64 `yaml:"critical_threshold"`
	// EscalateStat raises a positive film to critical when its DICOM
	// priority says STAT.
	EscalateStat bool `yaml:"escalate_stat"`
}

type ONNXRuntime struct {
	Library        string `yaml:"library"`
	Device         string `yaml:"device"`
	CUDADeviceID   int    `yaml:"cuda_device_id"`
	IntraOpThreads int    `yaml:"intra_op_threads"`
}

type Decode struct {
	MaxPixels int64 `yaml:"max_pixels"`
	// The limits below bound what one hostile file can make the decoder
	// do; see docs/dicom.md.
	MaxHeaderSize       ByteSize `yaml:"max_header_size"`
	MaxElements         int      `yaml:"max_elements"`
	MaxSequenceDepth    int      `yaml:"max_sequence_depth"`
	MaxCompressionRatio int      `yaml:"max_compression_ratio"`

	Resolution Resolution `yaml:"resolution"`
}

type HTTP struct {
	// Listen is the address of /metrics, /healthz and /readyz; empty turns
	// the HTTP endpoints off.
	Listen string `yaml:"listen"`
}

// Default returns the embedded defaults: an embedded NATS server and a drop
// folder under ./var, scoring with the shipped SqueezeNet.
func Default() *Config {
	return &Config{
		Log: Log{Level: "info"},
		NATS: NATS{
			Embedded: Embedded{
				Listen:     "127.0.0.1:4222",
				StoreDir:   "var/nats",
				SyncAlways: true,
				MinFree:    256 << 20,
			},
			SubjectPrefix:  "triaged",
			ResultStream:   Stream{Name: "TRIAGED_RESULTS", Replicas: 1, MaxAge: 30 * 24 * time.Hour, DuplicateWindow: 24 * time.Hour, Storage: "file"},
			AlertStream:    Stream{Name: "TRIAGED_ALERTS", Replicas: 1, MaxAge: 30 * 24 * time.Hour, DuplicateWindow: 24 * time.Hour, Storage: "file"},
			ManageStreams:  true,
			PublishTimeout: 10 * time.Second,
			ConnectTimeout: 10 * time.Second,
			Name:           "triaged",
		},
		Ingest: Ingest{
			Folders:        []Folder{{Path: "var/incoming"}},
			Settle:         time.Second,
			RescanInterval: 30 * time.Second,
			MaxFileSize:    512 << 20,
			NATS: NATSIngest{
				Subject:           "triaged.ingest",
				Stream:            Stream{Name: "TRIAGED_INGEST", Replicas: 1, DuplicateWindow: 24 * time.Hour, Storage: "file"},
				Durable:           "triaged",
				AckWait:           30 * time.Second,
				MaxDeliver:        5,
				Backoff:           []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute},
				DeadLetterSubject: "triaged.dead_letter",
				DeadLetterStream:  "TRIAGED_DEAD_LETTER",
				ObjectBucket:      "TRIAGED_FILMS",
				ObjectMaxAge:      7 * 24 * time.Hour,
			},
			DICOMweb: DefaultDICOMweb(),
		},
		Pipeline: Pipeline{
			QueueCapacity: 64,
			DecodeMemory:  1 << 30,
			DrainTimeout:  30 * time.Second,
			StallTimeout:  2 * time.Minute,
			PoisonAfter:   3,
		},
		Models:  []Model{{Path: "models/squeezenet1_1"}},
		Quality: DefaultQuality(),
		Drift:   DefaultDrift(),
		Triage: Triage{
			BatchSize:    8,
			BatchWait:    5 * time.Millisecond,
			EscalateStat: true,
		},
		ONNXRuntime: ONNXRuntime{Device: "cpu"},
		Decode: Decode{
			MaxPixels:           100_000_000,
			MaxHeaderSize:       16 << 20,
			MaxElements:         100_000,
			MaxSequenceDepth:    16,
			MaxCompressionRatio: 1000,
		},
		Route: defaultRoute(),
		HTTP:  HTTP{Listen: "127.0.0.1:9464"},
		dir:   ".",
		Heatmap: Heatmap{
			Enabled:  true,
			Bucket:   Bucket{Name: "TRIAGED_HEATMAPS", Replicas: 1, MaxAge: 30 * 24 * time.Hour, Storage: "file"},
			MaxSide:  1024,
			Alpha:    0.5,
			Colormap: "inferno",
			// The paper's occlusion (N=32, S=8: 625 passes per film and
			// model), for critical alerts only, which may wait 1s for it;
			// on a CPU it usually follows as an update.
			Occlusion: Occlusion{Size: 32, Stride: 8, Fill: "mean", BatchSize: 16,
				Budget: OcclusionBudget{Critical: Budget(time.Second), Urgent: BudgetOff}, MaxPending: 4},
		},
	}
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	Path  string
	Value string
	Msg   string
}

func (p Problem) String() string {
	if p.Value == "" {
		return fmt.Sprintf("%s: %s", p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s (value %s)", p.Path, p.Msg, p.Value)
}

// Problems is every problem found in a configuration.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return fmt.Sprintf("%d configuration problem(s):\n  %s", len(ps), strings.Join(s, "\n  "))
}

// Validate reports every problem, not just the first, so an operator fixes a
// config in one pass.
func (c *Config) Validate() Problems {
	var ps Problems
	add := func(path string, v any, msg string, args ...any) {
		ps = append(ps, Problem{Path: path, Value: fmt.Sprint(v), Msg: fmt.Sprintf(msg, args...)})
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		add("log.level", c.Log.Level, "must be one of trace, debug, info, warn, error")
	}
	if c.Log.PseudonymousIDs && c.Log.PseudonymKeyFile == "" {
		add("log.pseudonym_key_file", "", "is required when log.pseudonymous_ids is true (a file holding a secret key)")
	}
	if c.NATS.URL == "" {
		if c.NATS.Embedded.StoreDir == "" {
			add("nats.embedded.store_dir", "", "is required when nats.url is empty (embedded server)")
		}
		if c.NATS.Embedded.MaxStore < 0 || c.NATS.Embedded.MinFree < 0 {
			add("nats.embedded.max_store", c.NATS.Embedded.MaxStore, "max_store and min_free must not be negative")
		}
	}
	if c.NATS.SubjectPrefix == "" || strings.ContainsAny(c.NATS.SubjectPrefix, " *>\t") {
		add("nats.subject_prefix", c.NATS.SubjectPrefix, "must be a non-empty subject without wildcards or spaces")
	}
	for name, s := range map[string]Stream{"nats.result_stream": c.NATS.ResultStream, "nats.alert_stream": c.NATS.AlertStream} {
		if s.Name == "" || strings.ContainsAny(s.Name, " .*>") {
			add(name+".name", s.Name, "must be a stream name without spaces, dots or wildcards")
		}
		if s.Replicas < 1 || s.Replicas > 5 {
			add(name+".replicas", s.Replicas, "must be between 1 and 5")
		}
		if s.DuplicateWindow <= 0 {
			add(name+".duplicate_window", s.DuplicateWindow, "must be positive: it is what keeps a re-processed film from alerting twice")
		}
		if s.MaxAge > 0 && s.DuplicateWindow > s.MaxAge {
			add(name+".duplicate_window", s.DuplicateWindow, "must not exceed max_age (%s)", s.MaxAge)
		}
		if s.Storage != "file" && s.Storage != "memory" {
			add(name+".storage", s.Storage, "must be file or memory")
		}
	}
	if c.NATS.ResultStream.Name == c.NATS.AlertStream.Name {
		add("nats.alert_stream.name", c.NATS.AlertStream.Name, "must differ from nats.result_stream.name")
	}
	if c.NATS.PublishTimeout <= 0 {
		add("nats.publish_timeout", c.NATS.PublishTimeout, "must be positive")
	}
	if c.NATS.ConnectTimeout <= 0 {
		add("nats.connect_timeout", c.NATS.ConnectTimeout, "must be positive")
	}
	if len(c.Ingest.Folders) == 0 && !c.Ingest.NATS.Enabled {
		add("ingest.folders", "[]", "needs at least one drop folder (or ingest.nats.enabled)")
	}
	seen := map[string]bool{}
	for i, f := range c.Ingest.Folders {
		p := fmt.Sprintf("ingest.folders[%d]", i)
		if f.Path == "" {
			add(p+".path", "", "is required")
			continue
		}
		abs := c.Resolve(f.Path)
		if seen[abs] {
			add(p+".path", f.Path, "is listed twice")
		}
		seen[abs] = true
	}
	if c.Ingest.Settle < 0 {
		add("ingest.settle", c.Ingest.Settle, "must not be negative")
	}
	if c.Ingest.RescanInterval < time.Second {
		add("ingest.rescan_interval", c.Ingest.RescanInterval, "must be at least 1s")
	}
	if c.Ingest.MaxFileSize < 1024 {
		add("ingest.max_file_size", c.Ingest.MaxFileSize, "must be at least 1KiB")
	}
	if c.Pipeline.Workers < 0 || c.Pipeline.Workers > 256 {
		add("pipeline.workers", c.Pipeline.Workers, "must be between 0 (auto) and 256")
	}
	if c.Pipeline.QueueCapacity < 1 {
		add("pipeline.queue_capacity", c.Pipeline.QueueCapacity, "must be at least 1")
	}
	if c.Pipeline.MemoryLimit != 0 && c.Pipeline.MemoryLimit < 256<<20 {
		add("pipeline.memory_limit", c.Pipeline.MemoryLimit, "must be 0 (automatic) or at least 256MiB")
	}
	if c.Pipeline.DecodeMemory < 64<<20 {
		add("pipeline.decode_memory", c.Pipeline.DecodeMemory, "must be at least 64MiB")
	}
	if c.Pipeline.DrainTimeout <= 0 {
		add("pipeline.drain_timeout", c.Pipeline.DrainTimeout, "must be positive")
	}
	if len(c.Models) == 0 {
		add("models", "[]", "needs at least one model")
	}
	mseen := map[string]bool{}
	for i, m := range c.Models {
		p := fmt.Sprintf("models[%d].path", i)
		if m.Path == "" {
			add(p, "", "is required")
			continue
		}
		if mseen[c.Resolve(m.Path)] {
			add(p, m.Path, "is listed twice")
		}
		mseen[c.Resolve(m.Path)] = true
	}
	if c.Triage.BatchSize < 1 || c.Triage.BatchSize > 256 {
		add("triage.batch_size", c.Triage.BatchSize, "must be between 1 and 256")
	}
	if c.Triage.BatchWait < 0 || c.Triage.BatchWait > time.Second {
		add("triage.batch_wait", c.Triage.BatchWait, "must be between 0 and 1s")
	}
	for name, t := range map[string]float64{"triage.urgent_threshold": c.Triage.UrgentThreshold, "triage.critical_threshold": c.Triage.CriticalThreshold} {
		if t < 0 || t > 1 {
			add(name, t, "must be a probability between 0 and 1 (0 = from the model manifests)")
		}
	}
	if c.Triage.UrgentThreshold > 0 && c.Triage.CriticalThreshold > 0 && c.Triage.CriticalThreshold < c.Triage.UrgentThreshold {
		add("triage.critical_threshold", c.Triage.CriticalThreshold, "must not be below triage.urgent_threshold (%g)", c.Triage.UrgentThreshold)
	}
	if (c.Triage.UrgentThreshold > 0) != (c.Triage.CriticalThreshold > 0) {
		add("triage", "", "set both urgent_threshold and critical_threshold, or neither")
	}
	switch c.ONNXRuntime.Device {
	case "cpu", "cuda", "auto":
	default:
		add("onnxruntime.device", c.ONNXRuntime.Device, "must be cpu, cuda or auto")
	}
	if c.ONNXRuntime.IntraOpThreads < 0 {
		add("onnxruntime.intra_op_threads", c.ONNXRuntime.IntraOpThreads, "must not be negative (0 = ONNX Runtime's default)")
	}
	if c.Decode.MaxPixels < 1<<16 {
		add("decode.max_pixels", c.Decode.MaxPixels, "must be at least 65536")
	}
	c.validateNATSExtras(add)
	ps = append(ps, c.validateService()...)
	c.Heatmap.validate(add)
	if c.Decode.MaxHeaderSize < 64<<10 || c.Decode.MaxHeaderSize > 1<<30 {
		add("decode.max_header_size", c.Decode.MaxHeaderSize, "must be between 64KiB and 1GiB")
	}
	if c.Decode.MaxElements < 1000 {
		add("decode.max_elements", c.Decode.MaxElements, "must be at least 1000")
	}
	if c.Decode.MaxSequenceDepth < 4 || c.Decode.MaxSequenceDepth > 64 {
		add("decode.max_sequence_depth", c.Decode.MaxSequenceDepth, "must be between 4 and 64")
	}
	if c.Decode.MaxCompressionRatio < 10 {
		add("decode.max_compression_ratio", c.Decode.MaxCompressionRatio, "must be at least 10")
	}
	if c.Pipeline.PoisonAfter < 1 || c.Pipeline.PoisonAfter > 100 {
		add("pipeline.poison_after", c.Pipeline.PoisonAfter, "must be between 1 and 100")
	}
	c.validateRoute(add)
	c.validateDIMSE(add)
	for _, v := range sectionValidators {
		ps = append(ps, v(c)...)
	}
	return ps
}

// Resolve makes a configured path absolute, relative to the config file's
// directory (or the working directory for the embedded defaults).
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	d := c.dir
	if d == "" {
		d = "."
	}
	abs, err := filepath.Abs(filepath.Join(d, p))
	if err != nil {
		return filepath.Join(d, p)
	}
	return abs
}

// Dir is the directory relative paths are resolved against.
func (c *Config) Dir() string { return c.dir }
