package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/models/dataset"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// runCalibrate implements "cipherprune calibrate": it runs the approximate
// forward on training examples, records every approximated function's inputs
// and writes the model's approx.json with intervals that cover them with a
// margin, and the softmax shift.
func runCalibrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("calibrate", stderr)
	modelDir := fs.String("model", "models/trained/sentiment-tiny", "model directory")
	task := fs.String("data", "sentiment", "task: sentiment|spam")
	limit := fs.Int("n", 0, "calibrate on the first n training examples (0: all)")
	preset := fs.String("preset", elementwise.DefaultPreset, "CKKS preset of the polynomials, whose levels bound every recipe's whole depth")
	allowInsecure := fs.Bool("allow-insecure", false, "allow an InsecureTest... preset (tests only, NOT secure)")
	def, err := dataset.DefaultDir()
	if err != nil {
		return err
	}
	dataDir := fs.String("data-dir", def, "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := dataset.ParseTask(*task)
	if err != nil {
		return err
	}
	// A recipe deeper than the levels between two refreshes cannot run
	// encrypted: the engine would fail on that model.
	budget, err := engine.LevelBudget(*preset, *allowInsecure)
	if err != nil {
		return err
	}
	m, err := models.Load(*modelDir)
	if err != nil {
		return err
	}
	exs, err := loadOrPrepare(ctx, *dataDir, t, dataset.Train, stderr)
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < len(exs) {
		exs = exs[:*limit]
	}
	base := models.DefaultApproxSettingsLiteral()
	only := []evalVariant{{name: "approx", approx: true}}

	// Pass 1: the attention logits, unshifted, give the shift.
	fmt.Fprintf(stderr, "calibrate: pass 1/2 on %d examples\n", len(exs))
	nl, err := models.NewApproximate(base)
	if err != nil {
		return err
	}
	if _, err := evaluate(ctx, m, nl, exs, only, 0, stderr); err != nil {
		return err
	}
	shift := math.Ceil(nl.Ranges()[approx.Exp].Max)

	// Pass 2: with the shift, every function's inputs.
	fmt.Fprintf(stderr, "calibrate: pass 2/2 with softmax shift %g\n", shift)
	base.SoftmaxShift = shift
	if nl, err = models.NewApproximate(base); err != nil {
		return err
	}
	if _, err := evaluate(ctx, m, nl, exs, only, 0, stderr); err != nil {
		return err
	}
	printRanges(stdout, nl)
	lit, err := models.CalibrateApproxDepth(base, shift, nl.Ranges(), budget)
	if err != nil {
		return err
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		return err
	}
	if err := models.WriteApproxSettings(*modelDir, lit); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "calibrated registry (softmax_shift=%g, recipes at most %d levels deep for %s), written to %s/%s:\n", lit.SoftmaxShift, budget, *preset, *modelDir, models.ApproxFile)
	return reg.Table().Format(stdout)
}
