package triage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/triaged/triaged/preprocess"
)

// Priority is what a score earns a film.
type Priority string

const (
	Critical Priority = "critical"
	Urgent   Priority = "urgent"
	Routine  Priority = "routine"
)

// Positive reports whether the priority makes an alert.
func (p Priority) Positive() bool { return p == Critical || p == Urgent }

// EngineOptions configure batching and the ensemble's operating points.
type EngineOptions struct {
	BatchSize int
	BatchWait time.Duration
	// Ensemble thresholds; zero means derived from the manifests.
	Urgent, Critical float64
	EscalateStat     bool

	// CUDABatchSize and CUDABatchWait replace BatchSize and BatchWait when
	// every model runs on the CUDA provider (config triage.cuda): a GPU
	// scores 64 films in about the time it scores one. 0: no change.
	CUDABatchSize int
	CUDABatchWait time.Duration
}

// Engine batches films from concurrent callers through every model and
// combines their scores.
type Engine struct {
	Models []*Model
	// Set identifies the model set (see ModelSetVersion).
	Set        string
	Thresholds Thresholds
	opts       EngineOptions

	reqs    chan *request
	stop    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once
	// owner is the engine whose sessions and batcher a Retuned copy uses.
	owner *Engine
}

type request struct {
	x    []float32
	resp chan response
}

type response struct {
	res *Result
	err error
}

// ModelScore is one model's view of a film.
type ModelScore struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Provider    string    `json:"provider"`
	Probability float64   `json:"probability"`
	CAM         []float32 `json:"-"`
	CAMW        int       `json:"-"`
	CAMH        int       `json:"-"`
}

// Result is the scoring of one film.
type Result struct {
	Models    []ModelScore
	Ensemble  float64 // mean P(COVID-19) over the models
	BatchSize int
	// Inference is the wall time of the batch this film was part of, per model.
	Inference map[string]time.Duration
}

// NewEngine loads every model directory and starts the batcher.
func NewEngine(dirs []string, mo Options, eo EngineOptions) (*Engine, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no models configured")
	}
	e := &Engine{opts: eo, reqs: make(chan *request), stop: make(chan struct{})}
	var mans []*Manifest
	for _, d := range dirs {
		m, err := LoadModel(d, mo)
		if err != nil {
			e.closeModels()
			return nil, err
		}
		e.Models = append(e.Models, m)
		mans = append(mans, m.Manifest)
	}
	e.Set = ModelSetVersion(mans)
	e.Thresholds = ensembleThresholds(mans, eo)
	if eo.CUDABatchSize > 0 && allOn(e.Models, ProviderCUDA) {
		e.opts.BatchSize, e.opts.BatchWait = eo.CUDABatchSize, eo.CUDABatchWait
	}
	if e.opts.BatchSize < 1 {
		e.opts.BatchSize = 1
	}
	e.wg.Add(1)
	go e.batcher()
	return e, nil
}

// BatchSize is the most films the engine scores in one run.
func (e *Engine) BatchSize() int { return e.Owner().opts.BatchSize }

func allOn(ms []*Model, provider string) bool {
	for _, m := range ms {
		if m.Provider != provider {
			return false
		}
	}
	return len(ms) > 0
}

// ensembleThresholds: explicit config wins; one model uses its calibration;
// several use the mean of theirs until `triaged calibrate` gives better ones.
func ensembleThresholds(ms []*Manifest, eo EngineOptions) Thresholds {
	if eo.Urgent > 0 && eo.Critical > 0 {
		return Thresholds{Urgent: eo.Urgent, Critical: eo.Critical, CalibratedOn: "configuration"}
	}
	if len(ms) == 1 {
		return ms[0].Thresholds
	}
	var t Thresholds
	for _, m := range ms {
		t.Urgent += m.Thresholds.Urgent / float64(len(ms))
		t.Critical += m.Thresholds.Critical / float64(len(ms))
	}
	t.CalibratedOn = "mean of the member models' thresholds (uncalibrated for the ensemble)"
	return t
}

// Classify maps an ensemble score (and the priority the film was sent with:
// its DICOM priority or the intake's hint, see IsStat) to a priority, with
// a short reason.
func (e *Engine) Classify(score float64, dicomPriority string) (Priority, string) {
	t := e.Thresholds
	switch {
	case score >= t.Critical:
		return Critical, fmt.Sprintf("score %.4f >= critical threshold %.4f", score, t.Critical)
	case score >= t.Urgent:
		if e.opts.EscalateStat && IsStat(dicomPriority) {
			// A positive film someone already flagged STAT goes to the top.
			return Critical, fmt.Sprintf("score %.4f >= urgent threshold %.4f, escalated: DICOM priority %s", score, t.Urgent, dicomPriority)
		}
		return Urgent, fmt.Sprintf("score %.4f >= urgent threshold %.4f", score, t.Urgent)
	default:
		return Routine, fmt.Sprintf("score %.4f < urgent threshold %.4f", score, t.Urgent)
	}
}

// Score runs one preprocessed film (len preprocess.TensorLen) through every
// model, batched with other concurrent callers.
func (e *Engine) Score(ctx context.Context, x []float32) (*Result, error) {
	if len(x) != preprocess.TensorLen {
		return nil, fmt.Errorf("score: input has %d floats, want %d", len(x), preprocess.TensorLen)
	}
	r := &request{x: x, resp: make(chan response, 1)}
	select {
	case e.reqs <- r:
	case <-e.stop:
		return nil, errors.New("score: engine closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case resp := <-r.resp:
		return resp.res, resp.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// batcher collects requests until the batch is full or the first request
// has waited BatchWait, then runs the batch.
func (e *Engine) batcher() {
	defer e.wg.Done()
	for {
		var batch []*request
		select {
		case r := <-e.reqs:
			batch = append(batch, r)
		case <-e.stop:
			return
		}
		timer := time.NewTimer(e.opts.BatchWait)
	fill:
		for len(batch) < e.opts.BatchSize {
			select {
			case r := <-e.reqs:
				batch = append(batch, r)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		e.run(batch)
	}
}

func (e *Engine) run(batch []*request) {
	n := len(batch)
	x := make([]float32, n*preprocess.TensorLen)
	for i, r := range batch {
		copy(x[i*preprocess.TensorLen:], r.x)
	}
	results := make([]*Result, n)
	for i := range results {
		results[i] = &Result{BatchSize: n, Inference: map[string]time.Duration{}}
	}
	for _, m := range e.Models {
		outs, took, err := m.Run(x, n)
		if err != nil {
			for _, r := range batch {
				r.resp <- response{err: err}
			}
			return
		}
		for i, o := range outs {
			results[i].Models = append(results[i].Models, ModelScore{
				Name: m.Manifest.Name, Version: m.Manifest.Version, Provider: m.Provider,
				Probability: o.Prob, CAM: o.CAM, CAMW: o.CAMW, CAMH: o.CAMH,
			})
			results[i].Ensemble += o.Prob / float64(len(e.Models))
			results[i].Inference[m.Manifest.Name] = took
		}
	}
	for i, r := range batch {
		r.resp <- response{res: results[i]}
	}
}

// Close stops the batcher and releases the sessions. Callers must not call
// Score after Close. Close on a Retuned copy does nothing: close its Owner.
func (e *Engine) Close() error {
	if e.owner != nil {
		return nil
	}
	e.closeMu.Do(func() { close(e.stop) })
	e.wg.Wait()
	return e.closeModels()
}

func (e *Engine) closeModels() error {
	var errs []error
	for _, m := range e.Models {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}
