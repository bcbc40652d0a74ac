// Package bench measures whole private inferences: it runs the engine's
// server and client in one process over loopback TCP on a trained model or
// on a named BERT shape with random weights, with and without pruning and
// degree reduction, and writes the record (JSON), a table and a chart.
//
// Times are wall-clock on the machine that runs it; bytes and rounds are
// exact (counted by mpcbridge/wire). The LAN and WAN figures are modelled:
// the measured loopback time plus bytes over the link's bandwidth plus
// rounds times its round-trip time. When only the first layers are run
// (Config.Layers), the other layers' times and bytes are extrapolated from
// the measured ones and marked as such.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/prune"
)

// Shape is a named BERT shape for models without trained weights.
type Shape struct {
	Name                                    string
	Layers, Hidden, Heads, FFN, MaxPosition int
}

// Shapes returns the named shapes (the BERT family's).
func Shapes() []Shape {
	return []Shape{
		{"bert-tiny", 2, 128, 2, 512, 512},
		{"bert-mini", 4, 256, 4, 1024, 512},
		{"bert-base", 12, 768, 12, 3072, 512},
		{"bert-large", 24, 1024, 16, 4096, 512},
	}
}

// ShapeByName returns the shape called name.
func ShapeByName(name string) (Shape, error) {
	for _, s := range Shapes() {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range Shapes() {
		names = append(names, s.Name)
	}
	return Shape{}, fmt.Errorf("unknown shape %q (known: %s)", name, strings.Join(names, ", "))
}

// CipherPruneBERTBase is the number of tokens entering each layer of
// BERT-base at n = 128 in CipherPrune's paper.
var CipherPruneBERTBase = []int{128, 55, 54, 52, 49, 45, 24, 14, 5, 2, 1, 1}

// Config configures one benchmark run.
type Config struct {
	// ModelDir is a trained model (with approx.json and prune.json), or
	// Shape a named shape with random weights (exactly one of them).
	ModelDir string
	Shape    string
	// Text is the input of a trained model (padded to N); shapes get N
	// random tokens.
	Text string
	// N is the padded length.
	N int
	// Schedule is, for a shape, the rows entering each layer with pruning
	// (Schedule[0] = N); the harness sets each layer's threshold between the
	// kept and the dropped rows' importance in the plaintext run of the same
	// input, so the encrypted protocol keeps exactly those rows. nil: the
	// model's learned thresholds (a trained model) or halving (a shape).
	Schedule []int
	// LowFraction is, with a schedule, the fraction of the kept rows (CLS
	// excluded) given the low degree.
	LowFraction float64
	// HideLength, when not zero, adds a third variant: pruning and degree
	// reduction with engine.ClientConfig.HideLength (the kept counts rounded
	// up to multiples of it), to measure what hiding the length costs.
	HideLength int
	// Layers runs only the first Layers encoder layers (0: all); the others
	// are extrapolated. Where they are fewer than the model's, the last one
	// run computes every row (engine.ServerConfig.AllRowsLastLayer), as
	// it would in the whole model.
	Layers int
	// NoWarmUp skips the warm-up: by default an unpruned inference of the
	// first layer alone runs, unmeasured, before the variants, so that the
	// first variant does not pay alone for the process's first calls
	// (sentiment-tiny at n = 128: keys 0.4 -> 0.1 s, layer 0 3.91 -> 3.65
	// s; BERT-base's unpruned layer 0 18.3 -> 17.4 s, still 2.8 s above its
	// next layers, as every variant's first layer is: not explained yet).
	NoWarmUp bool
	// AllRowsLast makes the last layer run compute every row even when it
	// is the model's last (whose CLS row alone the engine computes
	// otherwise): the cost model's observations are of whole layers.
	AllRowsLast bool
	// Preset, AllowInsecure and Workers configure the engine
	// (engine.ServerConfig).
	Preset        string
	AllowInsecure bool
	Workers       int
	// Seed seeds the random weights and tokens of a shape.
	Seed uint64
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Record is the result of one run.
type Record struct {
	Name     string `json:"name"`
	Preset   string `json:"preset"`
	N        int    `json:"n"`
	Layers   int    `json:"layers"`
	Measured int    `json:"measured_layers"`
	Hidden   int    `json:"hidden"`
	Heads    int    `json:"heads"`
	FFN      int    `json:"ffn"`
	Tokens   int    `json:"tokens"`
	// Labels is the classifier's outputs.
	Labels int `json:"labels,omitempty"`
	// HideLength is the group of the third variant's kept counts (0: no
	// such variant).
	HideLength int   `json:"hide_length,omitempty"`
	Schedule   []int `json:"schedule,omitempty"`
	// WarmUpSeconds is the unmeasured warm-up inference's time (0: none;
	// Config.NoWarmUp).
	WarmUpSeconds float64   `json:"warm_up_seconds,omitempty"`
	Variants      []Variant `json:"variants"`
	Speedup       float64   `json:"speedup_measured_layers"`
	SpeedupAll    float64   `json:"speedup_all_layers"`
	LAN           Link      `json:"lan"`
	WAN           Link      `json:"wan"`
	Machine       string    `json:"machine"`
	Date          string    `json:"date"`
}

// Link is a modelled network: bandwidth and round-trip time.
type Link struct {
	Name    string  `json:"name"`
	Gbps    float64 `json:"gbps"`
	RTTms   float64 `json:"rtt_ms"`
	Speedup float64 `json:"speedup"`
}

// Variant is one configuration's figures.
type Variant struct {
	Name   string  `json:"name"`
	Prune  bool    `json:"prune"`
	Reduce bool    `json:"reduce"`
	Layers []Layer `json:"per_layer"`
	// KeysSeconds, InputSeconds and HeadSeconds are the set-up phases and the
	// head; LayerSeconds the measured layers; AllSeconds every layer
	// (extrapolated ones included) plus set-up and head.
	KeysSeconds  float64 `json:"keys_seconds"`
	InputSeconds float64 `json:"input_seconds"`
	HeadSeconds  float64 `json:"head_seconds"`
	LayerSeconds float64 `json:"measured_layer_seconds"`
	AllSeconds   float64 `json:"all_seconds"`
	// Bytes and rounds of the measured run (exact) and of all layers
	// (extrapolated layers estimated).
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	Rounds        int   `json:"rounds"`
	AllBytes      int64 `json:"all_bytes"`
	AllRounds     int   `json:"all_rounds"`
	// KeyBytes is what the client's keys took on the wire.
	KeyBytes   int64   `json:"key_bytes"`
	LANSeconds float64 `json:"lan_seconds"`
	WANSeconds float64 `json:"wan_seconds"`
	// Label is the private label; Logits are empty unless they were opened
	// (the engine opens the label alone by default).
	Label  int       `json:"label"`
	Logits []float64 `json:"logits,omitempty"`
}

// Layer is one encoder layer's figures.
type Layer struct {
	Layer int `json:"layer"`
	In    int `json:"in"`
	Kept  int `json:"kept"`
	High  int `json:"high"`
	// Seconds is the server's time for the layer, StepSeconds the part in
	// its pruning step.
	Seconds      float64 `json:"seconds"`
	StepSeconds  float64 `json:"step_seconds"`
	Bytes        int64   `json:"bytes"`
	Rounds       int     `json:"rounds"`
	Extrapolated bool    `json:"extrapolated"`
}

// The modelled links (as in mpcbridge/prunestep's documentation).
var (
	LAN = Link{Name: "LAN", Gbps: 3, RTTms: 0.8}
	WAN = Link{Name: "WAN", Gbps: 0.2, RTTms: 40}
)

func (l Link) seconds(loopback float64, bytes int64, rounds int) float64 {
	return loopback + float64(bytes)*8/(l.Gbps*1e9) + float64(rounds)*l.RTTms/1e3
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// Run runs the benchmark: the same input without pruning and degree
// reduction, then with both.
func Run(ctx context.Context, cfg Config) (*Record, error) {
	if (cfg.ModelDir == "") == (cfg.Shape == "") {
		return nil, errors.New("cannot Run: give exactly one of a model directory and a shape")
	}
	m, enc, name, err := prepare(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot Run: %w", err)
	}
	full := m.Config().NumLayers()
	measured := full
	if cfg.Layers > 0 && cfg.Layers < full {
		measured = cfg.Layers
	}
	if cfg.Schedule != nil || m.Thresholds == nil {
		sched := cfg.Schedule
		if sched == nil {
			sched = halving(cfg.N, full)
		}
		if len(sched) != full || sched[0] != enc.Len() {
			return nil, fmt.Errorf("cannot Run: schedule %v for %d layers and n = %d", sched, full, enc.Len())
		}
		if m.Approx == nil {
			budget, err := engine.LevelBudget(cfg.Preset, cfg.AllowInsecure)
			if err != nil {
				return nil, fmt.Errorf("cannot Run: %w", err)
			}
			cfg.logf("calibrating the approximations on the %d measured layers (recipes within %d levels)", measured, budget)
			if m.Approx, err = calibrateRandom(truncate(m, measured).Model, enc, sched, cfg.Seed, budget); err != nil {
				return nil, fmt.Errorf("cannot Run: %w", err)
			}
			var tbl strings.Builder
			if err := m.Approx.Registry().Table().Format(&tbl); err == nil {
				cfg.logf("calibrated registry:\n%s", tbl.String())
			}
		}
		th, err := scheduleThresholds(m, enc, sched, cfg.LowFraction)
		if err != nil {
			return nil, fmt.Errorf("cannot Run: %w", err)
		}
		m.Thresholds = th
		cfg.Schedule = sched
	}
	run := truncate(m, measured)
	rec := &Record{
		Name: name, Preset: cfg.Preset, N: enc.Len(), Layers: full, Measured: measured,
		Hidden: m.Config().HiddenSize(), Heads: m.Config().NumHeads(), FFN: m.Config().IntermediateSize(), Labels: m.Config().NumLabels(),
		Schedule: cfg.Schedule, LAN: LAN, WAN: WAN, Date: time.Now().UTC().Format(time.RFC3339), HideLength: cfg.HideLength,
		Machine: fmt.Sprintf("%s/%s, %d CPUs, GOMAXPROCS %d", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0)),
	}
	for _, m := range enc.AttentionMask {
		rec.Tokens += m
	}
	type variant struct {
		name          string
		prune, reduce bool
		hide          int
	}
	variants := []variant{{"unpruned", false, false, 0}, {"pruned+reduced", true, true, 0}}
	if cfg.HideLength > 0 {
		variants = append(variants, variant{fmt.Sprintf("pruned+reduced+hide-length-%d", cfg.HideLength), true, true, cfg.HideLength})
	}
	if !cfg.NoWarmUp {
		cfg.logf("%s: warm-up, n = %d, the first layer unpruned (not measured)", name, enc.Len())
		t0 := time.Now()
		if _, err := infer(ctx, cfg, truncate(m, 1), true, enc, false, false, 0); err != nil {
			return nil, fmt.Errorf("cannot Run: warm-up: %w", err)
		}
		rec.WarmUpSeconds = time.Since(t0).Seconds()
	}
	for _, v := range variants {
		cfg.logf("%s: %s, n = %d, %d of %d layers", name, v.name, enc.Len(), measured, full)
		res, err := infer(ctx, cfg, run, measured < full || cfg.AllRowsLast, enc, v.prune, v.reduce, v.hide) // a hiding client pads with [SEP]
		if err != nil {
			return nil, fmt.Errorf("cannot Run: %s: %w", v.name, err)
		}
		rec.Variants = append(rec.Variants, variantOf(v.name, v.prune, v.reduce, res))
	}
	extrapolate(rec)
	base, pr := rec.Variants[0], rec.Variants[1]
	rec.Speedup = base.LayerSeconds / pr.LayerSeconds
	rec.SpeedupAll = base.AllSeconds / pr.AllSeconds
	rec.LAN.Speedup = base.LANSeconds / pr.LANSeconds
	rec.WAN.Speedup = base.WANSeconds / pr.WANSeconds
	return rec, nil
}

// prepare loads the model (or builds the shape) and the input.
func prepare(cfg Config) (*engine.Model, models.Encoding, string, error) {
	if cfg.ModelDir != "" {
		m, err := engine.LoadModel(cfg.ModelDir)
		if err != nil {
			return nil, models.Encoding{}, "", err
		}
		enc, err := m.Client.Tokenizer.EncodePadded(cfg.Text, cfg.N)
		if err != nil {
			return nil, models.Encoding{}, "", err
		}
		name := cfg.ModelDir[strings.LastIndex(cfg.ModelDir, "/")+1:]
		return m, enc, name, nil
	}
	sh, err := ShapeByName(cfg.Shape)
	if err != nil {
		return nil, models.Encoding{}, "", err
	}
	const vocabSize = 1024
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for i := len(vocab); i < vocabSize; i++ {
		vocab = append(vocab, fmt.Sprintf("w%d", i))
	}
	tok, err := models.NewTokenizer(vocab)
	if err != nil {
		return nil, models.Encoding{}, "", err
	}
	lit := models.DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize = vocabSize
	lit.HiddenSize, lit.NumHiddenLayers, lit.NumAttentionHeads, lit.IntermediateSize = sh.Hidden, sh.Layers, sh.Heads, sh.FFN
	lit.MaxPositionEmbeddings = sh.MaxPosition
	mcfg, err := models.NewConfig(lit)
	if err != nil {
		return nil, models.Encoding{}, "", err
	}
	mm, err := models.NewRandomModel(mcfg, tok, cfg.Seed)
	if err != nil {
		return nil, models.Encoding{}, "", err
	}
	scaleQueries(mm, randomQueryScale)
	if cfg.N < 2 || cfg.N > sh.MaxPosition {
		return nil, models.Encoding{}, "", fmt.Errorf("n = %d not in [2, %d]", cfg.N, sh.MaxPosition)
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 1))
	enc := models.Encoding{IDs: make([]int, cfg.N), TypeIDs: make([]int, cfg.N), AttentionMask: make([]int, cfg.N)}
	for i := range enc.IDs {
		enc.IDs[i] = 5 + r.IntN(vocabSize-5)
		enc.AttentionMask[i] = 1
	}
	enc.IDs[0], enc.IDs[cfg.N-1] = tok.CLSID(), tok.SEPID()
	return &engine.Model{Model: mm}, enc, sh.Name, nil // Run calibrates it
}

// randomQueryScale scales a random shape's query weights and biases. A
// trained model is fine-tuned to keep each softmax row's log-sum-exp in a
// fixed interval (models/training/bert.py, attention_range_penalty), since
// the encrypted softmax subtracts a public shift, not the row's maximum;
// random weights have no such property. At full scale BERT-base's
// calibrated 1/x interval was [0.0034, 290], where the seven-level
// reciprocal errs by up to 268: a run's A·V product then exceeded its
// declared bound and stopped (2026-12-06). A quarter of the scale gives
// [0.026, 39] (error 2.8, 7% relative); the times do not depend on the
// values.
const randomQueryScale = 0.25

// scaleQueries multiplies every layer's query weights and bias by f.
func scaleQueries(m *models.Model, f float64) {
	for l := range m.Server.Layers {
		q := &m.Server.Layers[l].Query
		for i := range q.Weight.Data {
			q.Weight.Data[i] *= f
		}
		for i := range q.Bias {
			q.Bias[i] *= f
		}
	}
}

// calibrateRandom fits the approximation intervals of a random model to its
// activations on the benchmark's input and two other random inputs of the
// same length, with and without the schedule (as "cipherprune calibrate"
// does on training data). m should hold only the layers that will run:
// pruning shrinks softmax row sums, so layers with very few rows would
// widen the reciprocal's interval beyond what the level budget carries.
func calibrateRandom(m *models.Model, enc models.Encoding, sched []int, seed uint64, maxDepth int) (*models.Approximate, error) {
	r := rand.New(rand.NewPCG(seed, 2))
	cfg := m.Config()
	inputs := [][]int{enc.IDs}
	for k := 0; k < 2; k++ {
		ids := slices.Clone(enc.IDs)
		for i := 1; i < len(ids)-1; i++ {
			ids[i] = 5 + r.IntN(cfg.VocabSize()-5)
		}
		inputs = append(inputs, ids)
	}
	pass := func(lit models.ApproxSettingsLiteral) (*models.Approximate, error) {
		nl, err := models.NewApproximate(lit)
		if err != nil {
			return nil, err
		}
		for _, ids := range inputs {
			x0, err := m.Client.Embed(ids, nil)
			if err != nil {
				return nil, err
			}
			opts := []*models.ForwardOptions{{Nonlinear: nl}}
			if sched != nil {
				fixed, err := prune.NewFixedSchedule(sched[:cfg.NumLayers()])
				if err != nil {
					return nil, err
				}
				opts = append(opts, &models.ForwardOptions{Nonlinear: nl, Schedule: fixed})
			}
			for _, o := range opts {
				if _, err := m.Server.Forward(x0, enc.AttentionMask, o); err != nil {
					return nil, err
				}
			}
		}
		return nl, nil
	}
	base := models.DefaultApproxSettingsLiteral()
	nl, err := pass(base)
	if err != nil {
		return nil, err
	}
	base.SoftmaxShift = math.Ceil(nl.Ranges()[approx.Exp].Max)
	if nl, err = pass(base); err != nil {
		return nil, err
	}
	lit, err := models.CalibrateApproxDepth(base, base.SoftmaxShift, nl.Ranges(), maxDepth)
	if err != nil {
		return nil, err
	}
	return models.NewApproximate(lit)
}

// halving is BOLT's schedule: every layer after the first keeps half.
func halving(n, layers int) []int {
	s := make([]int, layers)
	s[0] = n
	for l := 1; l < layers; l++ {
		s[l] = max(1, s[l-1]/2)
	}
	return s
}

// scheduleThresholds runs the plaintext approximate forward with the fixed
// schedule and returns per-layer thresholds that make the same decisions
// on this input: θ_l between the lowest kept and the highest dropped
// importance after layer l's attention, β_l between the kept rows' scores
// at the low fraction. The last layer prunes nothing (only its CLS row
// matters, and this packing gains nothing from dropping the others).
func scheduleThresholds(m *engine.Model, enc models.Encoding, sched []int, lowFraction float64) (*prune.Thresholds, error) {
	layers := len(sched)
	lits := make([]prune.LayerLiteral, layers)
	fixed, err := prune.NewFixedSchedule(sched)
	if err != nil {
		return nil, err
	}
	rec := models.ScheduleFunc(func(att *models.LayerAttention) (models.Decision, error) {
		d, err := fixed.AfterAttention(att)
		if err != nil || att.Layer >= layers-1 {
			return models.Decision{}, err
		}
		s := att.Importance()
		var kept, dropped []float64
		for i, v := range s[1:] {
			if d.Keep == nil || d.Keep[i+1] {
				kept = append(kept, v)
			} else {
				dropped = append(dropped, v)
			}
		}
		sort.Float64s(kept)
		theta := 0.0
		if len(dropped) > 0 {
			lo := slices.Max(dropped)
			theta = lo
			if len(kept) > 0 {
				theta = (lo + kept[0]) / 2
			}
			theta = math.Max(theta, 1.5*prune.MinTheta)
		}
		beta := theta
		if k := int(lowFraction * float64(len(kept))); k > 0 && k < len(kept) {
			beta = (kept[k-1] + kept[k]) / 2
		}
		lits[att.Layer] = prune.LayerLiteral{Theta: theta, Beta: beta}
		return d, nil
	})
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		return nil, err
	}
	if _, err := m.Server.Forward(x0, enc.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: rec}); err != nil {
		return nil, err
	}
	return prune.NewThresholds(prune.ThresholdsLiteral{Layers: lits, Search: map[string]any{"method": "bench: fixed schedule realized on this input"}}, layers)
}

// truncate returns the model with only its first k layers.
func truncate(m *engine.Model, k int) *engine.Model {
	if k == m.Config().NumLayers() {
		return m
	}
	lit := m.Config().Literal()
	lit.NumHiddenLayers = k
	cfg, err := models.NewConfig(lit)
	if err != nil {
		panic(fmt.Sprintf("bench: truncating a valid config failed: %v", err))
	}
	client := *m.Client
	client.Config = cfg
	server := *m.Server
	server.Config = cfg
	server.Layers = server.Layers[:k]
	out := &engine.Model{Model: &models.Model{Client: &client, Server: &server}, Approx: m.Approx}
	if m.Thresholds != nil {
		lit := m.Thresholds.Literal()
		lit.Layers = lit.Layers[:k]
		th, err := prune.NewThresholds(lit, k)
		if err != nil {
			panic(fmt.Sprintf("bench: truncating valid thresholds failed: %v", err))
		}
		out.Thresholds = th
	}
	return out
}

// infer runs one private inference over loopback TCP; prefix says that m
// is the first layers of a deeper model, whose last layer computes every
// row (engine.ServerConfig.AllRowsLastLayer).
func infer(ctx context.Context, cfg Config, m *engine.Model, prefix bool, enc models.Encoding, prune, reduce bool, hideLength int) (*engine.Result, error) {
	srv, err := engine.NewServer(m, engine.ServerConfig{Preset: cfg.Preset, AllowInsecure: cfg.AllowInsecure, Workers: cfg.Workers, AllRowsLastLayer: prefix,
		Logf: func(format string, args ...any) { cfg.logf("  server: "+format, args...) }})
	if err != nil {
		return nil, err
	}
	addr, stop, err := srv.ServeLocal(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	cli, err := engine.NewClient(m.Client, engine.ClientConfig{
		Preset: cfg.Preset, AllowInsecure: cfg.AllowInsecure, Length: enc.Len(),
		NoPruning: !prune, NoDegreeReduction: !reduce, HideLength: hideLength,
		Progress: func(p engine.Progress) {
			switch p.Phase {
			case engine.PhaseLayer:
				cfg.logf("  [%6.1fs] layer %d", p.Elapsed.Seconds(), p.Layer)
			case engine.PhasePrune:
				cfg.logf("  [%6.1fs] layer %d pruned: %v", p.Elapsed.Seconds(), p.Layer, p.Counts)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return cli.InferEncoding(ctx, nc, enc)
}

func variantOf(name string, prune, reduce bool, res *engine.Result) Variant {
	rep := res.Report
	v := Variant{Name: name, Prune: prune, Reduce: reduce, HeadSeconds: rep.HeadSeconds, KeyBytes: rep.KeyBytes,
		BytesSent: rep.BytesSent, BytesReceived: rep.BytesReceived, Rounds: rep.Rounds, Label: res.Label, Logits: res.Logits}
	for _, ph := range rep.Phases {
		switch ph.Phase {
		case engine.PhaseKeys:
			v.KeysSeconds = ph.Seconds
		case engine.PhaseInput:
			v.InputSeconds = ph.Seconds
		}
	}
	for l, lr := range rep.Layers {
		v.Layers = append(v.Layers, Layer{Layer: l, In: lr.In, Kept: lr.Kept, High: lr.High, Seconds: lr.Seconds,
			StepSeconds: lr.StepSeconds, Bytes: lr.BytesSent + lr.BytesReceived, Rounds: lr.Rounds})
		v.LayerSeconds += lr.Seconds
	}
	return v
}

// extrapolate fills in the layers that were not run. A layer's time and
// bytes are modelled as a·r + c·r², fitted by least squares to every
// measured layer of both variants, r the rows entering it: the products by
// weights, the polynomials and the conversions cost in proportion to the
// rows (mpcbridge/layers packs them densely, with no per-row floor), the
// attention's scores and probabilities in proportion to r². The pruned
// variant's rows come from the schedule (or, for learned thresholds, stay
// at the last measured count). An extrapolated layer is marked.
func extrapolate(rec *Record) {
	var rs, ts, bs []float64
	for _, v := range rec.Variants {
		for _, l := range v.Layers {
			rs, ts, bs = append(rs, float64(l.In)), append(ts, l.Seconds), append(bs, float64(l.Bytes))
		}
	}
	tf, bf := fitRows(rs, ts), fitRows(rs, bs)
	for vi := range rec.Variants {
		v := &rec.Variants[vi]
		v.AllSeconds = v.KeysSeconds + v.InputSeconds + v.HeadSeconds + v.LayerSeconds
		v.AllBytes = v.BytesSent + v.BytesReceived
		v.AllRounds = v.Rounds
		rows := v.Layers[len(v.Layers)-1].Kept
		meanRounds := v.Layers[0].Rounds
		for l := len(v.Layers); l < rec.Layers; l++ {
			in := rows
			if v.Prune && rec.Schedule != nil {
				in = rec.Schedule[l]
			}
			kept := in
			if v.Prune && rec.Schedule != nil && l+1 < rec.Layers {
				kept = rec.Schedule[l+1]
			}
			t, b := tf(float64(in)), max(int64(bf(float64(in))), 0)
			v.Layers = append(v.Layers, Layer{Layer: l, In: in, Kept: kept, High: kept, Seconds: t, Bytes: b, Rounds: meanRounds, Extrapolated: true})
			v.AllSeconds += t
			v.AllBytes += b
			v.AllRounds += meanRounds
			rows = kept
		}
		v.LANSeconds = LAN.seconds(v.AllSeconds, v.AllBytes, v.AllRounds)
		v.WANSeconds = WAN.seconds(v.AllSeconds, v.AllBytes, v.AllRounds)
	}
}

// fitRows returns the least-squares fit y = a·r + c·r² of the points (rs,
// ys); with a single distinct r (every layer alike) it falls back to y =
// a·r.
func fitRows(rs, ys []float64) func(r float64) float64 {
	var s11, s12, s22, s1y, s2y float64
	for i, r := range rs {
		x1, x2 := r, r*r
		s11 += x1 * x1
		s12 += x1 * x2
		s22 += x2 * x2
		s1y += x1 * ys[i]
		s2y += x2 * ys[i]
	}
	if det := s11*s22 - s12*s12; det > 1e-9*s11*s22 {
		a, c := (s1y*s22-s2y*s12)/det, (s2y*s11-s1y*s12)/det
		return func(r float64) float64 { return a*r + c*r*r }
	}
	a := 0.0
	if s11 > 0 {
		a = s1y / s11
	}
	return func(r float64) float64 { return a * r }
}
