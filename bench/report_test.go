package bench

import (
	"strings"
	"testing"
)

// Issue 18's setups sit beside the shipped ones, each compared with the
// reference of its own model set: the target table has the 5x / 4x row for
// every one, met or not from its own films/s, and the report shows decode
// + preprocess per syntax and the CPU estimate.
func TestIssue18SetupsAndTargets(t *testing.T) {
	o := Options{DefaultModel: "/m/squeezenet1_1", Ensemble: []string{"/m/resnet18", "/m/squeezenet1_1"}, Reduced: true,
		Int8Model: "/m/int8/squeezenet1_1-int8", Int8Ensemble: []string{"/m/int8/resnet18-int8", "/m/int8/squeezenet1_1-int8"}}
	setups := benchSetups(o)
	want := map[string]int{"default model": 1, "ensemble": 2, "ensemble + CAM heatmaps": 0, "default model, reduced decode": 1,
		"default model, int8": 1, "ensemble, reduced decode": 2, "ensemble, int8": 2}
	if len(setups) != len(want) {
		t.Fatalf("%d setups, want %d", len(setups), len(want))
	}
	if setups[0].Name != "default model" || setups[1].Name != "ensemble" {
		t.Fatal("the reference pairs with the first two setups: they must be the shipped default model and ensemble")
	}
	r := &Report{Machine: Machine{Cores: 2}}
	fps := map[string]float64{"default model": 11, "ensemble": 5, "ensemble + CAM heatmaps": 4, "default model, reduced decode": 25,
		"default model, int8": 12, "ensemble, reduced decode": 9, "ensemble, int8": 6}
	for _, s := range setups {
		if w, ok := want[s.Name]; !ok || w != s.Ref {
			t.Errorf("setup %q: reference %d, want %d", s.Name, s.Ref, w)
		}
		if strings.Contains(s.Name, "reduced") != (s.Extra != nil) {
			t.Errorf("setup %q: extra config %v", s.Name, s.Extra)
		}
		r.Setups = append(r.Setups, SetupResult{Setup: s, Throughput: PhaseResult{FilmsPerS: fps[s.Name],
			PrepMSBySyntax: map[string]float64{"htj2kll": 150, "explicit": 20, "j2kll": 600}}})
	}
	r.Reference = []RefResult{{FilmsPerS: 4.5}, {FilmsPerS: 2}}
	r.Stages = &StageCosts{CPU: &CPUCosts{ExactMS: map[string]float64{"explicit": 30, "htj2kll": 146}, ReducedMS: map[string]float64{"htj2kll": 25},
		ReducedLevel: map[string]int{"htj2kll": 2}, InferenceMS: map[string]float64{"squeezenet1_1": 4, "resnet18": 24}}}
	models := map[string]string{"/m/squeezenet1_1": "squeezenet1_1", "/m/resnet18": "resnet18"}
	r.Stages.CPU.estimateSetups(2, []*Film{{Syntax: "explicit"}, {Syntax: "htj2kll"}}, setups, models)
	r.finish()
	met := map[string]bool{}
	for _, tg := range r.Targets {
		if strings.HasSuffix(tg.What, "(issue 18)") {
			met[strings.TrimSuffix(strings.TrimPrefix(tg.What, "throughput, "), ", vs the PyTorch reference (issue 18)")] = tg.Met
		}
	}
	for name, ok := range map[string]bool{"default model": false, "default model, reduced decode": true, "default model, int8": false,
		"ensemble": false, "ensemble, reduced decode": true, "ensemble, int8": false} {
		if got, has := met[name]; !has || got != ok {
			t.Errorf("issue 18 target of %q: met %v (present %v), want %v", name, got, has, ok)
		}
	}
	if _, has := met["ensemble + CAM heatmaps"]; has {
		t.Error("the all-alert heatmap setup has no throughput target")
	}
	e := r.Stages.CPU.Estimate
	// 2 cores / (146 + 4 ms) = 13.3 films/s exact; / (25 + 4 ms) = 69.0 reduced.
	if e["default model"]["htj2kll"] != 13.33 || e["default model, reduced decode"]["htj2kll"] != 68.97 ||
		e["default model, reduced decode"]["explicit"] != e["default model"]["explicit"] {
		t.Errorf("estimates %v", e)
	}
	if e["default model, int8"] != nil && e["default model, int8"]["mix"] != 0 {
		t.Errorf("int8 model without an inference cost has an estimate: %v", e["default model, int8"])
	}
	md := r.Markdown()
	for _, w := range []string{"| setup | explicit | j2kll | htj2kll |", "| ensemble, int8 | 20 | 600 | 150 |", "| default model, reduced decode | 25.00 | 4.50 | 5.56x |",
		"| htj2kll | 146.0 | 25.0 (2) | 5.8x |", "**Estimate**", ">= 5x", ">= 4x"} {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
}
