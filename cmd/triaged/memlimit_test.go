package main

import (
	"testing"

	"github.com/triaged/triaged/config"
)

func TestMemoryLimitPrecedence(t *testing.T) {
	for _, c := range []struct {
		cfg, env, cgroup string
		limit            int64
		source           string
	}{
		{"", "", "", 768 << 20, "default"},
		{"", "", "max\n", 768 << 20, "default"},
		{"", "", "4294967296\n", 3 << 30, "cgroup memory.max"},
		{"512MiB", "", "4294967296\n", 512 << 20, "pipeline.memory_limit"},
		{"512MiB", "1GiB", "4294967296\n", 0, "GOMEMLIMIT"},
	} {
		var p config.Pipeline
		if c.cfg != "" {
			cfg, err := config.Parse([]byte("pipeline: {memory_limit: "+c.cfg+"}"), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			p = cfg.Pipeline
		}
		limit, source := memoryLimit(p, c.env, c.cgroup)
		if limit != c.limit || source != c.source {
			t.Errorf("config %q, GOMEMLIMIT %q, memory.max %q: got %d from %q, want %d from %q", c.cfg, c.env, c.cgroup, limit, source, c.limit, c.source)
		}
	}
}
