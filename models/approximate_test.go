package models

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
)

func TestApproximateForwardTracksExact(t *testing.T) {
	cfg := tinyConfig(t, 2, 16, 2, 32)
	m := tinyModel(t, cfg, 3)
	nl, err := NewApproximate(DefaultApproxSettingsLiteral())
	if err != nil {
		t.Fatal(err)
	}
	enc := Encoding{IDs: []int{2, 5, 6, 7, 3}, TypeIDs: make([]int, 5), AttentionMask: []int{1, 1, 1, 1, 1}}
	exact, err := m.Forward(enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Forward(enc, &ForwardOptions{Nonlinear: nl})
	if err != nil {
		t.Fatal(err)
	}
	for i := range exact {
		if d := math.Abs(got[i] - exact[i]); d > 1e-3 || d == 0 {
			t.Errorf("logit %d: approx %v exact %v (diff %g; want 0 < diff <= 1e-3)", i, got[i], exact[i], d)
		}
	}
	r := nl.Ranges()
	for _, fn := range approx.Funcs() {
		if r[fn].N == 0 {
			t.Errorf("%s: no inputs recorded", fn)
		}
		if r[fn].OutOfRange() != 0 {
			t.Errorf("%s: %d inputs out of the default interval", fn, r[fn].OutOfRange())
		}
	}
	// The low degree changes the result, but not by much.
	low, err := m.Forward(enc, &ForwardOptions{Nonlinear: nl.Clone(), Schedule: ScheduleFunc(func(att *LayerAttention) (Decision, error) {
		deg := make([]Degree, len(att.Tokens))
		for i := 1; i < len(deg); i++ {
			deg[i] = DegreeLow
		}
		return Decision{Degrees: deg}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	if low[0] == got[0] || math.Abs(low[0]-exact[0]) > 0.05 {
		t.Errorf("low-degree logit %v vs high %v, exact %v", low[0], got[0], exact[0])
	}
}

func TestApproximateCountsOutOfRange(t *testing.T) {
	nl, err := NewApproximate(DefaultApproxSettingsLiteral())
	if err != nil {
		t.Fatal(err)
	}
	a, b := nl.Registry().Interval(approx.GELU)
	if got, want := nl.GELU(b+100, DegreeHigh), nl.Registry().Eval(approx.GELU, approx.High, b); got != want {
		t.Errorf("GELU above the interval = %v, want the clamped %v", got, want)
	}
	nl.GELU(a-1, DegreeLow)
	nl.GELU(0, DegreeHigh)
	r := nl.Ranges()[approx.GELU]
	if r.N != 3 || r.Above != 1 || r.Below != 1 || r.Max != b+100 || r.Min != a-1 {
		t.Errorf("GELU range stats %+v", r)
	}
	other := nl.Clone()
	if other.Ranges()[approx.GELU].N != 0 {
		t.Error("Clone kept the counters")
	}
	other.GELU(1, DegreeHigh)
	nl.MergeRanges(other)
	if nl.Ranges()[approx.GELU].N != 4 {
		t.Error("MergeRanges lost a count")
	}
}

func TestNewApproximateErrors(t *testing.T) {
	lit := DefaultApproxSettingsLiteral()
	lit.SoftmaxShift = math.Inf(1)
	if _, err := NewApproximate(lit); err == nil {
		t.Error("infinite shift accepted")
	}
	lit = DefaultApproxSettingsLiteral()
	lit.Registry.GELU.Interval = [2]float64{1, -1}
	if _, err := NewApproximate(lit); err == nil {
		t.Error("empty interval accepted")
	}
}

func TestApproxSettingsFile(t *testing.T) {
	dir := t.TempDir()
	got, err := LoadApproxSettings(dir)
	if err != nil || got.SoftmaxShift != 0 || got.Registry.GELU != approx.DefaultLiteral().GELU {
		t.Fatalf("missing file: %+v, %v", got, err)
	}
	lit := DefaultApproxSettingsLiteral()
	lit.SoftmaxShift = 2.5
	lit.Registry.Tanh.Interval = [2]float64{-3, 3}
	if err := WriteApproxSettings(dir, lit); err != nil {
		t.Fatal(err)
	}
	if got, err = LoadApproxSettings(dir); err != nil || got.SoftmaxShift != 2.5 || got.Registry.Tanh.Interval != lit.Registry.Tanh.Interval {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ApproxFile), []byte(`{"registry":{},"shift":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadApproxSettings(dir); err == nil || !strings.Contains(err.Error(), "shift") {
		t.Fatalf("unknown field: err = %v", err)
	}
}

func TestCalibrateApprox(t *testing.T) {
	ranges := map[approx.Func]approx.RangeStats{
		approx.GELU:       {N: 10, Min: -1.5, Max: 2},
		approx.Exp:        {N: 10, Min: -12, Max: -0.5},
		approx.Reciprocal: {N: 10, Min: 0.01, Max: 1},
		approx.InvSqrt:    {N: 10, Min: 0.5, Max: 2},
		approx.Tanh:       {N: 10, Min: -1, Max: 1},
	}
	lit, err := CalibrateApprox(DefaultApproxSettingsLiteral(), 5, ranges)
	if err != nil {
		t.Fatal(err)
	}
	// δ = (ln 0.01 + ln 1)/2: the sums become [0.1, 10].
	delta := math.Log(0.01) / 2
	if math.Abs(lit.SoftmaxShift-(5+delta)) > 1e-12 {
		t.Errorf("shift %v, want %v", lit.SoftmaxShift, 5+delta)
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		t.Fatal(err)
	}
	// Every observed (and re-shifted) input lies inside its new interval.
	inside := map[approx.Func][]float64{
		approx.GELU:       {-1.5, 2},
		approx.Exp:        {-12 - delta, -0.5 - delta},
		approx.Reciprocal: {0.01 * math.Exp(-delta), 1 * math.Exp(-delta)},
		approx.InvSqrt:    {0.5, 2},
		approx.Tanh:       {-1, 1},
	}
	for fn, xs := range inside {
		for _, x := range xs {
			if !reg.Contains(fn, x) {
				a, b := reg.Interval(fn)
				t.Errorf("%s: %v outside [%v, %v]", fn, x, a, b)
			}
		}
		for _, d := range approx.Degrees() {
			st := reg.Recipe(fn, d).Stats()
			errv, target := st.MaxAbsErr, CalibTargetHigh
			if fn == approx.Reciprocal || fn == approx.InvSqrt {
				errv = st.MaxRelErr
			}
			if d == approx.Low && (fn == approx.GELU || fn == approx.Exp) {
				target = CalibTargetLow
			}
			if errv > target {
				t.Errorf("%s/%s: error %g above target %g", fn, d, errv, target)
			}
		}
	}
	if reg.Recipe(approx.GELU, approx.Low).Cost().CtCtMuls >= reg.Recipe(approx.GELU, approx.High).Cost().CtCtMuls {
		t.Error("low-degree GELU is not cheaper than high")
	}

	bad := map[string]func(map[approx.Func]approx.RangeStats){
		"no observations": func(r map[approx.Func]approx.RangeStats) { r[approx.Tanh] = approx.RangeStats{} },
		"NaN":             func(r map[approx.Func]approx.RangeStats) { r[approx.GELU] = approx.RangeStats{N: 1, NaN: 1} },
		"zero row sum":    func(r map[approx.Func]approx.RangeStats) { r[approx.Reciprocal] = approx.RangeStats{N: 1, Max: 1} },
		"zero variance":   func(r map[approx.Func]approx.RangeStats) { r[approx.InvSqrt] = approx.RangeStats{N: 1, Max: 1} },
	}
	for name, mutate := range bad {
		r := map[approx.Func]approx.RangeStats{}
		for k, v := range ranges {
			r[k] = v
		}
		mutate(r)
		if _, err := CalibrateApprox(DefaultApproxSettingsLiteral(), 0, r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCalibrateApproxWithin: a row-sum range too wide for the error target
// at 8 levels gets, with the limit, a reciprocal whose polynomial and Newton
// steps each fit 8 levels (the HE evaluator refreshes between them) and that
// meets the target, and without it one deeper than 8 levels in one piece.
func TestCalibrateApproxWithin(t *testing.T) {
	ranges := map[approx.Func]approx.RangeStats{
		approx.GELU:       {N: 10, Min: -1.5, Max: 2},
		approx.Exp:        {N: 10, Min: -12, Max: -0.5},
		approx.Reciprocal: {N: 10, Min: 0.002, Max: 2}, // the earlier spam-mini's 512-token rows
		approx.InvSqrt:    {N: 10, Min: 0.5, Max: 2},
		approx.Tanh:       {N: 10, Min: -1, Max: 1},
	}
	recipe := func(lit ApproxSettingsLiteral) *approx.Recipe {
		reg, err := approx.NewRegistry(lit.Registry)
		if err != nil {
			t.Fatal(err)
		}
		return reg.Recipe(approx.Reciprocal, approx.High)
	}
	free, err := CalibrateApprox(DefaultApproxSettingsLiteral(), 5, ranges)
	if err != nil {
		t.Fatal(err)
	}
	limited, err := CalibrateApproxWithin(DefaultApproxSettingsLiteral(), 5, ranges, 8)
	if err != nil {
		t.Fatal(err)
	}
	rec := recipe(limited)
	if d := rec.SegmentDepth(8); d > 8 {
		t.Errorf("limited reciprocal: %d levels in a segment > 8", d)
	}
	if !rec.Splittable() || rec.Cost().Depth <= 8 {
		t.Errorf("limited reciprocal: %d Newton steps, depth %d: the range should need a split recipe", rec.Steps(), rec.Cost().Depth)
	}
	if e := rec.Stats().MaxRelErr; e > CalibTargetHigh {
		t.Errorf("limited reciprocal: relative error %g > %g", e, CalibTargetHigh)
	}
	if d := recipe(free).Cost().Depth; d <= 8 {
		t.Errorf("unlimited reciprocal depth %d: the test range should need more than 8", d)
	}
}

// TestSegmentDepth: a recipe is split only when it is deeper than a segment
// and has Newton steps.
func TestSegmentDepth(t *testing.T) {
	lit := approx.Default().Literal()
	fl := lit.Func(approx.Reciprocal)
	fl.Interval = [2]float64{0.017, 59}
	tests := []struct {
		v              approx.VariantLiteral
		segment, depth int
	}{
		{approx.VariantLiteral{Degree: 127, Newton: 2}, 8, 8},   // 8 + 4 split into 8 and 4
		{approx.VariantLiteral{Degree: 127, Newton: 2}, 12, 12}, // fits whole
		{approx.VariantLiteral{Degree: 127, Newton: 2}, 0, 12},  // never split
		{approx.VariantLiteral{Degree: 255}, 8, 9},              // no Newton steps: cannot split
	}
	for _, tt := range tests {
		fl.High = tt.v
		lit.SetFunc(approx.Reciprocal, fl)
		reg, err := approx.NewRegistry(lit)
		if err != nil {
			t.Fatal(err)
		}
		if got := reg.Recipe(approx.Reciprocal, approx.High).SegmentDepth(tt.segment); got != tt.depth {
			t.Errorf("%+v in segments of %d: %d levels, want %d", tt.v, tt.segment, got, tt.depth)
		}
	}
}

// TestCalibrateLowNeverCostlier: on sentiment-tiny's wide exp range, where the
// low variant's own squaring count needs a high degree, the low variant takes
// the high one's squarings rather than cost more than it (a regression: it
// came out at depth 8 and 11 products against the high variant's 7 and 10).
func TestCalibrateLowNeverCostlier(t *testing.T) {
	ranges := map[approx.Func]approx.RangeStats{
		approx.GELU:       {N: 10, Min: -6.8, Max: 4.6},
		approx.Exp:        {N: 10, Min: -22, Max: 1.9},
		approx.Reciprocal: {N: 10, Min: 0.09, Max: 9.9},
		approx.InvSqrt:    {N: 10, Min: 0.75, Max: 5},
		approx.Tanh:       {N: 10, Min: -1.5, Max: 1.5},
	}
	lit, err := CalibrateApproxWithin(DefaultApproxSettingsLiteral(), 1.5, ranges, 8)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []approx.Func{approx.GELU, approx.Exp} {
		hi, lo := reg.Recipe(fn, approx.High).Cost(), reg.Recipe(fn, approx.Low).Cost()
		if lo.Depth > hi.Depth || (lo.Depth == hi.Depth && lo.CtCtMuls > hi.CtCtMuls) {
			t.Errorf("%s: low variant costs depth %d, %d products; high %d, %d", fn, lo.Depth, lo.CtCtMuls, hi.Depth, hi.CtCtMuls)
		}
		if e := reg.Recipe(fn, approx.Low).Stats().MaxAbsErr; e > CalibTargetLow {
			t.Errorf("%s: low variant error %g > %g", fn, e, CalibTargetLow)
		}
	}
}

// TestCalibrateApproxDepth: with the whole recipe limited, the row-sum
// range of TestCalibrateApproxWithin gets a reciprocal of at most 8 levels
// in one piece (the most accurate such one, above the target).
func TestCalibrateApproxDepth(t *testing.T) {
	ranges := map[approx.Func]approx.RangeStats{
		approx.GELU:       {N: 10, Min: -1.5, Max: 2},
		approx.Exp:        {N: 10, Min: -12, Max: -0.5},
		approx.Reciprocal: {N: 10, Min: 0.002, Max: 2},
		approx.InvSqrt:    {N: 10, Min: 0.5, Max: 2},
		approx.Tanh:       {N: 10, Min: -1, Max: 1},
	}
	lit, err := CalibrateApproxDepth(DefaultApproxSettingsLiteral(), 5, ranges, 8)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range approx.Funcs() {
		for _, d := range approx.Degrees() {
			if c := reg.Recipe(fn, d).Cost(); c.Depth > 8 {
				t.Errorf("%s/%s: depth %d > 8", fn, d, c.Depth)
			}
		}
	}
}
