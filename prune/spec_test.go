package prune

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
)

var update = flag.Bool("update", false, "rewrite testdata/search_golden.json")

// searchGoldenPath is the file the Python search tests read
// (models/training/test_search.py): Go's values of every recipe at sample
// inputs and of the cost of sample schedules.
var searchGoldenPath = filepath.Join("testdata", "search_golden.json")

// searchGolden is the layout of testdata/search_golden.json.
type searchGolden struct {
	Spec    SearchSpec     `json:"spec"`
	Recipes []recipeGolden `json:"recipes"`
	Costs   []costGolden   `json:"costs"`
}

type recipeGolden struct {
	Func    approx.Func   `json:"func"`
	Variant approx.Degree `json:"variant"`
	X       []float64     `json:"x"`
	Y       []float64     `json:"y"`
}

type costGolden struct {
	Counts   []LayerCounts `json:"counts"`
	Compared bool          `json:"compared"`
	Cost     float64       `json:"cost"`
}

func TestCostPolynomial(t *testing.T) {
	m, _ := tinyModel(t)
	cfg := m.Server.Config
	measured := CostModelLiteral{Format: CostFormat, Source: "measured", Shape: ShapeOf(cfg), Layer: 2.5,
		AttentionRow: 3e-3, AttentionRowSq: 4e-5, FFNRow: 2e-3, FFNHighRow: 1e-4, AttentionSplit: 0.7, FFNSplit: 0.5, Step: 0.04, StepRow: 5e-4, Head: 0.3}
	for _, w := range []CostModelLiteral{AnalyticCostModel(cfg, approx.Default()), measured} {
		c, err := NewCoster(w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := c.Polynomial()
		tests := []struct {
			in, inHigh, kept, keptHigh float64
			compared                   bool
		}{
			{16, 16, 16, 16, false}, {16, 16, 6, 3, true}, {6.5, 2.25, 3.1, 1.2, true}, {1, 1, 1, 1, false}, {40, 0, 0, 0, true},
		}
		for _, tc := range tests {
			want := c.LayerCost(tc.in, tc.inHigh, tc.kept, tc.keptHigh, tc.compared) - w.Layer
			got := p.Eval(tc.in, tc.inHigh, tc.kept, tc.keptHigh, tc.compared)
			if math.Abs(got-want) > 1e-12*math.Abs(want) {
				t.Errorf("%s %+v: polynomial %v, LayerCost less the floor %v", w.Source, tc, got, want)
			}
		}
		// A whole inference: the polynomial's head carries the floors, and
		// the last layer is CLS's alone.
		counts := []LayerCounts{{16, 6, 3}, {6, 3, 1}, {3, 1, 1}}
		want, err := c.Cost(counts, true)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Head + p.Eval(16, 16, 6, 3, true) + p.Eval(6, 3, 3, 1, true) + p.EvalLast(3, 1, 1)
		// One query: the last layer's attention is linear in its keys.
		if d := p.EvalLast(6, 1, 1) - p.EvalLast(3, 1, 1); math.Abs(d-3*(p.InSq+p.InInHigh+p.In)) > 1e-9*math.Abs(d) {
			t.Errorf("%s: last layer at 6 keys less at 3: %v", w.Source, d)
		}
		if math.Abs(got-want) > 1e-12*want {
			t.Errorf("%s: polynomial's inference %v, Cost %v", w.Source, got, want)
		}
		if p.Head != c.HeadCost()+3*w.Layer || p.Source != w.Source {
			t.Errorf("head %v source %q", p.Head, p.Source)
		}
	}
}

// makeSearchGolden computes the golden values from the default registry and
// the tiny test model's shape.
func makeSearchGolden(t *testing.T) searchGolden {
	t.Helper()
	m, _ := tinyModel(t)
	reg := approx.Default()
	c, err := NewCoster(AnalyticCostModel(m.Server.Config, reg), m.Server.Config)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := NewSearchSpec(c, reg, 1.25)
	if err != nil {
		t.Fatal(err)
	}
	g := searchGolden{Spec: spec}
	for _, fn := range approx.Funcs() {
		a, b := reg.Interval(fn)
		xs := []float64{a - 1, a, b, b + 3}
		for k := 1; k < 12; k++ {
			xs = append(xs, a+(b-a)*float64(k*k)/144)
		}
		for _, d := range approx.Degrees() {
			ys := make([]float64, len(xs))
			for i, x := range xs {
				ys[i] = reg.Eval(fn, d, x)
			}
			g.Recipes = append(g.Recipes, recipeGolden{Func: fn, Variant: d, X: xs, Y: ys})
		}
	}
	for _, tc := range []struct {
		counts   []LayerCounts
		compared bool
	}{
		{BaselineCounts(3, 16), false},
		{[]LayerCounts{{16, 6, 3}, {6, 3, 1}, {3, 1, 1}}, true},
		{[]LayerCounts{{16, 12, 12}, {12, 12, 2}, {12, 1, 1}}, true},
	} {
		cost, err := c.Cost(tc.counts, tc.compared)
		if err != nil {
			t.Fatal(err)
		}
		g.Costs = append(g.Costs, costGolden{Counts: tc.counts, Compared: tc.compared, Cost: cost})
	}
	return g
}

// TestSearchGolden keeps testdata/search_golden.json, which the Python
// search's tests check their registry evaluator and cost against, in step
// with the Go registry and cost model (go test ./prune -run SearchGolden
// -update rewrites it).
func TestSearchGolden(t *testing.T) {
	g := makeSearchGolden(t)
	if *update {
		b, err := json.MarshalIndent(g, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(searchGoldenPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(searchGoldenPath)
	if err != nil {
		t.Fatalf("%v (run go test ./prune -run SearchGolden -update)", err)
	}
	var old searchGolden
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	if _, err := approx.ParseRegistryJSON(old.Spec.Registry); err != nil {
		t.Fatalf("registry in %s: %v", searchGoldenPath, err)
	}
	if old.Spec.Cost != g.Spec.Cost || old.Spec.Layers != g.Spec.Layers || old.Spec.SoftmaxShift != g.Spec.SoftmaxShift {
		t.Fatalf("%s is stale: spec %+v, now %+v (rerun with -update)", searchGoldenPath, old.Spec.Cost, g.Spec.Cost)
	}
	if len(old.Recipes) != len(g.Recipes) || len(old.Costs) != len(g.Costs) {
		t.Fatalf("%s is stale (rerun with -update)", searchGoldenPath)
	}
	for i, r := range g.Recipes {
		for k, y := range r.Y {
			if o := old.Recipes[i].Y[k]; math.Abs(o-y) > 1e-12*math.Max(1, math.Abs(y)) {
				t.Errorf("%s/%s at %v: file %v, now %v (rerun with -update)", r.Func, r.Variant, r.X[k], o, y)
			}
		}
	}
	for i, c := range g.Costs {
		if o := old.Costs[i].Cost; math.Abs(o-c.Cost) > 1e-9*c.Cost {
			t.Errorf("cost %d: file %v, now %v", i, o, c.Cost)
		}
	}
}

func TestNewSearchSpec(t *testing.T) {
	m, _ := tinyModel(t)
	c, err := NewCoster(AnalyticCostModel(m.Server.Config, approx.Default()), m.Server.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSearchSpec(c, approx.Default(), math.NaN()); err == nil {
		t.Error("NaN shift accepted")
	}
	s, err := NewSearchSpec(c, approx.Default(), 0)
	if err != nil || s.Format != SpecFormat || s.Layers != 3 {
		t.Fatalf("spec %+v, %v", s, err)
	}
}
