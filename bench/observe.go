package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/triaged/triaged/publish"
)

// track is one film copy handed to the daemon.
type track struct {
	film    *Film
	dropped time.Time
	result  time.Time
	alert   time.Time
	errCode string
	res     *publish.Result
}

// tracker follows every copy from its drop to its result, by SOP Instance
// UID (unique per copy), from a plain NATS subscription to the daemon's
// result, alert and error subjects: a message seen there has been stored.
type tracker struct {
	mu     sync.Mutex
	films  map[string]*track
	done   int // results and errors
	notify chan struct{}
	subs   []*nats.Subscription
}

func newTracker(nc *nats.Conn) (*tracker, error) {
	t := &tracker{films: map[string]*track{}, notify: make(chan struct{}, 1)}
	for subj, h := range map[string]nats.MsgHandler{
		"triaged.result":  t.onResult,
		"triaged.alert.*": t.onAlert,
		"triaged.error":   t.onError,
	} {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", subj, err)
		}
		s.SetPendingLimits(-1, -1)
		t.subs = append(t.subs, s)
	}
	return t, nc.Flush()
}

func (t *tracker) close() {
	for _, s := range t.subs {
		s.Unsubscribe()
	}
}

func (t *tracker) dropped(uid string, f *Film, at time.Time) {
	t.mu.Lock()
	t.films[uid] = &track{film: f, dropped: at}
	t.mu.Unlock()
}

func (t *tracker) onResult(m *nats.Msg) {
	now := time.Now()
	var r publish.Result
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	t.mu.Lock()
	if tr, ok := t.films[r.Film.SOPInstanceUID]; ok && tr.result.IsZero() && tr.errCode == "" {
		tr.result, tr.res = now, &r
		t.done++
	}
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) onAlert(m *nats.Msg) {
	now := time.Now()
	var r struct {
		Kind string       `json:"kind"`
		Film publish.Film `json:"film"`
	}
	if json.Unmarshal(m.Data, &r) != nil || r.Kind != "alert" {
		return
	}
	t.mu.Lock()
	if tr, ok := t.films[r.Film.SOPInstanceUID]; ok && tr.alert.IsZero() {
		tr.alert = now
	}
	t.mu.Unlock()
}

func (t *tracker) onError(m *nats.Msg) {
	var e publish.Event
	if json.Unmarshal(m.Data, &e) != nil || e.Film == nil {
		return
	}
	t.mu.Lock()
	if tr, ok := t.films[e.Film.SOPInstanceUID]; ok && tr.result.IsZero() && tr.errCode == "" {
		tr.errCode = e.Code
		t.done++
	}
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// counts returns films dropped and finished (result or error).
func (t *tracker) counts() (dropped, done int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.films), t.done
}

// snapshot copies the tracks.
func (t *tracker) snapshot() []track {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]track, 0, len(t.films))
	for _, tr := range t.films {
		out = append(out, *tr)
	}
	return out
}

// metricsSnapshot holds the histogram sums and counts of the daemon's
// /metrics that the report uses.
type metricsSnapshot struct {
	stage     map[string][2]float64 // sum, count
	inference map[string][2]float64
	batch     [2]float64
	// Films that left the pipeline (acknowledged, quarantined or released),
	// and of them quarantined.
	filmsDone, quarantined float64
}

func scrape(addr string) (*metricsSnapshot, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	s := &metricsSnapshot{stage: map[string][2]float64{}, inference: map[string][2]float64{}}
	hist := func(name, label string, into map[string][2]float64) {
		mf := mfs[name]
		if mf == nil {
			return
		}
		for _, m := range mf.Metric {
			key := ""
			for _, l := range m.Label {
				if l.GetName() == label {
					key = l.GetValue()
				}
			}
			if h := m.GetHistogram(); h != nil {
				into[key] = [2]float64{h.GetSampleSum(), float64(h.GetSampleCount())}
			}
		}
	}
	if mf := mfs["triaged_films_total"]; mf != nil {
		for _, m := range mf.Metric {
			s.filmsDone += m.GetCounter().GetValue()
			for _, l := range m.Label {
				if l.GetName() == "outcome" && l.GetValue() == "quarantined" {
					s.quarantined += m.GetCounter().GetValue()
				}
			}
		}
	}
	hist("triaged_stage_duration_seconds", "stage", s.stage)
	hist("triaged_inference_duration_seconds", "model", s.inference)
	b := map[string][2]float64{}
	hist("triaged_batch_size", "", b)
	s.batch = b[""]
	return s, nil
}

// meanSince is the mean of a histogram over the interval between two
// snapshots.
func meanSince(a, b [2]float64) float64 {
	if b[1]-a[1] <= 0 {
		return 0
	}
	return (b[0] - a[0]) / (b[1] - a[1])
}

// memSampler samples a process's resident set size.
type memSampler struct {
	pid     int
	mu      sync.Mutex
	samples []memSample
	stop    chan struct{}
	wg      sync.WaitGroup
}

type memSample struct {
	At   time.Duration `json:"t_ns"`
	RSS  int64         `json:"rss"`
	Done int           `json:"done"`
	at   time.Time
}

func sampleMemory(pid int, every time.Duration, done func() int) *memSampler {
	s := &memSampler{pid: pid, stop: make(chan struct{})}
	t0 := time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			rss, _ := memStatus(pid)
			n := 0
			if done != nil {
				n = done()
			}
			s.mu.Lock()
			now := time.Now()
			s.samples = append(s.samples, memSample{At: now.Sub(t0), RSS: rss, Done: n, at: now})
			s.mu.Unlock()
			select {
			case <-tk.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// peak is the largest RSS sampled between from and to.
func (s *memSampler) peak(from, to time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p int64
	for _, x := range s.samples {
		if !x.at.Before(from) && !x.at.After(to) {
			p = max(p, x.RSS)
		}
	}
	return p
}

func (s *memSampler) finish() []memSample {
	close(s.stop)
	s.wg.Wait()
	return s.samples
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

func sortedCopy(v []float64) []float64 {
	out := append([]float64(nil), v...)
	sort.Float64s(out)
	return out
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
