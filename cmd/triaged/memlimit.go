package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/config"
)

// cgroupMemoryMax is where systemd's MemoryMax= shows up for the service
// (cgroup v2).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// memoryLimit decides the Go runtime's soft memory limit. The Go heap is
// only collected once it doubles its live size, and with the embedded NATS
// server in the process a burst of large films through the object store
// leaves hundreds of MiB of dead buffers waiting for that: measured, peak
// RSS 1.36 GiB for 96 full-size films submitted at once, 665 MiB with a
// 512 MiB limit. A soft limit makes the collector run earlier instead; it
// never fails an allocation. GOMEMLIMIT, when set, wins (the runtime has
// already applied it); then pipeline.memory_limit; then 3/4 of the cgroup's
// memory.max, so a unit's MemoryMax is approached by collecting, not by
// the kernel's OOM killer; else defaultMemoryLimit.
func memoryLimit(cfg config.Pipeline, env string, cgroupMax string) (limit int64, source string) {
	if env != "" {
		return 0, "GOMEMLIMIT"
	}
	if cfg.MemoryLimit > 0 {
		return int64(cfg.MemoryLimit), "pipeline.memory_limit"
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(cgroupMax), 10, 64); err == nil && n > 0 {
		return n / 4 * 3, "cgroup memory.max"
	}
	return defaultMemoryLimit, "default"
}

// defaultMemoryLimit applies when nothing else sets a limit: measured with
// a backlog of 300 object-store films of 5.4 MB and 64 workers (the
// default on a 32-core host), peak RSS 1401 MiB without a limit and
// 880 MiB with this one (docs/performance.md). A host with more films in
// flight than fit collects more often; it never fails for it.
const defaultMemoryLimit = 768 << 20

func applyMemoryLimit(cfg config.Pipeline, log zerolog.Logger) {
	cg, _ := os.ReadFile(cgroupMemoryMax)
	limit, source := memoryLimit(cfg, os.Getenv("GOMEMLIMIT"), string(cg))
	switch {
	case source == "GOMEMLIMIT":
		log.Info().Int64("limit_bytes", debug.SetMemoryLimit(-1)).Str("from", source).Msg("Go soft memory limit")
	case limit > 0:
		debug.SetMemoryLimit(limit)
		log.Info().Int64("limit_bytes", limit).Str("from", source).Msg("Go soft memory limit")
	}
}
