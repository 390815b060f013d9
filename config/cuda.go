package config

import (
	"fmt"
	"time"
)

// CUDABatching is triage.cuda: the dynamic batching used instead of
// triage.batch_size and triage.batch_wait when every model runs on ONNX
// Runtime's CUDA provider. A GPU scores a batch of 64 in about the time it
// scores one film, so films wait a little longer to fill larger batches.
type CUDABatching struct {
	BatchSize int           `yaml:"batch_size"` // default 64
	BatchWait time.Duration `yaml:"batch_wait"` // default 10ms
}

// Defaults of triage.cuda.
const (
	DefaultCUDABatchSize = 64
	DefaultCUDABatchWait = 10 * time.Millisecond
)

// Size is the batch size on CUDA.
func (c CUDABatching) Size() int {
	if c.BatchSize == 0 {
		return DefaultCUDABatchSize
	}
	return c.BatchSize
}

// Wait is the batch wait on CUDA.
func (c CUDABatching) Wait() time.Duration {
	if c.BatchWait == 0 {
		return DefaultCUDABatchWait
	}
	return c.BatchWait
}

// ValidateCUDABatching checks triage.cuda.
func (c *Config) ValidateCUDABatching() Problems {
	var ps Problems
	b := c.Triage.CUDA
	if b.BatchSize < 0 || b.BatchSize > 256 {
		ps = append(ps, Problem{Path: "triage.cuda.batch_size", Value: fmt.Sprint(b.BatchSize), Msg: "must be between 1 and 256 (default 64)"})
	}
	if b.BatchWait < 0 || b.BatchWait > time.Second {
		ps = append(ps, Problem{Path: "triage.cuda.batch_wait", Value: b.BatchWait.String(), Msg: "must be between 0 and 1s (default 10ms)"})
	}
	return ps
}
