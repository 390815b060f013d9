// Package provision translates the configuration into the options of the
// packages that do the work: the decoder's limits, the scoring engine, the
// heatmap renderer, the NATS connection's security, the publisher's streams
// and the intakes. Every such translation lives here, side by side, so the
// daemon and the operator commands (score, eval, heatmap, alerts, submit,
// bench) read a configuration the same way.
package provision

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/bus"
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/heatmap"
	"github.com/triaged/triaged/ingest/folder"
	jsingest "github.com/triaged/triaged/ingest/jetstream"
	"github.com/triaged/triaged/ingest/spool"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// DecodeLimits are the decoder's limits.
func DecodeLimits(cfg *config.Config) decode.Limits {
	return decode.Limits{
		MaxFileSize:         int64(cfg.Ingest.MaxFileSize),
		MaxPixels:           cfg.Decode.MaxPixels,
		MaxHeaderSize:       int64(cfg.Decode.MaxHeaderSize),
		MaxElements:         cfg.Decode.MaxElements,
		MaxDepth:            cfg.Decode.MaxSequenceDepth,
		MaxCompressionRatio: int64(cfg.Decode.MaxCompressionRatio),
		ReducedMinSide:      cfg.Decode.Resolution.ReducedMinSide(),
	}
}

// EngineOptions are the scoring engine's batching, thresholds and
// escalation (what a reload may change without reloading models).
func EngineOptions(cfg *config.Config) triage.EngineOptions {
	return triage.EngineOptions{
		BatchSize:    cfg.Triage.BatchSize,
		BatchWait:    cfg.Triage.BatchWait,
		Urgent:       cfg.Triage.UrgentThreshold,
		Critical:     cfg.Triage.CriticalThreshold,
		EscalateStat: cfg.Triage.EscalateStat,

		CUDABatchSize: cfg.Triage.CUDA.Size(),
		CUDABatchWait: cfg.Triage.CUDA.Wait(),
	}
}

// Engine loads the configured models.
func Engine(cfg *config.Config, log zerolog.Logger) (*triage.Engine, error) {
	dirs := make([]string, len(cfg.Models))
	for i, m := range cfg.Models {
		dirs[i] = cfg.Resolve(m.Path)
	}
	eng, err := triage.NewEngine(dirs, triage.Options{
		Library:        cfg.ONNXRuntime.Library,
		Device:         cfg.ONNXRuntime.Device,
		CUDADeviceID:   cfg.ONNXRuntime.CUDADeviceID,
		IntraOpThreads: cfg.ONNXRuntime.IntraOpThreads,
		Log:            log,
	}, EngineOptions(cfg))
	if err != nil {
		return nil, err
	}
	for _, m := range eng.Models {
		log.Info().Str("model", m.Manifest.Name).Str("version", m.Manifest.Version).Str("provider", m.Provider).
			Str("sha256", m.Manifest.SHA256[:12]).Msg("model loaded")
	}
	log.Info().Str("model_set", eng.Set).Float64("urgent", eng.Thresholds.Urgent).Float64("critical", eng.Thresholds.Critical).
		Str("thresholds_from", eng.Thresholds.CalibratedOn).Str("onnxruntime", triage.RuntimeVersion()).Msg("scoring engine ready")
	return eng, nil
}

// Heatmap turns the heatmap configuration into rendering and occlusion
// settings.
func Heatmap(hc config.Heatmap) (heatmap.RenderOptions, heatmap.Occlusion, error) {
	cm, err := heatmap.ColormapByName(hc.Colormap)
	if err != nil {
		return heatmap.RenderOptions{}, heatmap.Occlusion{}, fmt.Errorf("heatmap.colormap: %w", err)
	}
	fill, err := heatmap.ParseFill(hc.Occlusion.Fill)
	if err != nil {
		return heatmap.RenderOptions{}, heatmap.Occlusion{}, fmt.Errorf("heatmap.occlusion.fill: %w", err)
	}
	ro := heatmap.RenderOptions{MaxSide: hc.MaxSide, MinSide: min(heatmap.DefaultRender.MinSide, hc.MaxSide), Alpha: hc.Alpha, Colormap: cm}
	occ := heatmap.Occlusion{Size: hc.Occlusion.Size, Stride: hc.Occlusion.Stride, Fill: fill, BatchSize: hc.Occlusion.BatchSize}
	if err := ro.Check(); err != nil {
		return ro, occ, fmt.Errorf("heatmap: %w", err)
	}
	if err := occ.Check(); err != nil {
		return ro, occ, fmt.Errorf("heatmap.occlusion: %w", err)
	}
	return ro, occ, nil
}

// NATSSecurity is the connection security the config asks for; the daemon
// and the operator tools (alerts, submit, ack) connect the same way.
func NATSSecurity(cfg *config.Config) bus.Security {
	n := cfg.NATS
	return bus.Security{
		CAFile:          cfg.Resolve(n.TLS.CAFile),
		CertFile:        cfg.Resolve(n.TLS.CertFile),
		KeyFile:         cfg.Resolve(n.TLS.KeyFile),
		CredentialsFile: cfg.Resolve(n.CredentialsFile),
		NKeyFile:        cfg.Resolve(n.NKeyFile),
		User:            n.User,
		PasswordFile:    cfg.Resolve(n.PasswordFile),
		TokenFile:       cfg.Resolve(n.TokenFile),
	}
}

// StreamSpec is a configured stream as the bus provisions it.
func StreamSpec(s config.Stream) bus.StreamSpec {
	return bus.StreamSpec{Name: s.Name, Replicas: s.Replicas, MaxAge: s.MaxAge, DuplicateWindow: s.DuplicateWindow, Memory: s.Storage == "memory"}
}

// Publisher is the publisher's subject prefix, streams and timeouts.
func Publisher(cfg *config.Config) publish.Options {
	return publish.Options{
		Prefix:        cfg.NATS.SubjectPrefix,
		Results:       StreamSpec(cfg.NATS.ResultStream),
		Alerts:        StreamSpec(cfg.NATS.AlertStream),
		ManageStreams: cfg.NATS.ManageStreams,
		Timeout:       cfg.NATS.PublishTimeout,
		Shadow:        cfg.Shadow.On(),
	}
}

// Folder is one configured drop folder.
func Folder(cfg *config.Config, fc config.Folder) folder.Options {
	return folder.Options{
		Path:           cfg.Resolve(fc.Path),
		ProcessingDir:  cfg.Resolve(fc.ProcessingDir),
		DoneDir:        cfg.Resolve(fc.DoneDir),
		FailedDir:      cfg.Resolve(fc.FailedDir),
		Settle:         cfg.Ingest.Settle,
		RescanInterval: cfg.Ingest.RescanInterval,
		Origin:         spool.Origin,
	}
}

// JetStreamIntake is the JetStream intake's configuration; capacity is how
// many films the pipeline holds at once (the intake pulls no further).
func JetStreamIntake(cfg *config.Config, js jetstream.JetStream, capacity int) jsingest.Options {
	c := cfg.Ingest.NATS
	return jsingest.Options{
		JS:                js,
		Subject:           c.Subject,
		Stream:            StreamSpec(c.Stream),
		Durable:           c.Durable,
		AckWait:           c.AckWait,
		MaxDeliver:        c.MaxDeliver,
		Backoff:           c.Backoff,
		Capacity:          capacity,
		MaxAckPending:     c.MaxAckPending,
		DeadLetterSubject: c.DeadLetterSubject,
		DeadLetterStream:  c.DeadLetterStream,
		ObjectBucket:      c.ObjectBucket,
		ObjectMaxAge:      c.ObjectMaxAge,
		Manage:            cfg.NATS.ManageStreams,
		SpoolDir:          cfg.Resolve(c.SpoolDir),
		MaxObjectSize:     int64(cfg.Ingest.MaxFileSize),
		Timeout:           cfg.NATS.PublishTimeout,
	}
}

// HeatmapBucket is the object store bucket of heatmap attachments.
func HeatmapBucket(hc config.Heatmap) bus.StreamSpec {
	return bus.StreamSpec{Name: hc.Bucket.Name, Replicas: hc.Bucket.Replicas, MaxAge: hc.Bucket.MaxAge, Memory: hc.Bucket.Storage == "memory"}
}
