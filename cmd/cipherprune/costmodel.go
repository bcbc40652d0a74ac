package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cipherprune/cipherprune/bench/costmodel"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/prune"
)

// costModelFile is the measured cost model's name in a model directory;
// search and eval read it when --cost-model is not given.
const costModelFile = "cost.json"

// newCoster returns the coster of the cost model of path, or with path
// empty the model directory's measured cost.json when it exists, else the
// analytic model of cfg and reg; it logs which.
func newCoster(path, modelDir string, cfg models.Config, reg *approx.Registry, stderr io.Writer) (*prune.Coster, error) {
	if path == "" {
		p := filepath.Join(modelDir, costModelFile)
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	w := prune.AnalyticCostModel(cfg, reg)
	if path != "" {
		var err error
		if w, err = prune.LoadCostModel(path); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(stderr, "cost model: %s (%s)\n", path, w.Source)
	} else {
		fmt.Fprintf(stderr, "cost model: %s\n", w.Source)
	}
	return prune.NewCoster(w, cfg)
}

// runCostModel implements "cipherprune costmodel": it runs private
// inferences through the engine at a few padded lengths, unpruned and
// pruned, fits the cost model's form to the per-layer times and writes it
// where the threshold search and eval --prune read it.
func runCostModel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("costmodel", stderr)
	modelDir := fs.String("model", "models/trained/sentiment-tiny", "model directory")
	preset := fs.String("preset", elementwise.DefaultPreset, "CKKS preset of the polynomials (spam-mini: Elementwise15)")
	allowInsecure := fs.Bool("allow-insecure", false, "allow an InsecureTest... preset (tests only, NOT secure)")
	lengths := fs.String("n", "", "comma-separated padded lengths measured (default: the model's positions and their half, quarter and eighth)")
	layers := fs.Int("layers", 2, "run only the first K layers of each inference (0: all; at least 2)")
	workers := fs.Int("workers", 0, "goroutines of each party (0: GOMAXPROCS)")
	reps := fs.Int("reps", 1, "inferences per length and variant")
	out := fs.String("out", "", "output file (default: MODEL/"+costModelFile+")")
	verbose := fs.Bool("v", false, "log the engine's progress")
	record := fs.String("record", "", "also write the measurements and the fit (JSON) to this file")
	refit := fs.String("refit", "", "fit the record FILE (from --record) again instead of measuring")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	if *lengths != "" {
		for _, part := range strings.Split(*lengths, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				return fmt.Errorf("cannot costmodel: --n %q: %w", *lengths, err)
			}
			ns = append(ns, n)
		}
	}
	cfg := costmodel.Config{ModelDir: *modelDir, Preset: *preset, AllowInsecure: *allowInsecure, Workers: *workers,
		Lengths: ns, Layers: *layers, Reps: *reps}
	if *verbose {
		cfg.Log = stderr
	}
	start := time.Now()
	var rep *costmodel.Report
	var err error
	if *refit != "" {
		rep, err = readRecord(*refit)
	} else {
		rep, err = costmodel.Measure(ctx, cfg)
	}
	if err != nil {
		return err
	}
	if *record != "" {
		b, err := json.MarshalIndent(rep, "", " ")
		if err != nil {
			return fmt.Errorf("cannot costmodel: %w", err)
		}
		if err := os.WriteFile(*record, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("cannot costmodel: %w", err)
		}
	}
	b, err := json.MarshalIndent(rep.Model, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot costmodel: %w", err)
	}
	path := *out
	if path == "" {
		path = filepath.Join(*modelDir, costModelFile)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot costmodel: %w", err)
	}
	if err := rep.Format(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "costmodel: %.0f s -> %s\n", time.Since(start).Seconds(), path)
	return nil
}

// readRecord reads a record of --record and fits it again.
func readRecord(path string) (*costmodel.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read record: %w", err)
	}
	var rep costmodel.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("cannot read record %s: %w", path, err)
	}
	if err := rep.Refit(); err != nil {
		return nil, fmt.Errorf("cannot refit %s: %w", path, err)
	}
	return &rep, nil
}
