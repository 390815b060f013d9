package heatmap

import (
	"context"
	"strings"
	"testing"

	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/triage"
)

// The faithfulness check on real data: for the COVID-19 films of
// the test split, deleting the top 10% of each method's heatmap must lower
// P(COVID-19) more than deleting random 10% regions, for every committed
// model (and their ensemble when there are several).
//
// CAM is checked on every test-split positive, for each model on its own.
// Occlusion costs hundreds of passes per film, so the test checks it for
// the default model (SqueezeNet) on 12 films spread over the split with
// stride 16 (169 passes instead of the default's 625). The ensemble and
// occlusion for the larger models cost minutes each on two cores: `triaged
// eval -heatmaps both` and `triaged heatmap-check` run them (their results
// are in docs/heatmaps.md), CI does not.
func TestHeatmapsBeatRandomDeletion(t *testing.T) {
	testenv.Slow(t)
	pos := testPositives(t)
	var xs [][]float32
	for _, p := range pos {
		_, x, _, _ := film(t, p.Path)
		xs = append(xs, x)
	}
	var models []*triage.Model
	for _, dir := range committedModels(t) {
		models = append(models, loadModel(t, dir))
	}
	ctx := context.Background()
	check := func(what string, models []*triage.Model, xs [][]float32, o CheckOptions, method string) {
		rs, err := Faithfulness(ctx, models, xs, o)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		WriteDeletionReport(&b, rs)
		t.Logf("%s:\n%s", what, b.String())
		for _, r := range rs {
			if !r.BeatsRandom(method) {
				t.Errorf("%s, model %s: deleting the top 10%% of the map lowers P(COVID-19) by %.4f, random 10%% by %.4f",
					method, r.Model, r.Drop10[method], r.Drop10[Random])
			}
		}
	}
	for _, m := range models {
		check("CAM, every test-split positive", []*triage.Model{m}, xs, CheckOptions{Deletion: DefaultDeletion}, MethodCAM)
	}
	if testing.Short() {
		t.Skip("-short: occlusion not checked")
	}
	const n = 12
	sub := make([][]float32, 0, n)
	for i := range min(n, len(xs)) {
		sub = append(sub, xs[i*len(xs)/min(n, len(xs))])
	}
	occ := Occlusion{Size: 32, Stride: 16, Fill: Fill{Mean: true}, BatchSize: 16}
	var def []*triage.Model
	for _, m := range models {
		if m.Manifest.Name == "squeezenet1_1" {
			def = append(def, m)
		}
	}
	if len(def) == 0 {
		t.Fatal("the default model squeezenet1_1 is not committed")
	}
	check("occlusion 32/16, 12 test-split positives", def, sub, CheckOptions{Occlusion: occ, Deletion: DefaultDeletion}, MethodOcclusion)
}
