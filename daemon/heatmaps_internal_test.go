package daemon

import (
	"testing"
	"time"
)

func TestOcclusionQueueIsBoundedAndTimed(t *testing.T) {
	h := &heatmapper{queue: make(chan *occlusionJob, 2), slots: make(chan struct{}, 2)}
	first, second, third := h.submit(&occlusionJob{}), h.submit(&occlusionJob{}), h.submit(&occlusionJob{})
	if !first || !second || third {
		t.Fatal("max_pending 2 must admit exactly two maps")
	}
	if h.expected(3) != 0 {
		t.Fatal("an estimate before any map was made")
	}
	h.observe(4 * time.Second)
	h.observe(8 * time.Second)
	if got := h.expected(2); got != 10*time.Second {
		t.Fatalf("two maps at a moving average of 5s: expected %s", got)
	}
}
