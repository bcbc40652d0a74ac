package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/cipherprune/cipherprune/bench"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// runBench measures whole private inferences with and without pruning and
// degree reduction.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	model := fs.String("model", "", "trained model directory (default: "+defaultModel+" unless --shape is given)")
	shape := fs.String("shape", "", "named shape with random weights: bert-tiny, bert-mini, bert-base, bert-large")
	n := fs.Int("n", 128, "padded input length")
	text := fs.String("text", defaultDemoText, "input text of a trained model (padded to --n)")
	schedule := fs.String("schedule", "", `rows entering each layer with pruning, e.g. "128,55,54,52,49,45,24,14,5,2,1,1" or "cipherprune" (default: the learned thresholds of a trained model, halving for a shape)`)
	low := fs.Float64("low-fraction", 0.5, "with --schedule, fraction of the kept rows (CLS excluded) at the low degree")
	layers := fs.Int("layers", 0, "run only the first layers, extrapolating the rest (0: all)")
	hideLength := fs.Int("hide-length", 0, "also run the pruned variant with its kept counts rounded up to multiples of this power of two (the client's --hide-length), to measure its cost")
	preset := fs.String("preset", elementwise.DefaultPreset, "CKKS parameter preset of the polynomials")
	allowInsecure := fs.Bool("allow-insecure", false, "allow an InsecureTest... preset (NOT secure)")
	workers := fs.Int("workers", 0, "server evaluator goroutines (0: all cores)")
	seed := fs.Uint64("seed", 1, "seed of a shape's random weights and tokens")
	out := fs.String("out", "", "directory for record.json, table.txt and chart.png (default bench/results/<name>-n<n>)")
	noWarmUp := fs.Bool("no-warmup", false, "skip the unmeasured warm-up inference of the first layer (the first variant then pays the process's cold start)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (both parties) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := bench.Config{
		ModelDir: *model, Shape: *shape, Text: *text, N: *n, LowFraction: *low, Layers: *layers, HideLength: *hideLength,
		Preset: *preset, AllowInsecure: *allowInsecure, Workers: *workers, Seed: *seed, NoWarmUp: *noWarmUp, Log: stderr,
	}
	if cfg.ModelDir == "" && cfg.Shape == "" {
		cfg.ModelDir = defaultModel
	}
	switch *schedule {
	case "":
	case "cipherprune":
		cfg.Schedule = bench.CipherPruneBERTBase
	default:
		for _, f := range strings.Split(*schedule, ",") {
			k, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("bench: --schedule: %w", err)
			}
			cfg.Schedule = append(cfg.Schedule, k)
		}
	}
	rec, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("bench", "results", fmt.Sprintf("%s-n%d", rec.Name, rec.N))
		if rec.HideLength > 0 {
			dir += fmt.Sprintf("-hide-length%d", rec.HideLength)
		}
	}
	if err := rec.WriteFiles(dir); err != nil {
		return err
	}
	rec.Table(stdout)
	fmt.Fprintf(stdout, "wrote %s/{record.json,table.txt,chart.png}\n", dir)
	fmt.Fprintf(stdout, "bench: name=%s n=%d speedup=%.2f speedup_all_layers=%.2f measured_layers=%d of %d\n",
		rec.Name, rec.N, rec.Speedup, rec.SpeedupAll, rec.Measured, rec.Layers)
	return nil
}
