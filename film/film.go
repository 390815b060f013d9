// Package film is the film-level library: decode one DICOM film or image
// file, preprocess it exactly as the reference does, score it with an
// engine, and build its result message. The daemon's workers, `triaged
// score`, `eval`, `heatmap` and the bench all go through it, so a film is
// scored the same way everywhere.
package film

import (
	"bytes"
	"context"
	"image"
	"io"
	"time"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/triage"
)

// Analysis is a scored film, before publication.
type Analysis struct {
	Header   *decode.Header
	Display  *image.Gray // the display-ready film (for heatmap overlays)
	Input    preprocess.Input
	Result   *triage.Result
	Priority triage.Priority
	Why      string
	Timings  publish.Timings
	// Reduced is the JPEG 2000 resolution levels the decode left out
	// (decode.Film.Reduced); 0: full size.
	Reduced int
}

// Analyze decodes, preprocesses and scores one DICOM film. requested is the
// priority the film was sent with (DICOM tag or message header).
func Analyze(ctx context.Context, eng *triage.Engine, r io.Reader, size int64, lim decode.Limits, requested string) (*Analysis, error) {
	a, err := Decode(ctx, r, size, lim)
	if err != nil {
		return nil, err
	}
	return a, a.Score(ctx, eng, requested)
}

// Decode is the first half of Analyze: the film decoded to its display
// image, not yet scored, so a caller can look at the pixels (the daemon's
// input-quality gate) before paying for inference. Score is the second half.
func Decode(ctx context.Context, r io.Reader, size int64, lim decode.Limits) (*Analysis, error) {
	t0 := time.Now()
	film, err := decode.DecodeContext(ctx, r, size, lim)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Header: film.Header, Display: film.Image, Reduced: film.Reduced}
	a.Timings.DecodeMS = MS(time.Since(t0))
	return a, nil
}

// Score preprocesses and scores a decoded film; requested is the priority
// the film was sent with ("": the film's own).
func (a *Analysis) Score(ctx context.Context, eng *triage.Engine, requested string) error {
	if requested == "" {
		requested = a.Header.Priority
	}
	return a.score(ctx, eng, requested)
}

// AnalyzeFile scores a whole file held in memory: a DICOM film or a plain
// JPEG/PNG image, told apart by decode.Sniff.
func AnalyzeFile(ctx context.Context, eng *triage.Engine, data []byte, lim decode.Limits) (*Analysis, error) {
	if decode.Sniff(data) == decode.KindImage {
		return AnalyzeImage(ctx, eng, data, lim)
	}
	return Analyze(ctx, eng, bytes.NewReader(data), int64(len(data)), lim, "")
}

// AnalyzeImage scores a plain JPEG or PNG image (training data, screenshots).
func AnalyzeImage(ctx context.Context, eng *triage.Engine, data []byte, lim decode.Limits) (*Analysis, error) {
	t0 := time.Now()
	g, err := decode.ImageFile(data, lim)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Header: &decode.Header{Rows: g.Rect.Dy(), Columns: g.Rect.Dx()}, Display: g}
	a.Timings.DecodeMS = MS(time.Since(t0))
	return a, a.score(ctx, eng, "")
}

func (a *Analysis) score(ctx context.Context, eng *triage.Engine, requested string) error {
	t1 := time.Now()
	a.Input = preprocess.Prepare(a.Display)
	x := make([]float32, preprocess.TensorLen)
	preprocess.Tensor(a.Input.Gray, x)
	a.Timings.PreprocessMS = MS(time.Since(t1))
	t2 := time.Now()
	res, err := eng.Score(ctx, x)
	if err != nil {
		return err
	}
	a.Timings.InferenceMS = MS(time.Since(t2))
	a.Timings.BatchSize = res.BatchSize
	a.Result = res
	a.Priority, a.Why = eng.Classify(res.Ensemble, requested)
	return nil
}

// Message builds the result message for an analysis.
func (a *Analysis) Message(eng *triage.Engine, src publish.Source, version, host string) *publish.Result {
	r := &publish.Result{
		Schema:         publish.ResultSchema,
		Kind:           "result",
		Source:         src,
		Film:           Of(a.Header),
		Score:          a.Result.Ensemble,
		Priority:       string(a.Priority),
		PriorityReason: a.Why,
		Thresholds:     publish.Thresholds{Urgent: eng.Thresholds.Urgent, Critical: eng.Thresholds.Critical, CalibratedOn: eng.Thresholds.CalibratedOn},
		ModelSet:       eng.Set,
		Timings:        a.Timings,
		ScoredAt:       time.Now().UTC(),
		Daemon:         version,
		Host:           host,
	}
	if a.Reduced > 0 {
		r.Decode = &publish.Decode{Reduced: a.Reduced}
	}
	for _, m := range a.Result.Models {
		r.Models = append(r.Models, publish.ModelScore{Name: m.Name, Version: m.Version, Provider: m.Provider, Probability: m.Probability})
	}
	return r
}

// Of identifies the DICOM instance of a header for result messages.
func Of(h *decode.Header) publish.Film {
	return publish.Film{
		StudyInstanceUID:  h.StudyInstanceUID,
		SeriesInstanceUID: h.SeriesInstanceUID,
		SOPInstanceUID:    h.SOPInstanceUID,
		SOPClassUID:       h.SOPClassUID,
		Modality:          h.Modality,
		BodyPart:          h.BodyPart,
		ViewPosition:      h.ViewPosition,
		DICOMPriority:     h.Priority,
		TransferSyntax:    h.TransferSyntax,
		Rows:              h.Rows,
		Columns:           h.Columns,
	}
}

// MS is a duration in milliseconds, as timings are published.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
