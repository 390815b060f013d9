package dicomweb

import (
	"maps"
	"sync"
	"time"
)

// DurableBuckets are the upper bounds (seconds) of the time-to-durable
// histogram: from a part's first byte to its fsynced commit.
var DurableBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Stats are the intake's counters since it was created, for metrics.
type Stats struct {
	// Requests by HTTP status (401 for refused credentials included).
	Requests map[int]uint64
	// Stored is the number of instances stored durably.
	Stored uint64
	// Failed counts instances refused, by failure reason (ReasonResources...).
	Failed map[uint16]uint64
	// Bytes is the size of every part received, stored or not.
	Bytes uint64
	// Durable is the time from a stored part's first byte to its durable
	// commit: Counts[i] instances took at most DurableBuckets[i] seconds
	// (not cumulative; the last entry counts those above every bound).
	Durable Histogram
}

// Histogram is a fixed-bucket histogram.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Sum    float64 // seconds
	Count  uint64
}

type stats struct {
	mu sync.Mutex
	s  Stats
}

func newStats() *stats {
	return &stats{s: Stats{
		Requests: map[int]uint64{},
		Failed:   map[uint16]uint64{},
		Durable:  Histogram{Bounds: DurableBuckets, Counts: make([]uint64, len(DurableBuckets)+1)},
	}}
}

func (st *stats) request(status int) {
	st.mu.Lock()
	st.s.Requests[status]++
	st.mu.Unlock()
}

func (st *stats) part(r result, bytes int64, durable time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Bytes += uint64(max(bytes, 0))
	if r.reason != 0 {
		st.s.Failed[r.reason]++
		return
	}
	st.s.Stored++
	sec := durable.Seconds()
	h := &st.s.Durable
	i := 0
	for i < len(h.Bounds) && sec > h.Bounds[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += sec
	h.Count++
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.Requests = maps.Clone(st.s.Requests)
	s.Failed = maps.Clone(st.s.Failed)
	s.Durable.Counts = append([]uint64(nil), st.s.Durable.Counts...)
	return s
}
