package main

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/prune"
)

func TestParseFloats(t *testing.T) {
	tests := []struct {
		in   string
		want []float64
		ok   bool
	}{
		{"0,0.1, 3", []float64{0, 0.1, 3}, true},
		{"1", []float64{1}, true},
		{"1,-2", nil, false},
		{"x", nil, false},
		{"", nil, false},
	}
	for _, tc := range tests {
		got, err := parseFloats(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseFloats(%q): err %v", tc.in, err)
			continue
		}
		for i := range tc.want {
			if got[i] != tc.want[i] {
				t.Errorf("parseFloats(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// tinySearchEval returns a searchEval over a random 2-layer model of
// maximum length 16.
func tinySearchEval(t *testing.T) *searchEval {
	t.Helper()
	tok, err := models.NewTokenizer([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	lit := models.DefaultConfigLiteral()
	lit.VocabSize, lit.HiddenSize, lit.NumHiddenLayers, lit.NumAttentionHeads = 7, 8, 2, 2
	lit.IntermediateSize, lit.MaxPositionEmbeddings, lit.ModelType = 16, 16, "bert"
	cfg, err := models.NewConfig(lit)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewRandomModel(cfg, tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := prune.NewCoster(prune.AnalyticCostModel(cfg, approx.Default()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &searchEval{model: m, coster: c}
}

func TestSearchStats(t *testing.T) {
	e := tinySearchEval(t)
	counts := [][]prune.LayerCounts{{{In: 5, Kept: 3, High: 2}, {In: 3, Kept: 1, High: 1}}}
	lengths := []int{5}
	tests := []struct {
		name               string
		pad                int
		unpruned, compared bool
		kept, high         float64
		in0                float64
	}{
		{"natural", 0, false, true, 4.0 / 10, 3.0 / 4, 5},
		{"padded", 16, false, true, 4.0 / 32, 3.0 / 4, 16},
		{"unpruned padded", 16, true, false, 17.0 / 32, 1, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := counts
			if tc.unpruned {
				c = [][]prune.LayerCounts{prune.BaselineCounts(2, 5)}
			}
			st, err := e.stats(c, lengths, tc.pad, tc.compared, tc.unpruned)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(st.KeptFraction-tc.kept) > 1e-12 || math.Abs(st.HighFraction-tc.high) > 1e-12 || st.MeanIn[0] != tc.in0 {
				t.Errorf("got %+v, want kept %v high %v in0 %v", st, tc.kept, tc.high, tc.in0)
			}
			if tc.unpruned && math.Abs(st.RelativeCost-1) > 1e-12 {
				t.Errorf("unpruned relative cost %v, want 1", st.RelativeCost)
			}
			if !tc.unpruned && !(st.RelativeCost > 0 && st.RelativeCost < 1) {
				t.Errorf("pruned relative cost %v, want in (0, 1)", st.RelativeCost)
			}
		})
	}
	if _, err := e.stats([][]prune.LayerCounts{{{In: 5, Kept: 3, High: 2}}}, lengths, 0, true, false); err == nil {
		t.Error("counts of the wrong layer count accepted")
	}
}

func TestWriteSweep(t *testing.T) {
	dir := t.TempDir()
	st := func(c float64) scheduleStats {
		return scheduleStats{MeanKept: []float64{3, 1}, MeanIn: []float64{5, 3}, KeptFraction: 0.4, HighFraction: 0.5, RelativeCost: c}
	}
	rows := []sweepRow{
		{Schedule: "exact (no pruning)", Accuracy: 0.8, Padded: st(1), Natural: st(1)},
		{Schedule: "BOLT halving after layer 0", Accuracy: 0.75, Padded: st(0.4), Natural: st(0.6)},
		{Schedule: "λ=0", Accuracy: 0.8, Padded: st(0.45), Natural: st(0.9)},
		{Schedule: "λ=1", Lambda: 1, Accuracy: 0.7, Padded: st(0.4), Natural: st(0.3)},
	}
	if err := writeSweep(dir, "models/trained/x", rows); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sweep.csv", "sweep.json"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "sweep.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatal(err)
	}
}
