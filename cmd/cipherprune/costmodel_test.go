package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/bench/costmodel"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/prune"
)

// costRecord returns a record of sentiment-tiny's shape whose layers
// follow 3 s + 0.01 s a row in + 0.005 s a kept row, steps 0.05 s + 1 ms a
// row, head 0.3 s.
func costRecord(t *testing.T, m *engine.Model) costmodel.Report {
	t.Helper()
	rep := costmodel.Report{Preset: "Elementwise14", Lengths: []int{16, 32, 64}, Reps: 1, Run: 2, Layers: 2,
		Shape: prune.ShapeOf(m.Config()), Machine: "test"}
	layer := func(in, kept int) float64 { return 3 + 0.01*float64(in) + 0.005*float64(kept) }
	for _, n := range rep.Lengths {
		k := n / 4
		rep.Runs = append(rep.Runs,
			costmodel.Observation{N: n, Variant: "unpruned", Layer: 0, In: n, InHigh: n, Kept: n, High: n, Seconds: layer(n, n)},
			costmodel.Observation{N: n, Variant: "unpruned", Layer: 1, In: n, InHigh: n, Kept: n, High: n, Seconds: layer(n, n)},
			costmodel.Observation{N: n, Variant: "unpruned", Layer: -1, Seconds: 0.3},
			costmodel.Observation{N: n, Variant: "pruned", Layer: 0, In: n, InHigh: n, Kept: k, High: k, Seconds: layer(n, k),
				StepSeconds: 0.05 + 1e-3*float64(n)},
			costmodel.Observation{N: n, Variant: "pruned", Layer: 1, In: k, InHigh: k, Kept: k, High: k, Seconds: layer(k, k)},
			costmodel.Observation{N: n, Variant: "pruned", Layer: -1, Seconds: 0.3})
	}
	return rep
}

// TestCostModelRefit: a record refitted by the command gives the cost
// model it was made from, in a file that search and eval then read.
func TestCostModelRefit(t *testing.T) {
	dir := "../../models/trained/sentiment-tiny"
	m, err := engine.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	b, err := json.Marshal(costRecord(t, m))
	if err != nil {
		t.Fatal(err)
	}
	rec, out, again := filepath.Join(tmp, "record.json"), filepath.Join(tmp, "cost.json"), filepath.Join(tmp, "again.json")
	if err := os.WriteFile(rec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := runCostModel(context.Background(), []string{"--model", dir, "--refit", rec, "--out", out, "--record", again}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "predicted") {
		t.Errorf("no residual table:\n%s", stdout.String())
	}
	c, err := newCoster(out, dir, m.Config(), m.Approx.Registry(), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Model()
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"layer", w.Layer, 3}, {"attention_row", w.AttentionRow, 0.01}, {"ffn_row", w.FFNRow, 0.005},
		{"step", w.Step, 0.05}, {"step_row", w.StepRow, 1e-3}, {"head", w.Head, 0.3},
	} {
		if d := f.got - f.want; d > 1e-6 || d < -1e-6 {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if w.AttentionRowSq > 1e-9 || w.FFNHighRow > 1e-9 || w.AttentionSplit > 1e-6 || w.FFNSplit > 1e-6 {
		t.Errorf("terms the record does not have: %+v", w)
	}
	if _, err := os.Stat(again); err != nil {
		t.Errorf("--record: %v", err)
	}
	// A record without its model's shape, or not JSON, is refused.
	noShape := costRecord(t, m)
	noShape.Shape = prune.CostShape{}
	b, err = json.Marshal(noShape)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"no shape": b, "not json": []byte("{")} {
		if err := os.WriteFile(rec, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := runCostModel(context.Background(), []string{"--model", dir, "--refit", rec, "--out", out}, &stdout, &stderr); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNewCoster(t *testing.T) {
	dir := "../../models/trained/sentiment-tiny"
	m, err := engine.LoadModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	old := filepath.Join(tmp, "old.json")
	if err := os.WriteFile(old, []byte(`{"source":"measured","pt_mul":5.9e-7,"ct_mul":5e-6,"bridge":5.7e-6,"compare":2e-3,"attention":1.5e-5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	other := prune.AnalyticCostModel(m.Config(), m.Approx.Registry())
	other.Shape.Hidden = 256
	b, err := json.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	spam := filepath.Join(tmp, "spam.json")
	if err := os.WriteFile(spam, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if _, err := newCoster(old, dir, m.Config(), m.Approx.Registry(), &stderr); !errors.Is(err, prune.ErrOldCostModel) {
		t.Errorf("v1 file: %v", err)
	}
	if _, err := newCoster(spam, dir, m.Config(), m.Approx.Registry(), &stderr); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("another model's file: %v", err)
	}
	// No file in the directory: the analytic model.
	c, err := newCoster("", tmp, m.Config(), m.Approx.Registry(), &stderr)
	if err != nil || !strings.HasPrefix(c.Model().Source, "analytic") {
		t.Errorf("analytic fallback: %v", err)
	}
}
