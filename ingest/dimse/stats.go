package dimse

import (
	"sync"
	"sync/atomic"
	"time"
)

// DurableBuckets are the upper bounds (seconds) of the time-to-durable
// histogram, from C-STORE request to fsynced film.
var DurableBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Stats are the SCP's counters since New, for metrics.
type Stats struct {
	// Associations by outcome: released, aborted_by_peer, aborted_protocol,
	// aborted_idle, aborted_shutdown, failed, rejected_called_ae,
	// rejected_calling_ae, rejected_busy, rejected_other.
	Associations map[string]uint64
	// Active associations now.
	Active int64
	// Instances by status: success, out_of_resources, cannot_understand,
	// data_set_mismatch, failed. (A C-STORE whose SOP class is not its
	// presentation context's is answered 0122 by the upper layer and not
	// counted here.)
	Instances map[string]uint64
	// Bytes of data sets (with file meta) received.
	Bytes uint64
	// Durable is the time-to-durable histogram: Counts[i] instances took
	// at most DurableBuckets[i] (cumulative, as Prometheus wants).
	Durable Histogram
}

// Histogram is a cumulative histogram.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64 // seconds
}

type stats struct {
	mu           sync.Mutex
	associations map[string]uint64
	instances    map[string]uint64
	counts       []uint64
	count        uint64
	sum          float64
	bytes        atomic.Uint64
	active       atomic.Int64
}

func (s *stats) init() {
	s.associations = map[string]uint64{}
	s.instances = map[string]uint64{}
	s.counts = make([]uint64, len(DurableBuckets))
}

func (s *stats) association(outcome string) {
	s.mu.Lock()
	s.associations[outcome]++
	s.mu.Unlock()
}

func (s *stats) instance(status string) {
	s.mu.Lock()
	s.instances[status]++
	s.mu.Unlock()
}

func (s *stats) durable(d time.Duration) {
	sec := d.Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range DurableBuckets {
		if sec <= b {
			s.counts[i]++
		}
	}
	s.count++
	s.sum += sec
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := Stats{
		Associations: map[string]uint64{}, Instances: map[string]uint64{},
		Active: st.active.Load(), Bytes: st.bytes.Load(),
		Durable: Histogram{Bounds: DurableBuckets, Counts: append([]uint64(nil), st.counts...), Count: st.count, Sum: st.sum},
	}
	for k, v := range st.associations {
		out.Associations[k] = v
	}
	for k, v := range st.instances {
		out.Instances[k] = v
	}
	return out
}
