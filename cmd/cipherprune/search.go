package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cipherprune/cipherprune/bench/plot"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/dataset"
	"github.com/cipherprune/cipherprune/prune"
)

// searchModule is the training code's threshold search, run as
// `python -m searchModule` from the repository root.
const searchModule = "models.training.search"

// runSearch implements "cipherprune search": it writes the search spec (the
// model's approximation registry with every coefficient, the softmax shift
// and the cost model as a polynomial in the per-layer counts), runs the
// training code's threshold search on it, and evaluates the thresholds it
// writes with the Go approximate forward, the reference for inference. With
// --sweep it runs one search per λ and writes the accuracy/cost table
// (CSV, JSON) and plot (PNG).
func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("search", stderr)
	modelDir := fs.String("model", "models/trained/sentiment-tiny", "model directory (config.json, model.safetensors, vocab.txt, approx.json)")
	task := fs.String("data", "sentiment", "task: sentiment|spam")
	maxDrop := fs.Float64("max-drop", 0.01, "largest validation accuracy drop against the exact model")
	minAgree := fs.Float64("min-agreement", 0, "also lower the thresholds until at least this share of validation labels equals the exact model's (0: off)")
	lambda := fs.String("lambda", "1", "weight of the modelled cost in the search loss; a comma-separated list searches each and keeps, of those that meet --max-drop, the one keeping the most tokens within --cost-tolerance of the cheapest on validation")
	costTol := fs.Float64("cost-tolerance", 0.01, "with several λ: validation costs (relative to the unpruned engine) within this of the cheapest are a tie, won by the schedule that keeps the most tokens")
	sweep := fs.String("sweep", "", "comma-separated λ values: one search each (no back-off), then the table and plot")
	out := fs.String("out", "", "output directory (default: --model for one search, bench/results/<model>-sweep for a sweep)")
	steps := fs.Int("steps", 0, "soft-mask optimizer steps (0: the search's default)")
	batch := fs.Int("batch", 0, "batch size (0: default)")
	maxLen := fs.Int("max-len", 0, "training inputs cut to this many tokens (0: the model's maximum)")
	pyArgs := fs.String("py-args", "", "extra arguments for the Python search, space-separated")
	python := fs.String("python", pythonDefault(), "Python interpreter with Debian's torch")
	costPath := fs.String("cost-model", "", "cost model file (default: MODEL/cost.json if it exists, else the analytic model)")
	limit := fs.Int("n", 0, "evaluate only the first n test examples (0: all)")
	noApprox := fs.Bool("skip-approx-baseline", false, "leave out the approximate forward without pruning (saves one forward per example)")
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
	root, err := repoRoot()
	if err != nil {
		return err
	}
	m, nl, err := loadWithApprox(*modelDir)
	if err != nil {
		return err
	}
	coster, err := newCoster(*costPath, *modelDir, m.Server.Config, nl.Registry(), stderr)
	if err != nil {
		return err
	}
	spec, err := prune.NewSearchSpec(coster, nl.Registry(), nl.SoftmaxShift())
	if err != nil {
		return err
	}
	specFile, err := writeSpec(spec)
	if err != nil {
		return err
	}
	defer os.Remove(specFile)
	if _, err := loadOrPrepare(ctx, *dataDir, t, dataset.Test, stderr); err != nil {
		return err
	}
	base := []string{"-m", searchModule, "--model", relTo(root, *modelDir), "--task", string(t), "--spec", specFile,
		"--data-dir", absOr(*dataDir)}
	for name, v := range map[string]int{"--steps": *steps, "--batch": *batch, "--max-len": *maxLen} {
		if v > 0 {
			base = append(base, name, strconv.Itoa(v))
		}
	}
	base = append(base, strings.Fields(*pyArgs)...)
	ev := &searchEval{model: m, nl: nl, coster: coster, dir: *dataDir, task: t, limit: *limit, noApprox: *noApprox, stderr: stderr}

	if *sweep == "" {
		dir := *out
		if dir == "" {
			dir = *modelDir
		}
		if _, err := parseFloats(*lambda); err != nil {
			return err
		}
		if *minAgree < 0 || *minAgree > 1 {
			return fmt.Errorf("cannot search: --min-agreement %v is outside [0, 1]", *minAgree)
		}
		if *costTol < 0 || *costTol > 1 {
			return fmt.Errorf("cannot search: --cost-tolerance %v is outside [0, 1]", *costTol)
		}
		pa := append(base, "--out", relTo(root, dir), "--lambda", *lambda, "--max-drop", fmtFloat(*maxDrop),
			"--cost-tolerance", fmtFloat(*costTol))
		label := "learned, max drop " + fmtFloat(*maxDrop)
		if *minAgree > 0 {
			pa = append(pa, "--min-agreement", fmtFloat(*minAgree))
			label += ", agreement " + fmtFloat(*minAgree)
		}
		start := time.Now()
		if err := runPython(ctx, root, *python, pa, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "search: Python search took %.0f s\n", time.Since(start).Seconds())
		rows, err := ev.rows(ctx, dir, label, true)
		if err != nil {
			return err
		}
		printRows(stdout, rows)
		p := rows[len(rows)-1]
		fmt.Fprintf(stdout, "accuracy: exact=%.4f pruned=%.4f kept_fraction=%.4f high_degree_fraction=%.4f modelled_speedup=%.2f\n",
			rows[0].Accuracy, p.Accuracy, p.Padded.KeptFraction, p.Padded.HighFraction, 1/p.Padded.RelativeCost)
		return nil
	}

	lambdas, err := parseFloats(*sweep)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(root, "bench", "results", filepath.Base(absOr(*modelDir))+"-sweep")
	}
	rows, err := ev.rows(ctx, "", "", true)
	if err != nil {
		return err
	}
	for _, lam := range lambdas {
		sub := filepath.Join(dir, "lambda-"+fmtFloat(lam))
		pa := append(base, "--out", relTo(root, sub), "--lambda", fmtFloat(lam), "--max-drop", "1", "--golden", "0")
		start := time.Now()
		if err := runPython(ctx, root, *python, pa, stderr); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "search: λ=%g took %.0f s\n", lam, time.Since(start).Seconds())
		r, err := ev.rows(ctx, sub, fmt.Sprintf("λ=%g", lam), false)
		if err != nil {
			return err
		}
		r[0].Lambda = lam
		rows = append(rows, r...)
		if err := writeSweep(dir, *modelDir, rows); err != nil { // after every λ, so partial sweeps leave results
			return err
		}
	}
	printRows(stdout, rows)
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, "sweep.{csv,json,png}"))
	return nil
}

// pythonDefault is $PYTHON, else Debian's interpreter (the one with torch).
func pythonDefault() string {
	if p := os.Getenv("PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// repoRoot returns the directory holding go.mod, from the working
// directory up: the Python search runs there as a module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "models", "training", "search.py")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (models/training/search.py): run from inside the repository")
		}
		dir = parent
	}
}

// absOr returns p made absolute, or p if that fails.
func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// relTo returns p relative to root (where the Python search runs) when p
// lies inside it, else p made absolute: recorded commands stay portable.
func relTo(root, p string) string {
	a := absOr(p)
	if r, err := filepath.Rel(root, a); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return a
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("cannot parse λ value %q: want a non-negative number", part)
		}
		out = append(out, v)
	}
	return out, nil
}

// writeSpec writes spec to a temporary file and returns its path.
func writeSpec(spec prune.SearchSpec) (string, error) {
	f, err := os.CreateTemp("", "cipherprune-search-spec-*.json")
	if err != nil {
		return "", fmt.Errorf("cannot write search spec: %w", err)
	}
	enc := json.NewEncoder(f)
	if err := enc.Encode(spec); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("cannot write search spec: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cannot write search spec: %w", err)
	}
	return f.Name(), nil
}

// runPython runs the interpreter with args in dir, its output on stderr.
func runPython(ctx context.Context, dir, python string, args []string, stderr io.Writer) error {
	fmt.Fprintf(stderr, "search: %s %s\n", python, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot run the Python search: %w", err)
	}
	return nil
}

// scheduleStats summarizes one schedule over a split at one input length.
type scheduleStats struct {
	// MeanKept is the mean number of rows kept after each layer's attention
	// block (entering its feed-forward block).
	MeanKept []float64 `json:"mean_kept"`
	// MeanIn is the mean number of rows entering each layer.
	MeanIn []float64 `json:"mean_in"`
	// KeptFraction is Σ_l Kept_l / (n·L) summed over the examples.
	KeptFraction float64 `json:"kept_fraction"`
	// HighFraction is the fraction of kept token-layers at the high degree.
	HighFraction float64 `json:"high_degree_fraction"`
	// RelativeCost is the modelled cost over that of the unpruned engine at
	// the same length.
	RelativeCost float64 `json:"relative_cost"`
}

// sweepRow is one line of the results table.
type sweepRow struct {
	Schedule string  `json:"schedule"`
	Lambda   float64 `json:"lambda"`
	// Accuracy is the test accuracy (exact forward for "exact", else the
	// approximate forward with the schedule).
	Accuracy float64 `json:"accuracy"`
	// Padded holds the figures with inputs padded to the model's maximum
	// length (padding is pruned at the first thresholded layer: it receives
	// no attention); Natural those at each input's own length.
	Padded  scheduleStats `json:"padded"`
	Natural scheduleStats `json:"natural"`
	// Thresholds is the prune.json used, if any.
	Thresholds []prune.LayerLiteral `json:"thresholds,omitempty"`
}

// searchEval evaluates schedules on the test split with the Go approximate
// forward.
type searchEval struct {
	model    *models.Model
	nl       *models.Approximate
	coster   *prune.Coster
	dir      string
	task     dataset.Task
	limit    int
	noApprox bool
	stderr   io.Writer
	exs      []dataset.Example
}

// rows evaluates, on the test split, the thresholds in dir (if dir is not
// empty) and, with baselines, the exact model, the approximate model
// without pruning and BOLT's halving. Inputs are run at their natural
// length: the kept rows and their values are the same when padded (padding
// gets no attention, so it changes no real row and is pruned at layer 0),
// so the padded figures only replace layer 0's input count by n.
func (e *searchEval) rows(ctx context.Context, dir, name string, baselines bool) ([]sweepRow, error) {
	if e.exs == nil {
		exs, err := loadOrPrepare(ctx, e.dir, e.task, dataset.Test, e.stderr)
		if err != nil {
			return nil, err
		}
		if e.limit > 0 && e.limit < len(exs) {
			exs = exs[:e.limit]
		}
		e.exs = exs
	}
	layers := e.model.Server.Config.NumLayers()
	var variants []evalVariant
	var names []string
	if baselines {
		variants = append(variants, evalVariant{name: "exact"})
		names = append(names, "exact (no pruning)")
		if !e.noApprox {
			variants = append(variants, evalVariant{name: "approx", approx: true})
			names = append(names, "approx, no pruning")
		}
		variants = append(variants, evalVariant{name: "halving", approx: true, halving: true})
		names = append(names, "BOLT halving after layer 0")
	}
	var th *prune.Thresholds
	if dir != "" {
		var err error
		if th, err = prune.LoadThresholds(dir, layers); err != nil {
			return nil, err
		}
		variants = append(variants, evalVariant{name: "pruned", approx: true, thresholds: th})
		names = append(names, name)
	}
	res, err := evaluate(ctx, e.model, e.nl.Clone(), e.exs, variants, 0, e.stderr)
	if err != nil {
		return nil, err
	}
	n := e.model.Client.Config.MaxPositions()
	var rows []sweepRow
	for v, vr := range variants {
		row := sweepRow{Schedule: names[v], Accuracy: res.accuracy(v)}
		counts := res.counts[v]
		if vr.thresholds == nil && !vr.halving {
			counts = make([][]prune.LayerCounts, len(res.lengths))
			for i, l := range res.lengths {
				counts[i] = prune.BaselineCounts(layers, l)
			}
		}
		compared := vr.thresholds != nil
		unpruned := vr.thresholds == nil && !vr.halving
		if row.Natural, err = e.stats(counts, res.lengths, 0, compared, unpruned); err != nil {
			return nil, err
		}
		if row.Padded, err = e.stats(counts, res.lengths, n, compared, unpruned); err != nil {
			return nil, err
		}
		if vr.thresholds != nil {
			row.Thresholds = vr.thresholds.Literal().Layers
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// stats summarizes per-example counts at natural length (pad 0) or padded
// to pad tokens; unpruned says the counts are the unpruned engine's, which
// carries the padding through every layer.
func (e *searchEval) stats(counts [][]prune.LayerCounts, lengths []int, pad int, compared, unpruned bool) (scheduleStats, error) {
	layers := e.model.Server.Config.NumLayers()
	st := scheduleStats{MeanKept: make([]float64, layers), MeanIn: make([]float64, layers)}
	var kept, high, tokenLayers, base, cost float64
	for i, c := range counts {
		n := lengths[i]
		c = append([]prune.LayerCounts(nil), c...)
		if pad > 0 {
			if unpruned {
				c = prune.BaselineCounts(layers, pad)
			}
			c[0].In = pad
			n = pad
		}
		for l, lc := range c {
			st.MeanIn[l] += float64(lc.In)
			st.MeanKept[l] += float64(lc.Kept)
			kept += float64(lc.Kept)
			high += float64(lc.High)
		}
		tokenLayers += float64(n * layers)
		b, err := e.coster.Cost(prune.BaselineCounts(layers, n), false)
		if err != nil {
			return st, err
		}
		s, err := e.coster.Cost(c, compared)
		if err != nil {
			return st, err
		}
		base += b
		cost += s
	}
	k := float64(max(1, len(counts)))
	for l := range st.MeanKept {
		st.MeanKept[l] /= k
		st.MeanIn[l] /= k
	}
	st.KeptFraction = kept / max(1, tokenLayers)
	st.HighFraction = high / max(1, kept)
	st.RelativeCost = cost / max(1e-300, base)
	return st, nil
}

func printRows(w io.Writer, rows []sweepRow) {
	fmt.Fprintf(w, "%-28s %8s  %-34s %8s %8s %6s %8s %8s\n", "schedule", "accuracy", "mean kept per layer",
		"kept_pad", "kept_nat", "high", "cost_pad", "cost_nat")
	for _, r := range rows {
		fmt.Fprintf(w, "%-28s %8.4f  %-34s %8.4f %8.4f %6.3f %8.4f %8.4f\n", r.Schedule, r.Accuracy,
			fmtList(r.Natural.MeanKept), r.Padded.KeptFraction, r.Natural.KeptFraction, r.Natural.HighFraction,
			r.Padded.RelativeCost, r.Natural.RelativeCost)
	}
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, ",")
}

// writeSweep writes dir/sweep.csv, dir/sweep.json and dir/sweep.png.
func writeSweep(dir, modelDir string, rows []sweepRow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot write sweep: %w", err)
	}
	b, err := json.MarshalIndent(map[string]any{"model": modelDir, "rows": rows}, "", " ")
	if err != nil {
		return fmt.Errorf("cannot encode sweep: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sweep.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write sweep: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "sweep.csv"))
	if err != nil {
		return fmt.Errorf("cannot write sweep: %w", err)
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"schedule", "lambda", "accuracy", "mean_kept_per_layer", "kept_fraction_padded", "kept_fraction_natural",
		"high_degree_fraction", "relative_cost_padded", "relative_cost_natural"})
	for _, r := range rows {
		cw.Write([]string{r.Schedule, fmtFloat(r.Lambda), fmt.Sprintf("%.4f", r.Accuracy), fmtList(r.Natural.MeanKept),
			fmt.Sprintf("%.4f", r.Padded.KeptFraction), fmt.Sprintf("%.4f", r.Natural.KeptFraction),
			fmt.Sprintf("%.4f", r.Natural.HighFraction), fmt.Sprintf("%.4f", r.Padded.RelativeCost),
			fmt.Sprintf("%.4f", r.Natural.RelativeCost)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write sweep: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write sweep: %w", err)
	}
	return writeSweepPlot(filepath.Join(dir, "sweep.png"), filepath.Base(modelDir), rows)
}

// writeSweepPlot draws test accuracy against modelled cost (relative to
// no pruning) for the λ sweep and the baselines.
func writeSweepPlot(path, model string, rows []sweepRow) error {
	var nat, pad plot.Series
	nat = plot.Series{Name: "learned, natural length", Color: plot.Palette[0], Line: true}
	pad = plot.Series{Name: "learned, padded", Color: plot.Palette[1], Line: true}
	var baselines []plot.Series
	for i, r := range rows {
		switch {
		case strings.HasPrefix(r.Schedule, "λ="):
			label := fmt.Sprintf("λ=%g", r.Lambda)
			nat.Points = append(nat.Points, plot.Point{X: r.Natural.RelativeCost, Y: 100 * r.Accuracy, Label: label})
			pad.Points = append(pad.Points, plot.Point{X: r.Padded.RelativeCost, Y: 100 * r.Accuracy})
		case r.Schedule == "exact (no pruning)":
			continue
		default:
			baselines = append(baselines, plot.Series{Name: r.Schedule, Color: plot.Palette[2+i%4],
				Points: []plot.Point{{X: r.Natural.RelativeCost, Y: 100 * r.Accuracy}}})
		}
	}
	sortPoints(nat.Points)
	sortPoints(pad.Points)
	c := &plot.Chart{
		Title:  model + ": test accuracy vs modelled cost",
		XLabel: "modelled cost relative to no pruning",
		YLabel: "test accuracy (%)",
		Series: append([]plot.Series{nat, pad}, baselines...),
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write plot: %w", err)
	}
	if err := c.WritePNG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write plot: %w", err)
	}
	return nil
}

func sortPoints(ps []plot.Point) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].X < ps[j-1].X; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}
