// Command calib collects activation ranges for static int8 quantization
// (training/quantize.py): it runs an instrumented ONNX model, whose extra
// graph outputs are the tensors to be quantized, on images of a split
// preprocessed exactly as the daemon does, and writes each tensor's range.
//
//	go run ./bench/calib -model var/int8/squeezenet1_1/instrumented.onnx \
//	    -tensors var/int8/squeezenet1_1/tensors.json -labels ../shared/data/cxr/labels.csv \
//	    -split models/split.json -set train -n 100 -o var/int8/squeezenet1_1/ranges.json
//
// The range of a tensor is the mean over images of each image's minimum and
// maximum (ONNX Runtime's MinMax calibration with moving average), which
// keeps a few extreme activations from widening the scale for all; the
// overall extremes are written too.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/eval"
	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// Range is one tensor's calibration.
type Range struct {
	Min    float64 `json:"min"` // mean of per-image minima
	Max    float64 `json:"max"` // mean of per-image maxima
	AbsMin float64 `json:"abs_min"`
	AbsMax float64 `json:"abs_max"`
}

// Ranges is calib's output.
type Ranges struct {
	Images  []string         `json:"images"` // calibration images (file names in the data set)
	Set     string           `json:"set"`
	Tensors map[string]Range `json:"tensors"`
}

func main() {
	model := flag.String("model", "", "instrumented ONNX model")
	tensors := flag.String("tensors", "", "JSON list of the tensor names to range (the model's extra outputs)")
	labels := flag.String("labels", "../shared/data/cxr/labels.csv", "labels.csv of the image data set")
	split := flag.String("split", "models/split.json", "the split")
	set := flag.String("set", "train", "the split's set to calibrate on")
	n := flag.Int("n", 100, "images (spread evenly over the set)")
	out := flag.String("o", "ranges.json", "output")
	optimized := flag.String("optimized", "", "instead: write ONNX Runtime's optimized form of -model here (which Convs became QLinearConv)")
	flag.Parse()
	if *optimized != "" {
		if err := writeOptimized(*model, *optimized); err != nil {
			fmt.Fprintln(os.Stderr, "calib:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*model, *tensors, *labels, *split, *set, *n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "calib:", err)
		os.Exit(1)
	}
}

// writeOptimized saves the graph ONNX Runtime runs after its
// optimizations (QDQ fusion into QLinearConv among them).
func writeOptimized(model, out string) error {
	if _, err := triage.InitRuntime(""); err != nil {
		return err
	}
	o, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer o.Destroy()
	if err := o.SetOptimizedModelFilePath(out); err != nil {
		return err
	}
	s, err := ort.NewDynamicAdvancedSession(model, []string{"input"}, []string{"probs"}, o)
	if err != nil {
		return fmt.Errorf("open %s: %w", model, err)
	}
	return s.Destroy()
}

func run(model, tensorsPath, labels, splitPath, set string, n int, out string) error {
	var names []string
	b, err := os.ReadFile(tensorsPath)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("%s: %w", tensorsPath, err)
	}
	sp, err := eval.LoadSplit(splitPath)
	if err != nil {
		return err
	}
	items, err := eval.LoadCSV(labels, sp, set)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return fmt.Errorf("no images in set %s", set)
	}
	if _, err := triage.InitRuntime(""); err != nil {
		return err
	}
	// The graph input is ranged from the tensor itself, not asked for as
	// an output.
	var outNames []string
	for _, nm := range names {
		if nm != "input" {
			outNames = append(outNames, nm)
		}
	}
	s, err := ort.NewDynamicAdvancedSession(model, []string{"input"}, outNames, nil)
	if err != nil {
		return fmt.Errorf("open %s: %w", model, err)
	}
	defer s.Destroy()
	n = min(n, len(items))
	res := Ranges{Set: set, Tensors: map[string]Range{}}
	sum := make([][2]float64, len(names))
	abs := make([][2]float64, len(names))
	for i := range abs {
		abs[i] = [2]float64{math.Inf(1), math.Inf(-1)}
	}
	for k := range n {
		it := items[k*len(items)/n]
		_, x, err := eval.Tensor(it.Path, decode.DefaultLimits)
		if err != nil {
			return err
		}
		in, err := ort.NewTensor(ort.NewShape(1, 3, preprocess.Size, preprocess.Size), x)
		if err != nil {
			return err
		}
		outs := make([]ort.Value, len(outNames))
		if err := s.Run([]ort.Value{in}, outs); err != nil {
			in.Destroy()
			return err
		}
		in.Destroy()
		o := 0
		for j, nm := range names {
			data := x
			if nm != "input" {
				t, ok := outs[o].(*ort.Tensor[float32])
				if !ok {
					return fmt.Errorf("output %s is not float32", nm)
				}
				data = t.GetData()
				o++
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, f := range data {
				lo, hi = min(lo, float64(f)), max(hi, float64(f))
			}
			sum[j][0] += lo
			sum[j][1] += hi
			abs[j] = [2]float64{min(abs[j][0], lo), max(abs[j][1], hi)}
		}
		for _, v := range outs {
			v.Destroy()
		}
		res.Images = append(res.Images, filepath.Base(it.Path))
		if (k+1)%20 == 0 {
			fmt.Fprintf(os.Stderr, "%d/%d images\n", k+1, n)
		}
	}
	for j, name := range names {
		res.Tensors[name] = Range{Min: sum[j][0] / float64(n), Max: sum[j][1] / float64(n), AbsMin: abs[j][0], AbsMax: abs[j][1]}
	}
	jb, _ := json.MarshalIndent(res, "", " ")
	return os.WriteFile(out, jb, 0o644)
}
