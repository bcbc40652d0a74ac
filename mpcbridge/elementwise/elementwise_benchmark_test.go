package elementwise

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// BenchmarkElementwise times whole calls on BERT-base's shapes at n = 128
// at Interactive14: two parties in one process over loopback TCP, 2
// workers each, the client's encryption, the server's share addition,
// polynomial or product, re-randomization and masking, and the client's
// decryption into shares all timed (key generation is not). GELU on
// 128 x 3072 (the FFN's), exp on 12 x 128 x 128 (attention's scores), and
// the product on 128 x 768 (LayerNorm's x·(1/σ)), with approx.Default()'s
// recipes, as ckks.BenchmarkGELU. Run it beside the old path's GELU in one
// invocation, so that the ratio comes from one run:
//
//	go test -p 1 -run '^$' -bench '^Benchmark(GELU|Elementwise)$/^(high|low|gelu-high|gelu-low|exp-high|mul|old-gelu-high|old-gelu-low)$/^(workers=2|n=[0-9]+)$' -benchtime 1x -timeout 2h ./ckks ./mpcbridge/elementwise
//
// old-gelu-high and old-gelu-low are ckks.BenchmarkGELU's work in this
// process, so that its CPU seconds are measured too: ckks.Evaluator.ApplyFunc
// on the same 48 ciphertexts encrypted at the top level (where the old path
// evaluates after a refresh), no conversion.
func BenchmarkElementwise(b *testing.B) {
	reg := approx.Default()
	for _, deg := range []approx.Degree{approx.High, approx.Low} {
		b.Run(fmt.Sprintf("old-gelu-%s/n=%d", deg, 128*3072), func(b *testing.B) {
			tc := newTestContext(b, ParametersLiteral{})
			params := tc.p.Params()
			k := tc.p.Ciphertexts(128 * 3072)
			r := rand.New(rand.NewPCG(53, 54))
			cli, err := ckks.NewClient(params, tc.sk, tc.sk)
			if err != nil {
				b.Fatal(err)
			}
			lay := ckks.Layout{Rows: 1, Cols: k * tc.p.Slots(), Block: 1, Slots: tc.p.Slots()}
			x := &ckks.CtMatrix{Layout: lay}
			for i := 0; i < k; i++ {
				v := make([]float64, tc.p.Slots())
				for j := range v {
					v[j] = max(-12, min(12, 3*r.NormFloat64()))
				}
				pt := hefloat.NewPlaintext(params, params.MaxLevel())
				if err := cli.Enc.Encode(v, pt); err != nil {
					b.Fatal(err)
				}
				ct, err := cli.Encr.EncryptNew(pt)
				if err != nil {
					b.Fatal(err)
				}
				x.Cts = append(x.Cts, ct)
			}
			ev, err := ckks.NewEvaluator(params, rlwe.NewMemEvaluationKeySet(tc.rlk), reg, 2)
			if err != nil {
				b.Fatal(err)
			}
			var degs ckks.DegreeSet
			if deg != approx.High {
				degs = ckks.DegreeSet{deg}
			}
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ev.ApplyFunc(bg(), approx.GELU, x, degs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(k), "cts/operand")
			b.ReportMetric(float64(params.MaxLevel()), "input-level")
		})
	}
	for _, c := range []struct {
		name string
		call call
		n    int
	}{
		{"gelu-high", call{op: opPoly, fn: approx.GELU, deg: approx.High}, 128 * 3072},
		{"gelu-low", call{op: opPoly, fn: approx.GELU, deg: approx.Low}, 128 * 3072},
		{"exp-high", call{op: opPoly, fn: approx.Exp, deg: approx.High}, 12 * 128 * 128},
		{"mul", call{op: opMul}, 128 * 768},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", c.name, c.n), func(b *testing.B) {
			tc := newTestContext(b, ParametersLiteral{})
			r := rand.New(rand.NewPCG(51, 52))
			cl := c.call
			switch {
			case cl.op == opMul:
				cl.x, cl.y = uniform(r, c.n, -4, 4), uniform(r, c.n, 0.2, 2)
			default:
				lo, hi := reg.Interval(cl.fn)
				cl.x = make([]float64, c.n)
				for i := range cl.x { // activations: mostly small, some large
					cl.x[i] = max(lo, min(hi, 3*r.NormFloat64()))
				}
				if cl.fn == approx.Exp { // scores minus the shift: in [-32, 0]
					cl.x = uniform(r, c.n, lo, 0)
				}
			}
			sc, cc := connPair(b, "tcp")
			srv, err := NewServer(tc.p, tc.pk, tc.rlk, reg, 2)
			if err != nil {
				b.Fatal(err)
			}
			cli, err := NewClient(tc.p, tc.sk, 2)
			if err != nil {
				b.Fatal(err)
			}
			xa, xb := splitShares(r, fixed(tc.p, cl.x), 82)
			var ya, yb share.Vector
			if cl.y != nil {
				ya, yb = splitShares(r, fixed(tc.p, cl.y), 82)
			}
			level, err := tc.p.PolyLevel(reg, cl.fn, cl.deg)
			if cl.op == opMul {
				level, err = tc.p.MulLevel(), nil
			}
			if err != nil {
				b.Fatal(err)
			}
			var sh, ch share.Vector
			s0, c0 := sc.Stats(), cc.Stats()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				serr, cerr := nettest.Both(func() error {
					var err error
					if cl.op == opMul {
						sh, err = srv.Mul(bg(), sc, xb, yb)
					} else {
						sh, err = srv.Poly(bg(), sc, cl.fn, cl.deg, xb)
					}
					return err
				}, func() error {
					var err error
					if cl.op == opMul {
						ch, err = cli.Mul(bg(), cc, xa, ya)
					} else {
						ch, err = cli.Poly(bg(), cc, level, xa)
					}
					return err
				})
				if err := errors.Join(serr, cerr); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			up := float64(cc.Stats().Sub(c0).BytesSent) / float64(b.N)
			down := float64(sc.Stats().Sub(s0).BytesSent) / float64(b.N)
			b.ReportMetric(up, "B-client-to-server")
			b.ReportMetric(down, "B-server-to-client")
			b.ReportMetric((up+down)/1e6, "MB-total")
			b.ReportMetric(float64(tc.p.Ciphertexts(c.n)), "cts/operand")
			b.ReportMetric(float64(level), "input-level")
			got, err := share.Reconstruct(tc.p.Share(), ch, sh)
			if err != nil {
				b.Fatal(err)
			}
			xq, yq := quantized(tc.p, cl.x), []float64(nil)
			if cl.y != nil {
				yq = quantized(tc.p, cl.y)
			}
			var worst float64
			for i, v := range xq {
				want := 0.0
				if cl.op == opMul {
					want = v * yq[i]
				} else {
					want = reg.Eval(cl.fn, cl.deg, v)
				}
				worst = max(worst, math.Abs(got[i]-want))
			}
			if worst > tolerance {
				b.Fatalf("max |error| %g against the recipe", worst)
			}
			b.ReportMetric(worst, "max-err")
		})
	}
}
