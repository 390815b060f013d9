package heatmap

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/triaged/triaged/preprocess"
	"github.com/triaged/triaged/triage"
)

// Expected values from torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False), torch 1.13.
func TestUpsampleMatchesPyTorch(t *testing.T) {
	for _, c := range []struct {
		src    []float32
		w, h   int
		ow, oh int
		want   []float32
	}{
		{[]float32{0, 1, 2, 3}, 2, 2, 4, 4, []float32{0, .25, .75, 1, .5, .75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3}},
		{[]float32{0, 1, 2, 3, 4, 5, 6, 7, 8}, 3, 3, 5, 7, []float32{0.0, 0.4, 1.0, 1.6, 2.0, 0.428571, 0.828571, 1.428571, 2.028572, 2.428571,
			1.714286, 2.114286, 2.714286, 3.314286, 3.714286, 3.0, 3.4, 4.0, 4.6, 5.0, 4.285714, 4.685714, 5.285714, 5.885715, 6.285714,
			5.571429, 5.971428, 6.571429, 7.171429, 7.571428, 6.0, 6.4, 7.0, 7.6, 8.0}},
	} {
		got := Upsample(c.src, c.w, c.h, c.ow, c.oh)
		for i := range got {
			if math.Abs(float64(got[i]-c.want[i])) > 1e-5 {
				t.Fatalf("%dx%d -> %dx%d: %v, want %v", c.w, c.h, c.ow, c.oh, got, c.want)
			}
		}
	}
}

func TestCAMScalesEachModelAndAverages(t *testing.T) {
	a := ModelCAM{Model: "a", W: 2, H: 2, CAM: []float32{0, 0, 0, 10}}    // hot bottom right
	b := ModelCAM{Model: "b", W: 1, H: 1, CAM: []float32{-3}}             // no positive evidence
	c := ModelCAM{Model: "c", W: 2, H: 2, CAM: []float32{0.1, 0, 0, 0.2}} // other units
	one, err := CAM([]ModelCAM{a})
	if err != nil || one.Model != "a" || one.Max() != 1 {
		t.Fatalf("single model: %v %v max %v", err, one.Model, one.Max())
	}
	if v := one.V[Side*Side-1]; v != 1 {
		t.Errorf("hottest corner %v, want 1", v)
	}
	ens, err := CAM([]ModelCAM{a, b, c})
	if err != nil || ens.Model != EnsembleName {
		t.Fatal(err, ens.Model)
	}
	// Bottom right: a and c both at their maximum, b contributes 0.
	if v := ens.V[Side*Side-1]; math.Abs(float64(v)-2.0/3) > 1e-6 {
		t.Errorf("ensemble hottest corner %v, want 2/3", v)
	}
	for _, v := range ens.V {
		if v < 0 {
			t.Fatal("negative value in a CAM")
		}
	}
	if _, err := CAM([]ModelCAM{{Model: "x"}}); err == nil || !strings.Contains(err.Error(), "cam output") {
		t.Errorf("a model without CAM: %v", err)
	}
}

func TestOcclusionOffsets(t *testing.T) {
	for _, c := range []struct{ n, s, offsets int }{{32, 8, 25}, {32, 16, 13}, {32, 32, 7}, {30, 8, 26}, {224, 1, 1}} {
		o := Occlusion{Size: c.n, Stride: c.s, BatchSize: 1}
		offs := o.Offsets()
		if len(offs) != c.offsets || offs[len(offs)-1] != Side-c.n || o.Passes() != c.offsets*c.offsets {
			t.Errorf("N=%d S=%d: offsets %v", c.n, c.s, offs)
		}
	}
	if (Occlusion{Size: 32, Stride: 33, BatchSize: 1}).Check() == nil {
		t.Error("a stride above the size leaves pixels unoccluded and must be refused")
	}
	if DefaultOcclusion.Passes() != 625 {
		t.Errorf("the default occlusion costs %d passes, want the paper's 625", DefaultOcclusion.Passes())
	}
}

// lesion is a fake model whose P(COVID-19) is 0.9 minus 0.8 times the
// fraction of a "lesion" square (pixels [x0, x0+w) x [y0, y0+w)) that is no
// longer as in the original input.
type lesion struct {
	orig      []float32
	x0, y0, w int
	calls     int
	maxBatch  int
}

func (l *lesion) Run(x []float32, n int) ([]triage.Output, time.Duration, error) {
	l.calls++
	l.maxBatch = max(l.maxBatch, n)
	out := make([]triage.Output, n)
	for i := range out {
		t := x[i*preprocess.TensorLen:]
		changed := 0
		for y := l.y0; y < l.y0+l.w; y++ {
			for x := l.x0; x < l.x0+l.w; x++ {
				if t[y*Side+x] != l.orig[y*Side+x] {
					changed++
				}
			}
		}
		out[i].Prob = 0.9 - 0.8*float64(changed)/float64(l.w*l.w)
	}
	return out, 0, nil
}

func gradientInput() []float32 {
	x := make([]float32, preprocess.TensorLen)
	for i := range x {
		x[i] = float32(i%Side)/Side + 1 // never equal to the fill (0)
	}
	return x
}

func TestOcclusionFindsTheLesion(t *testing.T) {
	x := gradientInput()
	l := &lesion{orig: x, x0: 150, y0: 40, w: 24}
	o := Occlusion{Size: 32, Stride: 8, Fill: Fill{Mean: true}, BatchSize: 16}
	v, err := o.Map(context.Background(), l, x, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if l.maxBatch != 16 || l.calls != (625+15)/16 {
		t.Errorf("%d calls, largest batch %d: want 625 passes in batches of 16", l.calls, l.maxBatch)
	}
	best, bi := float32(-1), 0
	for i, d := range v {
		if d > best {
			best, bi = d, i
		}
	}
	bx, by := bi%Side, bi/Side
	if bx < l.x0 || bx >= l.x0+l.w || by < l.y0 || by >= l.y0+l.w {
		t.Errorf("largest drop %.3f at (%d,%d), outside the lesion", best, bx, by)
	}
	if v[5*Side+5] != 0 {
		t.Errorf("a corner far from the lesion has drop %v", v[5*Side+5])
	}
	// Cancellation stops between batches.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Map(ctx, l, x, 0.9); err == nil {
		t.Error("cancelled occlusion returned no error")
	}
}

func TestFillValues(t *testing.T) {
	if (Fill{Mean: true}).Values() != [3]float32{} {
		t.Error("mean fill must be zero in the normalised input")
	}
	f, err := ParseFill("0")
	if err != nil || f.Mean || f.Gray != 0 {
		t.Fatal(f, err)
	}
	if v := f.Values(); math.Abs(float64(v[0])-(-0.485/0.229)) > 1e-6 {
		t.Errorf("black in channel 0 = %v", v[0])
	}
	for _, bad := range []string{"", "256", "-1", "black"} {
		if _, err := ParseFill(bad); err == nil {
			t.Errorf("fill %q accepted", bad)
		}
	}
}

func TestRawIsNumpy(t *testing.T) {
	m := &Map{Method: MethodOcclusion, Model: "x", V: make([]float32, Side*Side)}
	m.V[0], m.V[Side*Side-1] = -0.25, 0.5
	b, err := Raw(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("magic %q", b[:8])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	hdr := string(b[10 : 10+hl])
	if (10+hl)%64 != 0 || !strings.HasSuffix(hdr, "\n") || !strings.Contains(hdr, "'descr': '<f4'") || !strings.Contains(hdr, "'shape': (224, 224)") {
		t.Fatalf("header %q (data at %d)", hdr, 10+hl)
	}
	data := b[10+hl:]
	if len(data) != 4*Side*Side {
		t.Fatalf("%d data bytes", len(data))
	}
	if v := math.Float32frombits(binary.LittleEndian.Uint32(data)); v != -0.25 {
		t.Errorf("first value %v", v)
	}
	if v := math.Float32frombits(binary.LittleEndian.Uint32(data[len(data)-4:])); v != 0.5 {
		t.Errorf("last value %v", v)
	}
}

func TestDeletionPrefersTheFaithfulMap(t *testing.T) {
	x := gradientInput()
	l := &lesion{orig: x, x0: 100, y0: 100, w: 40}
	right := make([]float32, Side*Side) // hot on the lesion
	wrong := make([]float32, Side*Side) // hot in a corner
	for y := range Side {
		for x := range Side {
			if x >= 100 && x < 140 && y >= 100 && y < 140 {
				right[y*Side+x] = 1
			}
			if x < 60 && y < 60 {
				wrong[y*Side+x] = 1
			}
		}
	}
	films := []DeletionFilm{{X: x, Base: 0.9, Maps: map[string][]float32{"right": right, "wrong": wrong}}}
	r, err := Deletion(context.Background(), l, "fake", films, DefaultDeletion)
	if err != nil {
		t.Fatal(err)
	}
	if !r.BeatsRandom("right") || r.BeatsRandom("wrong") {
		t.Errorf("drops at 10%%: %v", r.Drop10)
	}
	// 10% of the input is 5018 pixels; the lesion has 1600: deleting the
	// right map's top 10% removes all of it.
	if p, _ := r.Curves["right"].At(0.1); math.Abs(p-0.1) > 1e-9 {
		t.Errorf("P after deleting the lesion = %v, want 0.1", p)
	}
	if r.Curves["wrong"].AUC() <= r.Curves["right"].AUC() {
		t.Errorf("AUC right %v, wrong %v", r.Curves["right"].AUC(), r.Curves["wrong"].AUC())
	}
	again, _ := Deletion(context.Background(), l, "fake", films, DefaultDeletion)
	if again.Drop10[Random] != r.Drop10[Random] {
		t.Error("the random baseline is not deterministic")
	}
	var b strings.Builder
	WriteDeletionReport(&b, []*DeletionResult{r})
	if !strings.Contains(b.String(), "ok: beats random") || !strings.Contains(b.String(), "FAIL") {
		t.Errorf("report:\n%s", b.String())
	}
}
