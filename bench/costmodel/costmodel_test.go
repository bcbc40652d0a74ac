package costmodel

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/prune"
)

func testConfig(t *testing.T, rows int) (Config, *engine.Model) {
	t.Helper()
	m, err := engine.LoadModel("../../models/trained/sentiment-tiny")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ckks.PresetByName(ckks.InsecureTest11, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Server.Config
	step, err := engine.StepParameters(cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Preset: pr, Model: m.Model, ExpShift: m.Approx.SoftmaxShift(),
		Registry: m.Approx.Registry(), Step: step, Rows: rows, Workers: 2,
	}, m
}

func TestMeasure(t *testing.T) {
	cfg, m := testConfig(t, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Measure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := rep.Model
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"pt_mul": w.PtMul, "ct_mul": w.CtMul, "bridge": w.Bridge, "compare": w.Compare} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive time", name, v)
		}
	}
	// A bare product is cheaper per value than a matmul's diagonal pass
	// over a whole ciphertext only by its key switch; a pruning step costs
	// far more per token than any single slot operation.
	if w.Compare < 10*w.CtMul {
		t.Errorf("compare %v per token, product %v per value: comparisons look free", w.Compare, w.CtMul)
	}
	if rep.AttentionBlock <= rep.Linear {
		t.Errorf("attention block %v not slower than one matmul %v", rep.AttentionBlock, rep.Linear)
	}
	if !strings.Contains(w.Source, ckks.InsecureTest11) || !strings.Contains(w.Source, "n=16") {
		t.Errorf("source %q does not say the preset and rows", w.Source)
	}
	// The measured model drives a Coster, and attention stays quadratic.
	c, err := prune.NewCoster(w, m.Server.Config, m.Approx.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if full, half := c.LayerCost(16, 16, 16, 16, false), c.LayerCost(8, 8, 8, 8, false); !(half < full) {
		t.Errorf("layer cost at 8 rows %v, at 16 rows %v", half, full)
	}
}

func TestMeasureErrors(t *testing.T) {
	cfg, _ := testConfig(t, 16)
	bad := []func(*Config){
		func(c *Config) { c.Model = nil },
		func(c *Config) { c.Registry = nil },
		func(c *Config) { c.Rows = 1 },
		func(c *Config) { c.Rows = 1 << 20 },
	}
	for i, f := range bad {
		c := cfg
		f(&c)
		if _, err := Measure(context.Background(), c); err == nil || !strings.HasPrefix(err.Error(), "cannot Measure") {
			t.Errorf("case %d: error %v", i, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Measure(ctx, cfg); err == nil {
		t.Error("cancelled context: no error")
	}
}
