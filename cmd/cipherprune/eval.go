package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/models/dataset"
)

// runEval implements "cipherprune eval": accuracy of the exact forward and,
// with --approx, of the approximate forward (the registry's polynomials) on a
// split of a task.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	modelDir := fs.String("model", "models/trained/sentiment-tiny", "model directory (config.json, model.safetensors, vocab.txt)")
	task := fs.String("data", "sentiment", "task: sentiment|spam")
	splitName := fs.String("split", "test", "split: train|validation|test")
	withApprox := fs.Bool("approx", false, "also evaluate the approximate forward (high degree everywhere)")
	withLow := fs.Bool("low", false, "with --approx, also evaluate every token but CLS at the low degree")
	showRanges := fs.Bool("ranges", false, "with --approx, print the observed inputs of every approximated function against its interval")
	limit := fs.Int("n", 0, "evaluate only the first n examples (0: all)")
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
	sp, err := dataset.ParseSplit(*splitName)
	if err != nil {
		return err
	}
	m, err := models.Load(*modelDir)
	if err != nil {
		return err
	}
	settings, err := models.LoadApproxSettings(*modelDir)
	if err != nil {
		return err
	}
	nl, err := models.NewApproximate(settings)
	if err != nil {
		return err
	}
	exs, err := loadOrPrepare(ctx, *dataDir, t, sp, stderr)
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < len(exs) {
		exs = exs[:*limit]
	}

	variants := []evalVariant{{name: "exact"}}
	if *withApprox {
		variants = append(variants, evalVariant{name: "approx", approx: true})
		if *withLow {
			variants = append(variants, evalVariant{name: "approx_low", approx: true, low: true})
		}
	}
	start := time.Now()
	res, err := evaluate(ctx, m, nl, exs, variants, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model=%s task=%s split=%s examples=%d seconds=%.1f\n",
		*modelDir, t, sp, len(exs), time.Since(start).Seconds())
	for i, v := range variants {
		fmt.Fprintf(stdout, "%-10s accuracy=%.4f agreement_with_exact=%.4f\n", v.name,
			res.accuracy(i), res.agreement(i))
	}
	if *withApprox && *showRanges {
		printRanges(stdout, nl)
	}
	line := fmt.Sprintf("accuracy: exact=%.4f", res.accuracy(0))
	if *withApprox {
		line += fmt.Sprintf(" approx=%.4f", res.accuracy(1))
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// loadOrPrepare loads a split, preparing the task's data first if needed, so
// that eval works as the first command on a fresh machine.
func loadOrPrepare(ctx context.Context, dir string, t dataset.Task, sp dataset.Split, stderr io.Writer) ([]dataset.Example, error) {
	exs, err := dataset.Load(dir, t, sp)
	if !errors.Is(err, dataset.ErrNotPrepared) {
		return exs, err
	}
	fmt.Fprintf(stderr, "eval: preparing %s data in %s\n", t, dir)
	if _, err := dataset.Prepare(ctx, dir, t, dataset.NPMFetcher); err != nil {
		return nil, err
	}
	return dataset.Load(dir, t, sp)
}

// evalVariant is one forward pass configuration.
type evalVariant struct {
	name   string
	approx bool // use the approximation registry
	low    bool // every token but CLS at DegreeLow
}

// evalResult holds the predictions of every variant for every example.
type evalResult struct {
	labels []int
	preds  [][]int // [variant][example]
}

func (r *evalResult) accuracy(v int) float64 {
	ok := 0
	for i, p := range r.preds[v] {
		if p == r.labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(max(1, len(r.labels)))
}

func (r *evalResult) agreement(v int) float64 {
	ok := 0
	for i, p := range r.preds[v] {
		if p == r.preds[0][i] {
			ok++
		}
	}
	return float64(ok) / float64(max(1, len(r.labels)))
}

// allLow is a schedule that keeps every token and gives all but CLS the low
// degree.
var allLow = models.ScheduleFunc(func(att *models.LayerAttention) (models.Decision, error) {
	deg := make([]models.Degree, len(att.Tokens))
	for i := 1; i < len(deg); i++ {
		deg[i] = models.DegreeLow
	}
	return models.Decision{Degrees: deg}, nil
})

// evaluate runs every variant on every example with one worker per CPU. The
// approximate variants' range counters are merged into nl.
func evaluate(ctx context.Context, m *models.Model, nl *models.Approximate, exs []dataset.Example,
	variants []evalVariant, stderr io.Writer) (*evalResult, error) {
	res := &evalResult{labels: make([]int, len(exs)), preds: make([][]int, len(variants))}
	for i, ex := range exs {
		res.labels[i] = ex.Label
	}
	for v := range variants {
		res.preds[v] = make([]int, len(exs))
	}
	workers := min(runtime.GOMAXPROCS(0), len(exs))
	jobs := make(chan int)
	errs := make(chan error, workers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	maxLen := m.Client.Config.MaxPositions()
	for range workers {
		wg.Add(1)
		local := nl.Clone()
		go func() {
			defer wg.Done()
			for i := range jobs {
				enc, err := m.Client.Tokenizer.Encode(exs[i].Text, maxLen)
				if err != nil {
					errs <- err
					return
				}
				for v, vr := range variants {
					opts := &models.ForwardOptions{}
					if vr.approx {
						opts.Nonlinear = local
					}
					if vr.low {
						opts.Schedule = allLow
					}
					logits, err := m.Forward(enc, opts)
					if err != nil {
						errs <- fmt.Errorf("cannot evaluate example %d (%s): %w", i, vr.name, err)
						return
					}
					res.preds[v][i] = argmax(logits)
				}
				mu.Lock()
				done++
				if done%max(1, len(exs)/20) == 0 || done == len(exs) {
					fmt.Fprintf(stderr, "eval: %d/%d\n", done, len(exs))
				}
				mu.Unlock()
			}
			mu.Lock()
			nl.MergeRanges(local)
			mu.Unlock()
		}()
	}
	var err error
feed:
	for i := range exs {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return res, err
}

func argmax(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

func printRanges(w io.Writer, nl *models.Approximate) {
	ranges := nl.Ranges()
	fns := make([]approx.Func, 0, len(ranges))
	for fn := range ranges {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i] < fns[j] })
	fmt.Fprintf(w, "ranges (softmax_shift=%g):\n", nl.SoftmaxShift())
	for _, fn := range fns {
		r := ranges[fn]
		a, b := nl.Registry().Interval(fn)
		fmt.Fprintf(w, "  %-10s interval=[%g, %g] seen=[%.4g, %.4g] n=%d below=%d above=%d nan=%d\n",
			fn, a, b, r.Min, r.Max, r.N, r.Below, r.Above, r.NaN)
	}
}
