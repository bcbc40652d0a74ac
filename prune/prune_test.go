package prune

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

func thresholds(t *testing.T, layers ...LayerLiteral) *Thresholds {
	t.Helper()
	th, err := NewThresholds(ThresholdsLiteral{Layers: layers}, len(layers))
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func TestNewThresholdsErrors(t *testing.T) {
	tests := []struct {
		name   string
		lit    ThresholdsLiteral
		layers int
		want   string
	}{
		{"layer count", ThresholdsLiteral{Layers: []LayerLiteral{{}}}, 2, "1 layers given, model has 2"},
		{"NaN theta", ThresholdsLiteral{Layers: []LayerLiteral{{Theta: math.NaN()}}}, 1, "theta"},
		{"negative beta", ThresholdsLiteral{Layers: []LayerLiteral{{Beta: -0.1}}}, 1, "beta"},
		{"theta above 1", ThresholdsLiteral{Layers: []LayerLiteral{{Theta: 1.5}}}, 1, "theta"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewThresholds(tc.lit, tc.layers)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestThresholdsFile(t *testing.T) {
	dir := t.TempDir()
	doc := `{"layers":[{"theta":0.01,"beta":0.05},{"theta":0.02,"beta":0.1}],"search":{"lambda":0.5}}`
	if err := os.WriteFile(filepath.Join(dir, File), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	th, err := LoadThresholds(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if th.Theta(1) != 0.02 || th.Beta(0) != 0.05 || th.NumLayers() != 2 {
		t.Fatalf("got %+v", th.Literal())
	}
	b, err := th.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := ParseThresholds(b, 2); err != nil || again.Theta(1) != 0.02 {
		t.Fatalf("round trip: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field": `{"layers":[{"theta":0,"beta":0,"gamma":1}]}`,
		"trailing data": `{"layers":[{"theta":0,"beta":0}]} {}`,
		"not json":      `layers`,
	} {
		if _, err := ParseThresholds([]byte(bad), 1); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadThresholds(t.TempDir(), 2); err == nil {
		t.Error("missing file accepted")
	}
}

func TestDecide(t *testing.T) {
	th := thresholds(t, LayerLiteral{Theta: 0.2, Beta: 0.3}, LayerLiteral{Theta: 0.2, Beta: 0.3})
	scores := []float64{0, 0.1, 0.2, 0.25, 0.3, 0.5}
	tests := []struct {
		name      string
		opts      Options
		layer     int
		keep      []bool
		lowDegree []bool
	}{
		{"thresholds", Options{}, 0,
			[]bool{true, false, false, true, true, true}, []bool{false, true, true, true, true, false}},
		{"no pruning", Options{NoPruning: true}, 0,
			[]bool{true, true, true, true, true, true}, []bool{false, true, true, true, true, false}},
		{"no degree reduction", Options{NoDegreeReduction: true}, 0,
			[]bool{true, false, false, true, true, true}, []bool{false, false, false, false, false, false}},
		{"last layer keeps CLS only", Options{NoPruning: true}, 1,
			[]bool{true, false, false, false, false, false}, []bool{false, true, true, true, true, false}},
		{"last layer by threshold", Options{KeepLastLayer: true}, 1,
			[]bool{true, false, false, true, true, true}, []bool{false, true, true, true, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewSchedule(th, tc.opts).Decide(tc.layer, scores)
			for j := range scores {
				if d.Keep[j] != tc.keep[j] {
					t.Errorf("token %d (score %v): keep %v, want %v", j, scores[j], d.Keep[j], tc.keep[j])
				}
				if low := d.Degrees[j] == models.DegreeLow; low != tc.lowDegree[j] {
					t.Errorf("token %d (score %v): low %v, want %v", j, scores[j], low, tc.lowDegree[j])
				}
			}
		})
	}
}

// tinyModel returns a random 3-layer model and a padded encoding.
func tinyModel(t *testing.T) (*models.Model, models.Encoding) {
	t.Helper()
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f"}
	tok, err := models.NewTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	lit := models.DefaultConfigLiteral()
	lit.VocabSize, lit.HiddenSize, lit.NumHiddenLayers, lit.NumAttentionHeads = len(vocab), 16, 3, 2
	lit.IntermediateSize, lit.MaxPositionEmbeddings, lit.ModelType = 32, 32, "bert"
	cfg, err := models.NewConfig(lit)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewRandomModel(cfg, tok, 7)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.EncodePadded("a b c d e f a b c d", 16)
	if err != nil {
		t.Fatal(err)
	}
	return m, enc
}

func TestScheduleInForward(t *testing.T) {
	m, enc := tinyModel(t)
	real := 0
	for _, v := range enc.AttentionMask {
		real += v
	}
	th := thresholds(t, LayerLiteral{Theta: 0.05, Beta: 0.1}, LayerLiteral{Theta: 0.08, Beta: 0.12}, LayerLiteral{})
	s := NewSchedule(th, Options{})
	if _, err := m.Forward(enc, &models.ForwardOptions{Schedule: s}); err != nil {
		t.Fatal(err)
	}
	c := s.Counts()
	if len(c) != 3 || c[0].In != 16 || c[2].Kept != 1 || c[2].High != 1 {
		t.Fatalf("counts %+v", c)
	}
	if c[0].Kept > real {
		t.Errorf("padding survived: kept %d of %d real tokens", c[0].Kept, real)
	}
	for l := 1; l < 3; l++ {
		if c[l].In != c[l-1].Kept || c[l].High > c[l].Kept || c[l].Kept > c[l].In {
			t.Errorf("inconsistent counts at layer %d: %+v", l, c)
		}
	}
	if _, err := s.AfterAttention(&models.LayerAttention{Layer: 0}); err == nil {
		t.Error("a fourth layer was accepted")
	}
}

func TestFixedSchedules(t *testing.T) {
	m, enc := tinyModel(t)
	f, err := NewFixedSchedule([]int{16, 6, 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(enc, &models.ForwardOptions{Schedule: f}); err != nil {
		t.Fatal(err)
	}
	want := []LayerCounts{{16, 6, 6}, {6, 3, 3}, {3, 1, 1}}
	for l, c := range f.Counts() {
		if c != want[l] {
			t.Errorf("layer %d: %+v, want %+v", l, c, want[l])
		}
	}
	h := NewHalvingSchedule(3)
	if _, err := m.Forward(enc, &models.ForwardOptions{Schedule: h}); err != nil {
		t.Fatal(err)
	}
	// 12 real tokens ([CLS] 10 words [SEP]): 6 after layer 0, then all.
	want = []LayerCounts{{16, 6, 6}, {6, 6, 6}, {6, 1, 1}}
	for l, c := range h.Counts() {
		if c != want[l] {
			t.Errorf("halving layer %d: %+v, want %+v", l, c, want[l])
		}
	}
	for _, bad := range [][]int{{16, 0, 1}, {4, 8, 2}} {
		if _, err := NewFixedSchedule(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestTopK(t *testing.T) {
	tests := []struct {
		scores []float64
		k      int
		want   []int
	}{
		{[]float64{0.1, 0.5, 0.3, 0.5}, 2, []int{1, 3}},
		{[]float64{0.1, 0.5, 0.3}, 1, []int{1}},
		{[]float64{0.2, 0.2, 0.2}, 2, []int{0, 1}},
		{[]float64{0.1, 0.2}, 5, []int{0, 1}},
		{[]float64{0.1, 0.2}, 0, nil},
	}
	for _, tc := range tests {
		got := TopK(tc.scores, tc.k)
		if len(got) != len(tc.want) {
			t.Errorf("TopK(%v, %d) = %v, want %v", tc.scores, tc.k, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("TopK(%v, %d) = %v, want %v", tc.scores, tc.k, got, tc.want)
			}
		}
	}
}

func TestCoster(t *testing.T) {
	m, _ := tinyModel(t)
	c, err := NewCoster(AnalyticCostModel(m.Server.Config, approx.Default()), m.Server.Config)
	if err != nil {
		t.Fatal(err)
	}
	base, err := c.Cost(BaselineCounts(3, 16), false)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := c.Cost([]LayerCounts{{16, 6, 3}, {6, 3, 1}, {3, 1, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	allHigh, err := c.Cost([]LayerCounts{{16, 6, 6}, {6, 3, 3}, {3, 1, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !(pruned < allHigh && allHigh < base) {
		t.Errorf("costs: pruned+low %v, pruned %v, baseline %v; want increasing", pruned, allHigh, base)
	}
	// Attention is quadratic in the tokens, the rest linear.
	c1 := c.LayerCost(10, 10, 10, 10, false)
	c2 := c.LayerCost(20, 20, 20, 20, false)
	if r := c2 / c1; r <= 2 || r >= 4 {
		t.Errorf("doubling the tokens multiplies the cost by %v, want between 2 and 4", r)
	}
	if _, err := c.Cost(BaselineCounts(2, 16), false); err == nil {
		t.Error("wrong layer count accepted")
	}
	bad := AnalyticCostModel(m.Server.Config, approx.Default())
	bad.FFNRow = math.Inf(1)
	if _, err := NewCoster(bad, m.Server.Config); err == nil {
		t.Error("infinite weight accepted")
	}
	// The split floors: paid by a stage whose rows have both degrees.
	split := AnalyticCostModel(m.Server.Config, approx.Default())
	split.AttentionSplit, split.FFNSplit = 1000, 300
	cs, err := NewCoster(split, m.Server.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, inHigh, kept, keptHigh float64
		want                       float64
	}{
		{16, 16, 16, 16, 0}, {16, 16, 6, 3, 300}, {6, 3, 6, 3, 1300}, {6, 3, 6, 6, 1000},
	} {
		got := cs.LayerCost(tc.in, tc.inHigh, tc.kept, tc.keptHigh, true) - c.LayerCost(tc.in, tc.inHigh, tc.kept, tc.keptHigh, true)
		if math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%+v: split floors %v, want %v", tc, got, tc.want)
		}
	}
	other := AnalyticCostModel(m.Server.Config, approx.Default())
	other.Shape.Hidden *= 2
	if _, err := NewCoster(other, m.Server.Config); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("another shape's cost model: %v", err)
	}
}

func TestLoadCostModel(t *testing.T) {
	m, _ := tinyModel(t)
	good := AnalyticCostModel(m.Server.Config, approx.Default())
	good.Layer, good.Step = 2.5, 0.04
	b, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cost.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadCostModel(path); err != nil || c != good {
		t.Fatalf("round trip: got %+v, %v; want %+v", c, err, good)
	}
	if _, err := LoadCostModel(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("missing file: no error")
	}
	shape := `"shape":{"hidden":16,"heads":2,"intermediate":32}`
	tests := []struct {
		name, json, want string
	}{
		{"v1 weights", `{"source":"x","pt_mul":1,"ct_mul":3,"bridge":2,"compare":5}`, "format v1"},
		{"v1 with attention", `{"source":"x","pt_mul":5e-7,"ct_mul":5e-6,"bridge":5e-6,"compare":2e-3,"attention":1e-5}`, "re-measure"},
		{"no format", `{"source":"x",` + shape + `,"layer":1}`, "format"},
		{"other format", `{"format":"cipherprune-cost/v3",` + shape + `}`, "format"},
		{"negative", `{"format":"cipherprune-cost/v2",` + shape + `,"ffn_row":-1}`, "ffn_row"},
		{"no shape", `{"format":"cipherprune-cost/v2","layer":1}`, "shape"},
		{"unknown field", `{"format":"cipherprune-cost/v2",` + shape + `,"pt_mul":1}`, "unknown field"},
		{"not json", `{"format":`, "cannot parse"},
		{"trailing", `{"format":"cipherprune-cost/v2",` + shape + `} {}`, "after top-level value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCostModel([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ParseCostModel([]byte(`{"pt_mul":1}`)); !errors.Is(err, ErrOldCostModel) {
		t.Errorf("v1 file: %v, want ErrOldCostModel", err)
	}
}

// FuzzParseCostModel: any bytes give a valid cost model or an error.
func FuzzParseCostModel(f *testing.F) {
	f.Add([]byte(`{"format":"cipherprune-cost/v2","shape":{"hidden":16,"heads":2,"intermediate":32},"layer":1,"ffn_row":2}`))
	f.Add([]byte(`{"pt_mul":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCostModel(b)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted an invalid cost model: %v", verr)
			}
		}
	})
}

// TestDecideBelowMinTheta: a layer whose θ is at most MinTheta prunes
// nothing and keeps the degrees the previous layer gave its kept rows, the
// engine's rule (engine.Rules skips such a layer).
func TestDecideBelowMinTheta(t *testing.T) {
	th := thresholds(t, LayerLiteral{Theta: 0.2, Beta: 0.3}, LayerLiteral{Theta: MinTheta / 2, Beta: 0.9}, LayerLiteral{})
	s := NewSchedule(th, Options{})
	first := s.Decide(0, []float64{0, 0.1, 0.25, 0.5})
	if want := []bool{true, false, true, true}; !slices.Equal(first.Keep, want) {
		t.Fatalf("layer 0 keeps %v, want %v", first.Keep, want)
	}
	// Layer 1 sees the three kept rows: CLS (high), 0.25 (low), 0.5 (high).
	// With β = 0.9 applied they would all be low; carried, they are not.
	d := s.Decide(1, []float64{0, 0.0001, 0.95})
	if want := []bool{true, true, true}; !slices.Equal(d.Keep, want) {
		t.Errorf("layer 1 keeps %v, want every row", d.Keep)
	}
	if want := []models.Degree{models.DegreeHigh, models.DegreeLow, models.DegreeHigh}; !slices.Equal(d.Degrees, want) {
		t.Errorf("layer 1 degrees %v, want the carried %v", d.Degrees, want)
	}
}
