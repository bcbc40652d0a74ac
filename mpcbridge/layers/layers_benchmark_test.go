package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// BenchmarkFFN measures the feed-forward stage on BERT-base's shapes
// (hidden 768, FFN 3072, random weights N(0, 0.03²), γ = 1 + N(0, 0.03²),
// β and biases N(0, 0.03²)) at n = 128, every row at the high degree
// (GELU of degree 127) and every row at the low one (63, the degree of
// the default registry's high GELU that ckks.BenchmarkGELU uses), with
// sentiment-tiny's registry (the default one's 1/√x does not fit
// Interactive14): two parties in one process over loopback TCP, 2 workers
// each, Interactive14 and polymat.N12, every conversion timed (the weights
// are encoded once, outside the timer; their memory is reported). It
// reports the CPU seconds of both parties, the bytes each way, the rounds,
// and per step (W1, gelu, W2, square, invsqrt, mulscaled) the server's
// wall seconds and the bytes each way. "layernorm" is the LayerNorm alone
// on 128 x 768. Run it beside the old path's pieces (ckks has no
// feed-forward benchmark: its GELU and LayerNorm on the same shapes, and
// its 768x3072 product, W1's shape, in a second invocation since the
// patterns differ in depth):
//
//	go test -p 1 -run '^$' -bench 'Benchmark(FFN|GELU|LayerNorm)$/(bert-base|high)$/(n=128|layernorm|workers=2)$' -benchtime 1x -timeout 2h ./ckks ./mpcbridge/layers
//	go test -p 1 -run '^$' -bench 'BenchmarkLinear$/768x3072$/n=128$/workers=2$' -benchtime 1x -timeout 2h ./ckks
func BenchmarkFFN(b *testing.B) {
	const (
		rows, hidden, inter = 128, 768, 3072
		logBound            = 5 // |h| <= 8 here, GELU's outputs <= 17 on its interval
	)
	tn := loadTiny(b)
	r := rand.New(rand.NewPCG(31, 32))
	randLinear := func(out, in int) *models.Linear {
		l := &models.Linear{Weight: models.NewMatrix(out, in), Bias: make([]float64, out)}
		for i := range l.Weight.Data {
			l.Weight.Data[i] = 0.03 * r.NormFloat64()
		}
		for i := range l.Bias {
			l.Bias[i] = 0.03 * r.NormFloat64()
		}
		return l
	}
	up, down := randLinear(inter, hidden), randLinear(hidden, inter)
	norm := &models.LayerNorm{Gamma: make([]float64, hidden), Beta: make([]float64, hidden), Eps: 1e-12}
	for j := range norm.Gamma {
		norm.Gamma[j], norm.Beta[j] = 1+0.03*r.NormFloat64(), 0.03*r.NormFloat64()
	}
	by := 0
	for _, l := range []*models.Linear{up, down} {
		v, err := LogBoundOut(logBound, transpose(l.Weight), l.In(), l.Out())
		if err != nil {
			b.Fatal(err)
		}
		by = max(by, v+1)
	}
	lit := ParametersLiteral{MatMul: matmul.ParametersLiteral{LogBound: logBound, LogBoundOut: by}}
	tc := newTestContext(b, lit, tn.reg)
	f := tc.p.FracBits()
	plan, err := tc.p.PlanFFN(FFNShape{Rows: rows, Hidden: hidden, Intermediate: inter})
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewFFNWeights(bg(), tc.p, plan, up, down, norm, 2)
	if err != nil {
		b.Fatal(err)
	}
	h := models.NewMatrix(rows, hidden) // a LayerNorm output: N(0, 1)
	for i := range h.Data {
		h.Data[i] = max(-7.9, min(7.9, r.NormFloat64()))
	}
	h = quantized(h, f)
	ha, hb := split(r, h.Data, f, 87)

	for _, deg := range approx.Degrees() {
		var degs []approx.Degree // nil: all high
		if deg != approx.High {
			degs = make([]approx.Degree, rows)
			for i := range degs {
				degs[i] = deg
			}
		}
		b.Run(fmt.Sprintf("bert-base/n=%d/%s/workers=2", rows, deg), func(b *testing.B) {
			srv, cli := tc.parties(b, 2)
			sc, cc := connPair(b)
			tr := &stepTrace{conn: sc}
			srv.trace = tr.mark
			var ya, yb share.Vector
			s0, c0 := sc.Stats(), cc.Stats()
			cpu0 := nettest.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.reset()
				runParties(b, sc, cc, func() (err error) {
					yb, err = srv.FFN(bg(), sc, w, degs, hb)
					return err
				}, func() (err error) {
					ya, err = cli.FFN(bg(), cc, plan, degs, ha)
					return err
				})
			}
			b.StopTimer()
			report(b, cpu0, sc.Stats().Sub(s0), cc.Stats().Sub(c0))
			tr.report(b)
			b.ReportMetric(float64(w.MemoryBytes())/(1<<20), "weight-MiB")
			want := plainFFN(tn, h, up, down, norm, modelDegrees(degs))
			b.ReportMetric(maxDiff(open(b, tc.p, ya, yb), want.Data), "max-err")
		})
	}

	b.Run(fmt.Sprintf("bert-base/layernorm/n=%d/workers=2", rows), func(b *testing.B) {
		srv, cli := tc.parties(b, 2)
		sc, cc := connPair(b)
		x := plainFFNResidual(tn, h, up, down, nil)
		x = quantized(x, f)
		xa, xb := split(r, x.Data, f, 88)
		var ya, yb share.Vector
		s0, c0 := sc.Stats(), cc.Stats()
		cpu0 := nettest.CPUSeconds()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			runParties(b, sc, cc, func() (err error) {
				yb, err = srv.LayerNorm(bg(), sc, norm, nil, xb)
				return err
			}, func() (err error) {
				ya, err = cli.LayerNorm(bg(), cc, hidden, nil, xa)
				return err
			})
		}
		b.StopTimer()
		report(b, cpu0, sc.Stats().Sub(s0), cc.Stats().Sub(c0))
		want := refLayerNorm(x, norm, nil, tn.ap)
		b.ReportMetric(maxDiff(open(b, tc.p, ya, yb), want.Data), "max-err")
	})
}

// report adds CPU seconds, bytes each way and rounds per op.
func report(b *testing.B, cpu0 float64, srv, cli wire.Stats) {
	n := float64(b.N)
	b.ReportMetric((nettest.CPUSeconds()-cpu0)/n, "cpu-s/op")
	b.ReportMetric(float64(cli.BytesSent)/1e6/n, "MB-up/op")
	b.ReportMetric(float64(srv.BytesSent)/1e6/n, "MB-down/op")
	b.ReportMetric(float64(srv.Rounds)/n, "server-rounds/op")
}

// plainFFNResidual returns h + W2·GELU(W1·h + b1) + b2 with the
// approximate forward's GELU (high degree).
func plainFFNResidual(tn *tiny, h models.Matrix, up, down *models.Linear, degs []models.Degree) models.Matrix {
	u, _ := models.MulTransBNew(h, up.Weight)
	for i, v := range u.Data {
		d := models.DegreeHigh
		if degs != nil {
			d = degs[i/u.Cols]
		}
		u.Data[i] = tn.ap.GELU(v+up.Bias[i%u.Cols], d)
	}
	v, _ := models.MulTransBNew(u, down.Weight)
	for i := range v.Data {
		v.Data[i] += down.Bias[i%v.Cols] + h.Data[i]
	}
	return v
}

// plainFFN is the stage in the approximate forward.
func plainFFN(tn *tiny, h models.Matrix, up, down *models.Linear, norm *models.LayerNorm, degs []models.Degree) models.Matrix {
	return refLayerNorm(plainFFNResidual(tn, h, up, down, degs), norm, degs, tn.ap)
}

// bertBase returns a one-layer BERT-base-shaped model (hidden 768, 12
// heads, FFN 3072) with random weights (models.NewRandomModel, seed 7) and
// sentiment-tiny's vocabulary.
func bertBase(b *testing.B, tn *tiny) *models.Model {
	lit := tn.model.Config().Literal()
	lit.HiddenSize, lit.NumAttentionHeads, lit.IntermediateSize, lit.NumHiddenLayers = 768, 12, 3072, 1
	lit.MaxPositionEmbeddings = 512
	cfg, err := models.NewConfig(lit)
	if err != nil {
		b.Fatal(err)
	}
	m, err := models.NewRandomModel(cfg, tn.model.Client.Tokenizer, 7)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// bertApprox returns the approximate forward calibrated for m on xs: the
// intervals and softmax shift of models.CalibrateApprox (from the ranges
// of one forward pass of m's layer and head on each input), with
// sentiment-tiny's recipes on them (GELU of degree 127 and 63, exp of
// degree 15 with two squarings, 1/x of degree 127, 1/√x of degree 63).
func bertApprox(b *testing.B, m *models.Model, xs ...models.Matrix) *models.Approximate {
	base, err := models.LoadApproxSettings(tinyDir)
	if err != nil {
		b.Fatal(err)
	}
	ap, err := models.NewApproximate(base)
	if err != nil {
		b.Fatal(err)
	}
	for _, x := range xs {
		h, _, err := m.Server.AttentionBlock(0, x, nil, nil, ap)
		if err != nil {
			b.Fatal(err)
		}
		y, err := m.Server.FeedForwardBlock(0, h, nil, ap)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Server.Head(y.Row(0), ap); err != nil {
			b.Fatal(err)
		}
	}
	cal, err := models.CalibrateApprox(base, ap.SoftmaxShift(), ap.Ranges())
	if err != nil {
		b.Fatal(err)
	}
	// The calibrated intervals and shift with sentiment-tiny's recipes
	// (degrees, squarings, no Newton step), which fit the default preset.
	lit := base
	lit.SoftmaxShift = cal.SoftmaxShift
	for _, fn := range approx.Funcs() {
		f := base.Registry.Func(fn)
		f.Interval = cal.Registry.Func(fn).Interval
		lit.Registry.SetFunc(fn, f)
	}
	if ap, err = models.NewApproximate(lit); err != nil {
		b.Fatal(err)
	}
	for _, fn := range approx.Funcs() {
		r := ap.Registry().Recipe(fn, approx.High)
		lo, hi := r.Interval()
		b.Logf("%s: [%.3g, %.3g], degree %d", fn, lo, hi, r.PolyDegree())
	}
	return ap
}

// bertLiteral returns the stages' literal for m's layer 0 on the secure
// presets: inputs of the products within 2^5, their output bound from the
// weights, and the bounds of the scaled queries (2^3), keys (2^5) and
// values (2^4), with ap's softmax shift.
func bertLiteral(b *testing.B, ap *models.Approximate, m *models.Model) ParametersLiteral {
	const logBound = 5
	ly := &m.Server.Layers[0]
	by := 0
	for _, l := range []*models.Linear{&ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput, &ly.Intermediate, &ly.Output} {
		v, err := LogBoundOut(logBound, transpose(l.Weight), l.In(), l.Out())
		if err != nil {
			b.Fatal(err)
		}
		by = max(by, v+1)
	}
	return ParametersLiteral{
		MatMul:       matmul.ParametersLiteral{LogBound: logBound, LogBoundOut: by},
		Scores:       sharedmul.ParametersLiteral{LogBoundX: 3, LogBoundY: 5},
		Context:      sharedmul.ParametersLiteral{LogBoundY: 4},
		SoftmaxShift: ap.SoftmaxShift(),
	}
}

// stepTrace records the server's wall seconds and bytes per step of a
// stage (Server.trace); a step name seen before gets its count appended
// (the two LayerNorms of a layer).
type stepTrace struct {
	conn  *wire.Conn
	names []string
	secs  []float64
	stats []wire.Stats
	seen  map[string]int
	last  time.Time
	lastS wire.Stats
}

func (t *stepTrace) reset() {
	t.names, t.secs, t.stats, t.seen = nil, nil, nil, map[string]int{}
	t.last, t.lastS = time.Now(), t.conn.Stats()
}

func (t *stepTrace) mark(step string) {
	now, st := time.Now(), t.conn.Stats()
	if t.seen[step]++; t.seen[step] > 1 {
		step = fmt.Sprintf("%s%d", step, t.seen[step])
	}
	t.names, t.secs, t.stats = append(t.names, step), append(t.secs, now.Sub(t.last).Seconds()), append(t.stats, st.Sub(t.lastS))
	t.last, t.lastS = now, st
}

func (t *stepTrace) report(b *testing.B) {
	for k, s := range t.names {
		b.ReportMetric(t.secs[k], s+"-s")
		b.ReportMetric(float64(t.stats[k].BytesReceived)/1e6, s+"-MB-up")
		b.ReportMetric(float64(t.stats[k].BytesSent)/1e6, s+"-MB-down")
	}
}

// BenchmarkLayer measures one whole BERT-base-shaped encoder layer on the
// rotation-free path (attention, then the feed-forward stage, no pruning
// step) at n = 128, 32, 1 and 2 (a pruned layer's rows), every row valid
// and at the high degree, with sentiment-tiny's approximation settings
// calibrated for this model (bertApprox: the intervals and degrees are
// logged): two parties in one process over loopback TCP, 2 workers each,
// Elementwise14 (the default) for the calls in slots, polymat.N12 for the
// products by weights, polymat.N13 for the
// shared products, every conversion timed (the weights are encoded once,
// outside the timer, for 128 rows; their memory is reported). It reports
// CPU seconds of both parties, bytes each way, rounds, the server's wall
// seconds and bytes per step, and the largest error against the
// approximate forward:
//
//	go test -p 1 -run '^$' -bench 'BenchmarkLayer$' -benchtime 1x -timeout 1h ./mpcbridge/layers
func BenchmarkLayer(b *testing.B) {
	tn := loadTiny(b)
	m := bertBase(b, tn)
	r := rand.New(rand.NewPCG(41, 42))
	inputs := map[int]models.Matrix{}
	for _, n := range []int{128, 32, 1, 2} {
		inputs[n] = bertInput(b, r, m, n, matmul.DefaultFracBits)
	}
	apx := bertApprox(b, m, inputs[128], inputs[32], inputs[2]) // n = 1 has no softmax to calibrate
	tc := newTestContext(b, bertLiteral(b, apx, m), apx.Registry())
	ly := &m.Server.Layers[0]
	cfg := m.Config()
	const planRows = 128
	ap, err := tc.p.PlanAttention(AttnShape{Rows: planRows, Hidden: cfg.HiddenSize(), Heads: cfg.NumHeads()})
	if err != nil {
		b.Fatal(err)
	}
	fp, err := tc.p.PlanFFN(FFNShape{Rows: planRows, Hidden: cfg.HiddenSize(), Intermediate: cfg.IntermediateSize()})
	if err != nil {
		b.Fatal(err)
	}
	aw, err := NewAttnWeights(bg(), tc.p, ap, &ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput, &ly.AttnNorm, 2)
	if err != nil {
		b.Fatal(err)
	}
	fw, err := NewFFNWeights(bg(), tc.p, fp, &ly.Intermediate, &ly.Output, &ly.OutputNorm, 2)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{128, 32, 1, 2} {
		b.Run(fmt.Sprintf("bert-base/n=%d/workers=2", n), func(b *testing.B) {
			x := inputs[n]
			xa, xb := split(r, x.Data, tc.p.FracBits(), 87)
			srv, cli := tc.parties(b, 2)
			sc, cc := connPair(b)
			tr := &stepTrace{conn: sc}
			srv.trace = tr.mark
			var ya, yb share.Vector
			s0, c0 := sc.Stats(), cc.Stats()
			cpu0 := nettest.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.reset()
				runParties(b, sc, cc, func() error {
					h, _, err := srv.Attention(bg(), sc, aw, Rows{}, xb)
					if err != nil {
						return err
					}
					yb, err = srv.FFN(bg(), sc, fw, nil, h)
					return err
				}, func() error {
					h, _, err := cli.Attention(bg(), cc, ap, Rows{}, xa)
					if err != nil {
						return err
					}
					ya, err = cli.FFN(bg(), cc, fp, nil, h)
					return err
				})
			}
			b.StopTimer()
			report(b, cpu0, sc.Stats().Sub(s0), cc.Stats().Sub(c0))
			tr.report(b)
			b.ReportMetric(float64(aw.MemoryBytes()+fw.MemoryBytes())/(1<<20), "weight-MiB")
			h, _, err := m.Server.AttentionBlock(0, x, nil, nil, oneKey{apx})
			if err != nil {
				b.Fatal(err)
			}
			want, err := m.Server.FeedForwardBlock(0, h, nil, apx)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(maxDiff(open(b, tc.p, ya, yb), want.Data), "max-err")
		})
	}
}

// bertInput returns m's embedding of n random tokens (CLS first),
// quantized to 2^-f.
func bertInput(b *testing.B, r *rand.Rand, m *models.Model, n, f int) models.Matrix {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 1000 + r.IntN(m.Config().VocabSize()-1000)
	}
	ids[0] = m.Client.Tokenizer.CLSID()
	x, err := m.Client.Embed(ids, nil)
	if err != nil {
		b.Fatal(err)
	}
	return quantized(x, f)
}
