package costmodel

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/prune"
)

var testShape = prune.CostShape{Hidden: 128, Heads: 2, Intermediate: 512}

// synthetic returns the observations a model w gives at lengths ns:
// unpruned layers, a pruned layer 0 keeping a quarter (half of them low),
// the layer after it and the heads, each time times (1 + noise(i)).
func synthetic(w prune.CostModelLiteral, ns []int, noise func(i int) float64) []Observation {
	var out []Observation
	add := func(o Observation) {
		i := len(out)
		in := float64(o.In)
		if o.Layer >= 0 {
			o.Seconds = w.Layer + w.AttentionRow*in + w.AttentionRowSq*in*in + w.FFNRow*float64(o.Kept) + w.FFNHighRow*float64(o.High) +
				w.AttentionSplit*split(o.InHigh, o.In) + w.FFNSplit*split(o.High, o.Kept)
			if o.StepSeconds != 0 {
				o.StepSeconds = (w.Step + w.StepRow*in) * (1 + noise(i))
			}
		} else {
			o.Seconds = w.Head
		}
		o.Seconds *= 1 + noise(i)
		out = append(out, o)
	}
	for _, n := range ns {
		k := n / 4
		h := k / 2
		add(Observation{N: n, Variant: "unpruned", Layer: 0, In: n, InHigh: n, Kept: n, High: n})
		add(Observation{N: n, Variant: "unpruned", Layer: 1, In: n, InHigh: n, Kept: n, High: n})
		add(Observation{N: n, Variant: "unpruned", Layer: -1})
		add(Observation{N: n, Variant: "pruned", Layer: 0, In: n, InHigh: n, Kept: k, High: h, StepSeconds: 1})
		add(Observation{N: n, Variant: "pruned", Layer: 1, In: k, InHigh: h, Kept: k, High: h})
		add(Observation{N: n, Variant: "pruned", Layer: -1})
	}
	return out
}

func TestFit(t *testing.T) {
	base := prune.CostModelLiteral{Format: prune.CostFormat, Shape: testShape, Layer: 3.2, AttentionRow: 0.015,
		AttentionRowSq: 1.3e-4, FFNRow: 8.5e-3, FFNHighRow: 2e-3, AttentionSplit: 1.1, FFNSplit: 0.6, Step: 0.06, StepRow: 4e-4, Head: 0.36}
	noFloor := base
	noFloor.Layer, noFloor.Step = 0, 0
	linear := base
	linear.AttentionRowSq, linear.FFNHighRow = 0, 0
	noSplit := base
	noSplit.AttentionSplit, noSplit.FFNSplit = 0, 0
	ns := []int{16, 32, 64, 128}
	exact := func(int) float64 { return 0 }
	tests := []struct {
		name  string
		w     prune.CostModelLiteral
		noise func(int) float64
		tol   float64 // relative, on each figure
	}{
		{"exact", base, exact, 1e-6},
		{"no floors", noFloor, exact, 1e-6},
		{"no quadratic term, no degree cost", linear, exact, 1e-6},
		{"no split floors", noSplit, exact, 1e-6},
		// ±0.1% alternating noise moves no figure by more than a few percent.
		{"noisy", base, func(i int) float64 { return 1e-3 * float64(1-2*(i%2)) }, 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := synthetic(tc.w, ns, tc.noise)
			got, err := Fit(obs, testShape)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
				scale     float64 // the figure's size in a layer of 128 rows
			}{
				{"layer", got.Layer, tc.w.Layer, 1}, {"attention_row", got.AttentionRow, tc.w.AttentionRow, 128},
				{"attention_row_sq", got.AttentionRowSq, tc.w.AttentionRowSq, 128 * 128}, {"ffn_row", got.FFNRow, tc.w.FFNRow, 128},
				{"ffn_high_row", got.FFNHighRow, tc.w.FFNHighRow, 128}, {"step", got.Step, tc.w.Step, 1},
				{"step_row", got.StepRow, tc.w.StepRow, 128}, {"head", got.Head, tc.w.Head, 1},
				{"attention_split", got.AttentionSplit, tc.w.AttentionSplit, 1}, {"ffn_split", got.FFNSplit, tc.w.FFNSplit, 1},
			} {
				// Error measured against a 128-row layer's time, so that a
				// figure that is zero must come out (nearly) zero.
				if d := math.Abs(f.got-f.want) * f.scale; d > tc.tol*base.Layer {
					t.Errorf("%s = %.6g, want %.6g", f.name, f.got, f.want)
				}
			}
			if rms := predict(obs, got); rms > 2*tc.tol {
				t.Errorf("relative RMS error %v", rms)
			}
		})
	}
}

func TestFitNonNegative(t *testing.T) {
	tests := []struct {
		name string
		x    [][]float64
		y    []float64
		want []float64
	}{
		{"exact line", [][]float64{{1, 1}, {1, 2}, {1, 3}}, []float64{3, 5, 7}, []float64{1, 2}},
		// Unconstrained: y = -1 + 2x; the intercept is held at 0 and the
		// slope refitted: Σxy/Σx² = (1+6+15)/14.
		{"negative intercept clamped", [][]float64{{1, 1}, {1, 2}, {1, 3}}, []float64{1, 3, 5}, []float64{0, 22.0 / 14}},
		{"all negative", [][]float64{{1}, {2}}, []float64{-1, -2}, []float64{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := make([]float64, len(tc.y))
			for i := range w {
				w[i] = 1
			}
			got, err := fitNonNegative(tc.x, tc.y, w)
			if err != nil {
				t.Fatal(err)
			}
			for j := range tc.want {
				if math.Abs(got[j]-tc.want[j]) > 1e-9 {
					t.Errorf("coefficients %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
	// Dependent columns: either exact solution, never a singular failure.
	x := [][]float64{{1, 2}, {2, 4}, {3, 6}}
	got, err := fitNonNegative(x, []float64{2, 4, 6}, []float64{1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range x {
		if p := row[0]*got[0] + row[1]*got[1]; math.Abs(p-float64(2*(i+1))) > 1e-9 {
			t.Errorf("dependent columns: coefficients %v predict %v at row %d", got, p, i)
		}
	}
	if _, err := fitNonNegative(nil, nil, nil); err == nil {
		t.Error("no observations: no error")
	}
	if _, err := fitNonNegative([][]float64{{1, 2}, {1}}, []float64{1, 2}, []float64{1, 1}); err == nil {
		t.Error("ragged: no error")
	}
}

func TestFitErrors(t *testing.T) {
	w := prune.CostModelLiteral{Layer: 1, AttentionRow: 0.01, FFNRow: 0.01, Step: 0.1, StepRow: 1e-3, Head: 0.2}
	good := synthetic(w, []int{16, 32, 64}, func(int) float64 { return 0 })
	tests := []struct {
		name string
		obs  []Observation
	}{
		{"one length (two row counts)", synthetic(w, []int{64}, func(int) float64 { return 0 })},
		{"no steps", func() []Observation {
			var out []Observation
			for _, o := range good {
				o.StepSeconds = 0
				out = append(out, o)
			}
			return out
		}()},
		{"no head", func() []Observation {
			var out []Observation
			for _, o := range good {
				if o.Layer >= 0 {
					out = append(out, o)
				}
			}
			return out
		}()},
		{"NaN", append([]Observation{{Layer: 0, In: 4, Seconds: math.NaN()}}, good...)},
		{"negative", append([]Observation{{Layer: 0, In: 4, Seconds: -1}}, good...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Fit(tc.obs, testShape); err == nil || !strings.HasPrefix(err.Error(), "cannot fit") {
				t.Errorf("error %v", err)
			}
		})
	}
}

func TestMedians(t *testing.T) {
	o := Observation{N: 16, Variant: "unpruned", Layer: 0, In: 16, InHigh: 16, Kept: 16, High: 16}
	var obs []Observation
	for _, s := range []float64{3, 9, 4} {
		o.Seconds = s
		obs = append(obs, o)
	}
	other := o
	other.Layer, other.Seconds = 1, 5
	got := medians(append(obs, other))
	if len(got) != 2 || got[0].Seconds != 4 || got[0].Reps != 3 || got[1].Seconds != 5 || got[1].Reps != 1 {
		t.Errorf("medians %+v", got)
	}
}

// TestMeasure measures sentiment-tiny on the insecure test preset at three
// short lengths: real inferences through the engine, then the fit.
func TestMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 6 private inferences")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := "../../models/trained/sentiment-tiny"
	rep, err := Measure(ctx, Config{ModelDir: dir, Preset: elementwise.InsecureElementwise11, AllowInsecure: true,
		Workers: 2, Lengths: []int{16, 24, 32}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Observations) != 3*2*3 {
		t.Fatalf("%d observations, want 18", len(rep.Observations))
	}
	// The pruned run's thresholds are placed between the scores of the
	// plaintext run's kept and dropped rows; the encrypted scores may move
	// a row next to them across, so the kept count may differ by a row.
	near := func(got, want int) bool { return got >= want-1 && got <= want+1 }
	kept := map[int]int{} // the pruned run's kept count at each length
	for _, o := range rep.Observations {
		if o.Variant == "pruned" && o.Layer == 0 {
			kept[o.N] = o.Kept
		}
	}
	for _, o := range rep.Observations {
		pruned := o.Variant == "pruned"
		wantKept := o.N
		if pruned {
			wantKept = int(math.Round(keepFraction * float64(o.N)))
		}
		switch {
		case o.Layer < 0:
			if !(o.Seconds > 0) {
				t.Errorf("%+v: no head time", o)
			}
		case o.Layer == 0 && (o.In != o.N || !near(o.Kept, wantKept) || (o.StepSeconds > 0) != pruned):
			t.Errorf("%+v: want %d rows in, %d kept, a step %v", o, o.N, wantKept, pruned)
		case o.Layer == 1 && pruned && o.In != kept[o.N], o.Layer == 1 && !pruned && o.In != o.N:
			t.Errorf("%+v: rows in are not the rows layer 0 kept", o)
		case o.Layer == 1 && (o.StepSeconds != 0 || !(o.Seconds > 0) || o.Bytes <= 0):
			t.Errorf("%+v: want no step, a time and bytes", o)
		}
	}
	w := rep.Model
	if !strings.Contains(w.Source, elementwise.InsecureElementwise11) || !strings.Contains(w.Source, "n = 16,24,32") {
		t.Errorf("source %q does not say the preset and lengths", w.Source)
	}
	m, err := engine.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := prune.NewCoster(w, m.Config())
	if err != nil {
		t.Fatal(err)
	}
	// A layer's time is mostly its floor; the fit predicts the measured
	// layers to well within a factor of two.
	if !(w.Layer > 0) || rep.RelRMS > 0.5 {
		t.Errorf("floor %v s, relative RMS error %v", w.Layer, rep.RelRMS)
	}
	if full, pruned := c.LayerCost(32, 32, 32, 32, false), c.LayerCost(32, 32, 8, 4, true); !(full > 0 && pruned > 0) {
		t.Errorf("layer costs %v, %v", full, pruned)
	}
	var b strings.Builder
	if err := rep.Format(&b); err != nil || !strings.Contains(b.String(), "predicted") {
		t.Errorf("Format: %v\n%s", err, b.String())
	}
}

func TestMeasureErrors(t *testing.T) {
	dir := "../../models/trained/sentiment-tiny"
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no model", Config{ModelDir: t.TempDir()}},
		{"one layer", Config{ModelDir: dir, Layers: 1}},
		{"too long", Config{ModelDir: dir, Lengths: []int{16, 32, 4096}}},
		{"too short", Config{ModelDir: dir, Lengths: []int{2, 16, 32}}},
		{"no lengths", Config{ModelDir: dir, Lengths: []int{}}},
		{"secure preset refused as insecure", Config{ModelDir: dir, Preset: elementwise.InsecureElementwise11, Lengths: []int{16, 24, 32}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Measure(context.Background(), tc.cfg); err == nil || !strings.HasPrefix(err.Error(), "cannot Measure") {
				t.Errorf("error %v", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Measure(ctx, Config{ModelDir: dir, Lengths: []int{16, 24, 32}}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestDefaultLengths(t *testing.T) {
	tests := []struct {
		max  int
		want []int
	}{
		{128, []int{16, 32, 64, 128}},
		{512, []int{64, 128, 256, 512}},
		{64, []int{16, 32, 64}},
		{16, []int{16}},
	}
	for _, tc := range tests {
		if got := DefaultLengths(tc.max); !equal(got, tc.want) {
			t.Errorf("DefaultLengths(%d) = %v, want %v", tc.max, got, tc.want)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
