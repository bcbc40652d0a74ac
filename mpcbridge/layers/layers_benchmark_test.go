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
			var steps []string
			var stepSecs []float64
			var stepStats []wire.Stats
			last, lastStats := time.Now(), sc.Stats()
			srv.trace = func(step string) {
				now, st := time.Now(), sc.Stats()
				steps, stepSecs, stepStats = append(steps, step), append(stepSecs, now.Sub(last).Seconds()), append(stepStats, st.Sub(lastStats))
				last, lastStats = now, st
			}
			var ya, yb share.Vector
			s0, c0 := sc.Stats(), cc.Stats()
			cpu0 := nettest.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				steps, stepSecs, stepStats = nil, nil, nil
				last, lastStats = time.Now(), sc.Stats()
				serr, cerr := nettest.Both(func() (err error) {
					yb, err = srv.FFN(bg(), sc, w, degs, hb)
					return err
				}, func() (err error) {
					ya, err = cli.FFN(bg(), cc, plan, degs, ha)
					return err
				})
				if serr != nil || cerr != nil {
					b.Fatalf("server: %v, client: %v", serr, cerr)
				}
			}
			b.StopTimer()
			report(b, cpu0, sc.Stats().Sub(s0), cc.Stats().Sub(c0))
			for k, s := range steps {
				b.ReportMetric(stepSecs[k], s+"-s")
				b.ReportMetric(float64(stepStats[k].BytesReceived)/1e6, s+"-MB-up")
				b.ReportMetric(float64(stepStats[k].BytesSent)/1e6, s+"-MB-down")
			}
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
			serr, cerr := nettest.Both(func() (err error) {
				yb, err = srv.LayerNorm(bg(), sc, norm, nil, xb)
				return err
			}, func() (err error) {
				ya, err = cli.LayerNorm(bg(), cc, hidden, nil, xa)
				return err
			})
			if serr != nil || cerr != nil {
				b.Fatalf("server: %v, client: %v", serr, cerr)
			}
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
