package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cipherprune/cipherprune/bench/costmodel"
	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/prune"
)

// costModelFile is the measured cost model's name in a model directory;
// search and eval read it when --cost-model is not given.
const costModelFile = "cost.json"

// loadCostModel returns the cost model of path, or with path empty the
// model directory's measured cost.json when it exists, else the analytic
// model; it logs which.
func loadCostModel(path, modelDir string, stderr io.Writer) (prune.CostModelLiteral, error) {
	if path == "" {
		p := filepath.Join(modelDir, costModelFile)
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	if path == "" {
		w := prune.AnalyticCostModel()
		fmt.Fprintf(stderr, "cost model: %s\n", w.Source)
		return w, nil
	}
	w, err := prune.LoadCostModel(path)
	if err != nil {
		return w, err
	}
	fmt.Fprintf(stderr, "cost model: %s (%s)\n", path, w.Source)
	return w, nil
}

// runCostModel implements "cipherprune costmodel": it times a matmul, a
// ciphertext product, a refresh, a pruning step and an attention block on
// the model's shape and writes the per-value weights the threshold search
// and eval --prune read.
func runCostModel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("costmodel", stderr)
	modelDir := fs.String("model", "models/trained/sentiment-tiny", "model directory")
	preset := fs.String("preset", ckks.DefaultPreset, "CKKS preset")
	allowInsecure := fs.Bool("allow-insecure", false, "allow an InsecureTest... preset (tests only, NOT secure)")
	rows := fs.Int("n", 128, "rows timed (at most the model's positions)")
	workers := fs.Int("workers", 2, "evaluator goroutines")
	reps := fs.Int("reps", 1, "runs of each timed operation (the median is kept)")
	out := fs.String("out", "", "output file (default: MODEL/"+costModelFile+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pr, err := ckks.PresetByName(*preset, *allowInsecure)
	if err != nil {
		return err
	}
	m, err := engine.LoadModel(*modelDir)
	if err != nil {
		return err
	}
	cfg := m.Server.Config
	if *rows < 2 || *rows > cfg.MaxPositions() {
		return fmt.Errorf("cannot costmodel: --n %d not in [2, %d]", *rows, cfg.MaxPositions())
	}
	step, err := engine.StepParameters(cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		return err
	}
	rep, err := costmodel.Measure(ctx, costmodel.Config{
		Preset: pr, Model: m.Model, ExpShift: m.Approx.SoftmaxShift(),
		Registry: m.Approx.Registry(), Step: step, Rows: *rows, Workers: *workers, Reps: *reps, Progress: stderr,
	})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep.Model, "", "  ")
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Join(*modelDir, costModelFile)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot costmodel: %w", err)
	}
	w := rep.Model
	fmt.Fprintf(stdout, "attention block %.2fs, of which the other weights model %.2fs\n", rep.AttentionBlock.Seconds(), rep.AttentionModelled.Seconds())
	fmt.Fprintf(stdout, "costmodel: pt_mul=%.3g ct_mul=%.3g bridge=%.3g compare=%.3g attention=%.3g (seconds per value) -> %s\n",
		w.PtMul, w.CtMul, w.Bridge, w.Compare, w.Attention, path)
	return nil
}
