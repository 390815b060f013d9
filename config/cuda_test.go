package config

import (
	"strings"
	"testing"
	"time"
)

func TestCUDABatching(t *testing.T) {
	c, err := Parse([]byte("triage:\n  cuda:\n    batch_size: 32\n"), "/etc/triaged")
	if err != nil {
		t.Fatal(err)
	}
	if c.Triage.CUDA.Size() != 32 || c.Triage.CUDA.Wait() != DefaultCUDABatchWait {
		t.Fatalf("triage.cuda: %d, %s", c.Triage.CUDA.Size(), c.Triage.CUDA.Wait())
	}
	if d := Default().Triage.CUDA; d.Size() != 64 || d.Wait() != 10*time.Millisecond {
		t.Fatalf("defaults: %d, %s", d.Size(), d.Wait())
	}
	if _, err := Parse([]byte("triage:\n  cuda:\n    batch_size: 1000\n"), "/etc/triaged"); err == nil || !strings.Contains(err.Error(), "triage.cuda.batch_size") {
		t.Fatalf("batch_size 1000: %v", err)
	}
}
