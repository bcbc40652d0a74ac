package prune

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cipherprune/cipherprune/models"
)

// GoldenFile is the name of a model directory's pruning golden file,
// written by the training code's threshold search: test inputs padded to
// the model's maximum length, with the logits and per-layer counts of
// PyTorch's float64 hard-mask approximate forward.
const goldenFile = "prune_golden.json"

// pruneGoldenTolerance bounds the logit difference between the Go
// approximate forward with thresholds and PyTorch's. Both evaluate the same
// Chebyshev polynomials in float64 with the same operation order inside
// each recipe; they differ only in the summation order of matmuls, means
// and variances (PyTorch's blocked kernels), a relative 1e-16 per sum; the
// measured logit differences are about 1e-14 (the test logs them). 1e-8
// leaves a wide margin for other platforms and still catches any real
// mismatch: one token pruned or degraded differently moves the logits by
// orders of magnitude more.
const pruneGoldenTolerance = 1e-8

type pruneGoldenExample struct {
	InputIDs      []int         `json:"input_ids"`
	AttentionMask []int         `json:"attention_mask"`
	Logits        []float64     `json:"logits"`
	Counts        []LayerCounts `json:"counts"`
}

type pruneGolden struct {
	N          int                  `json:"n"`
	Thresholds []LayerLiteral       `json:"thresholds"`
	Examples   []pruneGoldenExample `json:"examples"`
}

// goldenModelDirs returns the shipped models (../models/trained/*) and the
// directories listed in $CIPHERPRUNE_PRUNE_GOLDEN (colon-separated) that
// hold a prune golden file.
func goldenModelDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	entries, err := os.ReadDir(filepath.Join("..", "models", "trained"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("..", "models", "trained", e.Name()))
		}
	}
	if extra := os.Getenv("CIPHERPRUNE_PRUNE_GOLDEN"); extra != "" {
		dirs = append(dirs, strings.Split(extra, ":")...)
	}
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, goldenFile)); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// TestPruneGolden checks that the Go approximate forward with a model's
// prune.json reproduces the PyTorch hard-mask predictions of its threshold
// search: the same per-layer counts (every keep and degree decision lands
// on the same side of its threshold), the same argmax and logits within
// pruneGoldenTolerance.
func TestPruneGolden(t *testing.T) {
	dirs := goldenModelDirs(t)
	if len(dirs) == 0 {
		t.Skip("no model with " + goldenFile)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, goldenFile))
			if err != nil {
				t.Fatal(err)
			}
			var g pruneGolden
			if err := json.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			m, err := models.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			layers := m.Server.Config.NumLayers()
			th, err := LoadThresholds(dir, layers)
			if err != nil {
				t.Fatal(err)
			}
			for l, ll := range th.Literal().Layers {
				if ll != g.Thresholds[l] {
					t.Fatalf("layer %d: prune.json %+v, golden file %+v", l, ll, g.Thresholds[l])
				}
			}
			settings, err := models.LoadApproxSettings(dir)
			if err != nil {
				t.Fatal(err)
			}
			nl, err := models.NewApproximate(settings)
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				maxErr float64
			)
			jobs := make(chan int)
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					local := nl.Clone()
					for i := range jobs {
						ex := g.Examples[i]
						s := NewSchedule(th, Options{})
						logits, err := m.Forward(models.Encoding{IDs: ex.InputIDs, AttentionMask: ex.AttentionMask},
							&models.ForwardOptions{Nonlinear: local, Schedule: s})
						if err != nil {
							t.Error(err)
							continue
						}
						counts := s.Counts()
						for l := range counts {
							if counts[l] != ex.Counts[l] {
								t.Errorf("example %d layer %d: Go counts %+v, PyTorch %+v", i, l, counts[l], ex.Counts[l])
							}
						}
						if argmaxOf(logits) != argmaxOf(ex.Logits) {
							t.Errorf("example %d: Go predicts %d, PyTorch %d", i, argmaxOf(logits), argmaxOf(ex.Logits))
						}
						mu.Lock()
						for k := range logits {
							maxErr = math.Max(maxErr, math.Abs(logits[k]-ex.Logits[k]))
						}
						mu.Unlock()
					}
				}()
			}
			for i := range g.Examples {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			t.Logf("%d examples padded to %d: largest logit difference %.3g", len(g.Examples), g.N, maxErr)
			if maxErr > pruneGoldenTolerance {
				t.Errorf("largest logit difference %.3g exceeds %g", maxErr, pruneGoldenTolerance)
			}
		})
	}
}

func argmaxOf(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}
