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

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/models/dataset"
	"github.com/cipherprune/cipherprune/prune"
)

// runEval implements "cipherprune eval": accuracy of the exact forward and,
// with --approx, of the approximate forward (the registry's polynomials) on a
// split of a task.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	task := fs.String("data", "sentiment", "task: sentiment|spam")
	splitName := fs.String("split", "test", "split: train|validation|test")
	withApprox := fs.Bool("approx", false, "also evaluate the approximate forward (high degree everywhere)")
	withLow := fs.Bool("low", false, "with --approx, also evaluate every token but CLS at the low degree")
	showRanges := fs.Bool("ranges", false, "with --approx, print the observed inputs of every approximated function against its interval")
	withPrune := fs.Bool("prune", false, "also evaluate with the model's prune.json thresholds (pruning and degree reduction on the approximate forward)")
	pad := fs.Int("pad", -1, "pad inputs to this many tokens (-1: the model's maximum positions with --prune, else natural length; 0: natural length)")
	costPath := fs.String("cost-model", "", "cost model file for modelled_speedup (default: MODEL/cost.json if it exists, else the analytic model)")
	limit := fs.Int("n", 0, "evaluate only the first n examples (0: all)")
	private := fs.Bool("private", false, "run the private (encrypted, two-party) inference on each example over loopback TCP and compare with the plaintext models")
	var sf sessionFlags
	sf.register(fs, true, true)
	def, err := dataset.DefaultDir()
	if err != nil {
		return err
	}
	dataDir := fs.String("data-dir", def, "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	modelDir := &sf.model
	t, err := dataset.ParseTask(*task)
	if err != nil {
		return err
	}
	sp, err := dataset.ParseSplit(*splitName)
	if err != nil {
		return err
	}
	m, nl, err := loadWithApprox(*modelDir)
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
	if *private {
		return evalPrivate(ctx, sf, exs, stdout, stderr)
	}

	n := *pad
	if n < 0 {
		n = 0
		if *withPrune {
			n = m.Client.Config.MaxPositions()
		}
	}
	variants := []evalVariant{{name: "exact"}}
	var coster *prune.Coster
	if *withPrune {
		th, err := prune.LoadThresholds(*modelDir, m.Server.Config.NumLayers())
		if err != nil {
			return err
		}
		if coster, err = newCoster(*costPath, *modelDir, m.Server.Config, nl.Registry(), stderr); err != nil {
			return err
		}
		variants = append(variants, evalVariant{name: "pruned", approx: true, thresholds: th})
		if sf.hideLength > 0 {
			// The private inference's rule (engine.ReferenceSchedule, which
			// keeps every row through the last layer) without and with the
			// kept counts rounded up (--hide-length).
			variants = append(variants, evalVariant{name: "engine", approx: true, thresholds: th, reference: true},
				evalVariant{name: "hidden", approx: true, thresholds: th, reference: true, hideLength: sf.hideLength})
		}
	}
	if *withApprox {
		variants = append(variants, evalVariant{name: "approx", approx: true})
		if *withLow {
			variants = append(variants, evalVariant{name: "approx_low", approx: true, low: true})
		}
	}
	start := time.Now()
	res, err := evaluate(ctx, m, nl, exs, variants, n, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model=%s task=%s split=%s examples=%d padded_to=%d seconds=%.1f\n",
		*modelDir, t, sp, len(exs), n, time.Since(start).Seconds())
	for i, v := range variants {
		fmt.Fprintf(stdout, "%-10s accuracy=%.4f agreement_with_exact=%.4f\n", v.name,
			res.accuracy(i), res.agreement(i))
	}
	if *withApprox && *showRanges {
		printRanges(stdout, nl)
	}
	line := fmt.Sprintf("accuracy: exact=%.4f", res.accuracy(0))
	if *withApprox {
		line += fmt.Sprintf(" approx=%.4f", res.accuracy(variantIndex(variants, "approx")))
	}
	if *withPrune {
		v := variantIndex(variants, "pruned")
		st, err := res.pruneStats(v, coster, m.Server.Config.NumLayers())
		if err != nil {
			return err
		}
		for l := range st.meanIn {
			fmt.Fprintf(stdout, "layer %d: mean tokens in=%.2f kept=%.2f high=%.2f\n", l, st.meanIn[l], st.meanKept[l], st.meanHigh[l])
		}
		line += fmt.Sprintf(" pruned=%.4f kept_fraction=%.4f high_degree_fraction=%.4f modelled_speedup=%.2f",
			res.accuracy(v), st.keptFraction, st.highFraction, st.speedup)
		if sf.hideLength > 0 {
			e, h := variantIndex(variants, "engine"), variantIndex(variants, "hidden")
			for _, v := range []int{e, h} {
				st, err := res.pruneStats(v, coster, m.Server.Config.NumLayers())
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s: accuracy=%.4f kept_fraction=%.4f high_degree_fraction=%.4f modelled_speedup=%.2f mean_kept=%.2f\n",
					variants[v].name, res.accuracy(v), st.keptFraction, st.highFraction, st.speedup, st.meanKept)
			}
			same := 0
			for i := range res.labels {
				if res.preds[e][i] == res.preds[h][i] {
					same++
				}
			}
			line += fmt.Sprintf(" engine=%.4f hide_length_%d=%.4f hidden_agreement_with_engine=%.4f",
				res.accuracy(e), sf.hideLength, res.accuracy(h), float64(same)/float64(max(1, len(res.labels))))
		}
	}
	fmt.Fprintln(stdout, line)
	return nil
}

func variantIndex(vs []evalVariant, name string) int {
	for i, v := range vs {
		if v.name == name {
			return i
		}
	}
	panic("eval: no variant " + name) // the caller built the list
}

// pruneStats summarizes the schedules of one variant.
type pruneStats struct {
	meanIn, meanKept, meanHigh []float64
	// keptFraction is the token-layers kept over n·L: Σ_l Kept_l / (n·L),
	// where Kept_l rows go through layer l's feed-forward block.
	keptFraction float64
	// highFraction is the fraction of kept token-layers at the high degree.
	highFraction float64
	// speedup is the modelled cost of the unpruned engine over that of the
	// schedules, summed over the examples.
	speedup float64
}

func (r *evalResult) pruneStats(v int, c *prune.Coster, layers int) (pruneStats, error) {
	st := pruneStats{meanIn: make([]float64, layers), meanKept: make([]float64, layers), meanHigh: make([]float64, layers)}
	var kept, high, tokenLayers, base, cost float64
	for i, counts := range r.counts[v] {
		n := r.lengths[i]
		for l, lc := range counts {
			st.meanIn[l] += float64(lc.In)
			st.meanKept[l] += float64(lc.Kept)
			st.meanHigh[l] += float64(lc.High)
			kept += float64(lc.Kept)
			high += float64(lc.High)
		}
		tokenLayers += float64(n * layers)
		b, err := c.Cost(prune.BaselineCounts(layers, n), false)
		if err != nil {
			return st, err
		}
		s, err := c.Cost(counts, true)
		if err != nil {
			return st, err
		}
		base += b
		cost += s
	}
	k := float64(max(1, len(r.counts[v])))
	for l := range st.meanIn {
		st.meanIn[l] /= k
		st.meanKept[l] /= k
		st.meanHigh[l] /= k
	}
	st.keptFraction = kept / max(1, tokenLayers)
	st.highFraction = high / max(1, kept)
	st.speedup = base / max(1e-300, cost)
	return st, nil
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
	// thresholds, if set, prune and reduce degrees by prune.Schedule.
	thresholds *prune.Thresholds
	// halving, if set, prunes by BOLT's halving after layer 0
	// (prune.NewHalvingSchedule), every kept token at the high degree.
	halving bool
	// reference, with thresholds, makes the private inference's decisions
	// instead (engine.ReferenceScheduleHiding with hideLength).
	reference  bool
	hideLength int
}

// countingSchedule records the counts of another schedule's decisions.
type countingSchedule struct {
	inner  models.Schedule
	counts []prune.LayerCounts
}

func (c *countingSchedule) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	d, err := c.inner.AfterAttention(att)
	if err != nil {
		return d, err
	}
	lc := prune.LayerCounts{In: len(att.Tokens)}
	for i := range att.Tokens {
		if d.Keep == nil || d.Keep[i] {
			lc.Kept++
			if d.Degrees == nil || d.Degrees[i] == models.DegreeHigh {
				lc.High++
			}
		}
	}
	c.counts = append(c.counts, lc)
	return d, nil
}

func (c *countingSchedule) Counts() []prune.LayerCounts {
	return append([]prune.LayerCounts(nil), c.counts...)
}

// evalResult holds the predictions of every variant for every example.
type evalResult struct {
	labels  []int
	lengths []int                   // padded input length per example
	preds   [][]int                 // [variant][example]
	counts  [][][]prune.LayerCounts // [variant][example], for pruned variants
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

// evaluate runs every variant on every example with one worker per CPU,
// inputs padded to pad tokens (0: natural length). The approximate variants'
// range counters are merged into nl.
func evaluate(ctx context.Context, m *models.Model, nl *models.Approximate, exs []dataset.Example,
	variants []evalVariant, pad int, stderr io.Writer) (*evalResult, error) {
	res := &evalResult{labels: make([]int, len(exs)), lengths: make([]int, len(exs)),
		preds: make([][]int, len(variants)), counts: make([][][]prune.LayerCounts, len(variants))}
	for i, ex := range exs {
		res.labels[i] = ex.Label
	}
	for v := range variants {
		res.preds[v] = make([]int, len(exs))
		res.counts[v] = make([][]prune.LayerCounts, len(exs))
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
				var enc models.Encoding
				var err error
				if pad > 0 {
					enc, err = m.Client.Tokenizer.EncodePadded(exs[i].Text, pad)
				} else {
					enc, err = m.Client.Tokenizer.Encode(exs[i].Text, maxLen)
				}
				if err != nil {
					errs <- err
					return
				}
				res.lengths[i] = enc.Len()
				for v, vr := range variants {
					venc := enc
					opts := &models.ForwardOptions{}
					if vr.approx {
						opts.Nonlinear = local
					}
					if vr.low {
						opts.Schedule = allLow
					}
					var sched interface{ Counts() []prune.LayerCounts }
					switch {
					case vr.reference:
						if vr.hideLength > 0 {
							venc = engine.HidingPadding(m.Client.Tokenizer, enc) // as the private client pads
						}
						rules := engine.Rules(vr.thresholds, m.Server.Config.NumLayers(), engine.Reductions{Prune: true, Reduce: true})
						s, err := engine.ReferenceScheduleHiding(rules, vr.hideLength)
						if err != nil {
							errs <- err
							return
						}
						cs := &countingSchedule{inner: s}
						sched, opts.Schedule = cs, cs
					case vr.thresholds != nil:
						s := prune.NewSchedule(vr.thresholds, prune.Options{})
						sched, opts.Schedule = s, s
					}
					if vr.halving {
						h := prune.NewHalvingSchedule(m.Server.Config.NumLayers())
						sched, opts.Schedule = h, h
					}
					logits, err := m.Forward(venc, opts)
					if err != nil {
						errs <- fmt.Errorf("cannot evaluate example %d (%s): %w", i, vr.name, err)
						return
					}
					res.preds[v][i] = argmax(logits)
					if sched != nil {
						res.counts[v][i] = sched.Counts()
					}
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

// loadWithApprox loads the model in dir and the approximate nonlinearities
// of its approx.json (the defaults when it has none).
func loadWithApprox(dir string) (*models.Model, *models.Approximate, error) {
	m, err := models.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	settings, err := models.LoadApproxSettings(dir)
	if err != nil {
		return nil, nil, err
	}
	nl, err := models.NewApproximate(settings)
	if err != nil {
		return nil, nil, err
	}
	return m, nl, nil
}
