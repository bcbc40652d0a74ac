// Package costmodel measures, on this machine and preset, the threshold
// search's cost model (prune.CostModelLiteral) of one trained model: it runs
// real private inferences through the engine (bench.Run: the engine's
// server and client in one process over loopback TCP) at a few padded
// lengths n, unpruned and with a pruning step after layer 0, reads the
// engine's per-layer reports (engine.Report: the server's seconds per
// layer and in its pruning step, the traffic, the counts) and fits the
// model's form to them:
//
//	layer seconds − step seconds = Layer + AttentionRow·in + AttentionRowSq·in²
//	                               + FFNRow·kept + FFNHighRow·keptHigh
//	                               + AttentionSplit·[inHigh < in] + FFNSplit·[keptHigh < kept]
//	step seconds                 = Step + StepRow·in
//	head seconds                 = Head
//
// by non-negative least squares on the relative errors (every inference
// weighs alike whatever its length). Layer is the floor of a layer's calls
// (their latency, which dominates a small model), the attention stage is
// quadratic in its rows (the shared products Q·Kᵀ and A·V, the exp on n²
// values), the feed-forward stage and the LayerNorms linear in the rows
// they keep; a stage whose rows have both degrees calls each polynomial
// twice (the Split floors). The pruned run keeps a quarter of the rows after layer 0, half
// of those at the low degree, so that the attention's rows, the kept rows
// and their degrees vary apart. The Report lists every observation with the
// fit's prediction.
package costmodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cipherprune/cipherprune/bench"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/prune"
)

// Config says what to measure.
type Config struct {
	// ModelDir is the trained model's directory (engine.LoadModel).
	ModelDir string
	// Preset and AllowInsecure name the engine's CKKS preset
	// (engine.ServerConfig); Workers is each party's goroutines (0:
	// GOMAXPROCS).
	Preset        string
	AllowInsecure bool
	Workers       int
	// Lengths are the padded lengths n measured (nil: DefaultLengths).
	Lengths []int
	// Layers runs only the first Layers encoder layers (0: all; at least 2,
	// so that a layer follows the pruning step): every layer has the same
	// shape, so two tell the fit what more would.
	Layers int
	// Reps is how many times each length is measured (0: 1).
	Reps int
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// keepFraction is the share of the rows the pruned run keeps after layer 0
// and lowFraction the share of those at the low degree.
const (
	keepFraction = 0.25
	lowFraction  = 0.5
)

// DefaultLengths returns the padded lengths measured for a model of
// maxPositions positions: the maximum and its half, quarter and eighth,
// at least engine.MinLength.
func DefaultLengths(maxPositions int) []int {
	var out []int
	for _, d := range []int{8, 4, 2, 1} {
		if n := maxPositions / d; n >= engine.MinLength && (len(out) == 0 || n > out[len(out)-1]) {
			out = append(out, n)
		}
	}
	return out
}

// Observation is one measured layer (or pruning step, or head) with the
// fit's prediction.
type Observation struct {
	// N is the padded length and Variant "unpruned" or "pruned".
	N       int
	Variant string
	// Layer is the encoder layer (-1: the head).
	Layer int
	// In, InHigh, Kept and High are the layer's counts (InHigh: the
	// previous layer's high-degree rows, all of In at layer 0).
	In, InHigh, Kept, High int
	// Seconds is the server's time for the layer less its pruning step,
	// StepSeconds the step's (0: no step), Bytes the layer's traffic.
	Seconds, StepSeconds float64
	Bytes                int64
	// Reps is how many runs the times are the median of.
	Reps int
	// Predicted and PredictedStep are the fit's figures.
	Predicted, PredictedStep float64
}

// Report holds the measurements and the fitted cost model.
type Report struct {
	// Protocol is the engine's protocol version (engine.ProtocolVersion).
	Protocol uint32
	Preset   string
	Lengths  []int
	// Reps is how many inferences each length and variant ran.
	Reps int
	// Run and Layers are the layers run of the model's; Shape its shape.
	Run, Layers int
	Shape       prune.CostShape
	// Runs are the measured layers, steps and heads, every repetition.
	Runs []Observation
	// Observations are the runs' medians with the fit's predictions.
	Observations []Observation
	// Model is the fitted cost model.
	Model prune.CostModelLiteral
	// RelRMS is the root mean square of the fit's relative error over the
	// layers, pruning steps included.
	RelRMS float64
	// Load is the machine's one-minute load average before and after the
	// inferences (/proc/loadavg; zero where there is none): other work on
	// the cores slows the runs.
	Load [2]float64
	// Date is when the measurement ended (RFC 3339, UTC) and Machine the
	// system and its CPUs.
	Date, Machine string
}

// loadAverage returns the one-minute load average, or 0 where the system
// does not give it.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
}

// Measure runs the inferences and fits the cost model.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	m, err := engine.LoadModel(cfg.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	mc := m.Config()
	layers := mc.NumLayers()
	if cfg.Layers > 0 {
		layers = min(layers, cfg.Layers)
	}
	if layers < 2 {
		return nil, fmt.Errorf("cannot Measure: %d layers, want at least 2", layers)
	}
	lengths := cfg.Lengths
	if lengths == nil {
		lengths = DefaultLengths(mc.MaxPositions())
	}
	if len(lengths) == 0 {
		return nil, errors.New("cannot Measure: no lengths")
	}
	for _, n := range lengths {
		if n < engine.MinLength || n > mc.MaxPositions() {
			return nil, fmt.Errorf("cannot Measure: length %d not in [%d, %d]", n, engine.MinLength, mc.MaxPositions())
		}
	}
	text, err := fillerText(m, slices.Max(lengths))
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	rep := &Report{Protocol: engine.ProtocolVersion, Preset: cfg.Preset, Lengths: lengths, Reps: max(cfg.Reps, 1), Load: [2]float64{loadAverage(), 0}}
	warm := false // the process's first run warms it up (bench.Config.NoWarmUp)
	for range max(cfg.Reps, 1) {
		for _, n := range lengths {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("cannot Measure: %w", err)
			}
			obs, err := measureLength(ctx, cfg, text, n, mc.NumLayers(), layers, warm)
			warm = true
			if err != nil {
				return nil, fmt.Errorf("cannot Measure (n = %d): %w", n, err)
			}
			rep.Runs = append(rep.Runs, obs...)
		}
	}
	rep.Run, rep.Layers, rep.Shape = layers, mc.NumLayers(), prune.ShapeOf(mc)
	rep.Load[1], rep.Date = loadAverage(), time.Now().UTC().Format(time.RFC3339)
	rep.Machine = fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if err := rep.Refit(); err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	return rep, nil
}

// Refit fits the cost model to the report's runs and fills in
// Observations (the medians of the runs' repetitions, with the fit's
// predictions), Model and RelRMS: what Measure does after the inferences,
// for a report read back from its JSON.
func (rep *Report) Refit() error {
	rep.Observations = medians(rep.Runs)
	w, err := Fit(rep.Observations, rep.Shape)
	if err != nil {
		return err
	}
	rep.Model = w
	rep.RelRMS = predict(rep.Observations, w)
	rep.Model.Source = rep.source()
	return rep.Model.Validate()
}

// measureLength runs the unpruned and the pruned inference at padded
// length n (first `run` of `layers` layers) and returns their layers and
// heads.
func measureLength(ctx context.Context, cfg Config, text string, n, layers, run int, warm bool) ([]Observation, error) {
	sched := make([]int, layers)
	sched[0] = n
	for l := 1; l < layers; l++ {
		sched[l] = max(2, int(math.Round(keepFraction*float64(n))))
	}
	rec, err := bench.Run(ctx, bench.Config{
		ModelDir: cfg.ModelDir, Text: text, N: n, Schedule: sched, LowFraction: lowFraction, Layers: run, AllRowsLast: true, NoWarmUp: warm,
		Preset: cfg.Preset, AllowInsecure: cfg.AllowInsecure, Workers: cfg.Workers, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	var out []Observation
	for _, v := range rec.Variants {
		name := "unpruned"
		if v.Prune {
			name = "pruned"
		}
		for l, lr := range v.Layers {
			if lr.Extrapolated {
				continue
			}
			inHigh := lr.In
			if l > 0 {
				inHigh = v.Layers[l-1].High
			}
			out = append(out, Observation{N: n, Variant: name, Layer: l, In: lr.In, InHigh: inHigh, Kept: lr.Kept, High: lr.High,
				Seconds: lr.Seconds - lr.StepSeconds, StepSeconds: lr.StepSeconds, Bytes: lr.Bytes})
		}
		out = append(out, Observation{N: n, Variant: name, Layer: -1, Seconds: v.HeadSeconds})
	}
	return out, nil
}

// medians merges the repetitions of each layer (same length, variant,
// layer and counts) into one observation holding their median times, so
// that one run slowed by other work on the machine does not pull the fit.
func medians(obs []Observation) []Observation {
	type key struct {
		n, layer, in, inHigh, kept, high int
		variant                          string
	}
	groups := map[key][]Observation{}
	var order []key
	for _, o := range obs {
		k := key{o.N, o.Layer, o.In, o.InHigh, o.Kept, o.High, o.Variant}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], o)
	}
	out := make([]Observation, 0, len(order))
	for _, k := range order {
		g := groups[k]
		o := g[0]
		secs, steps, bytes := make([]float64, len(g)), make([]float64, len(g)), make([]float64, len(g))
		for i, r := range g {
			secs[i], steps[i], bytes[i] = r.Seconds, r.StepSeconds, float64(r.Bytes)
		}
		o.Seconds, o.StepSeconds, o.Bytes = median(secs), median(steps), int64(median(bytes))
		o.Reps = len(g)
		out = append(out, o)
	}
	return out
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// fillerText returns a text of at least n tokens of the model's vocabulary
// (an English paragraph repeated): every padded row is then a token, so the
// pruning step keeps exactly the schedule's rows.
func fillerText(m *engine.Model, n int) (string, error) {
	const para = "The food was delicious and the staff were friendly, but the room was small and the service slow. " +
		"Dear customer, your monthly statement for the account is now available online; please log in to review " +
		"your recent transactions and update your details if they have changed. I would gladly come back again. "
	var b strings.Builder
	for range 64 {
		b.WriteString(para)
		ids, err := m.Client.Tokenizer.TokenizeIDs(b.String())
		if err != nil {
			return "", err
		}
		if len(ids) >= n {
			return b.String(), nil
		}
	}
	return "", fmt.Errorf("filler text shorter than %d tokens", n)
}
