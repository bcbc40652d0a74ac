package elementwise

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// BenchmarkElementwise times whole calls on BERT-base's shapes at n = 128:
// two parties in one process over loopback TCP, 2 workers each, the
// client's encryption, the server's share addition, polynomial or product,
// re-randomization and masking, and the client's decryption into shares
// all timed (key generation is not). GELU on 128 x 3072 (the FFN's) at
// both degrees, exp on 12 x 128 x 128 (attention's scores), and the
// product on 128 x 768 (LayerNorm's x·(1/σ)), with sentiment-tiny's
// registry (GELU of degree 127 and 63, exp of degree 15 with two
// squarings), the one BenchmarkFFN uses, on three configurations side by
// side in one run:
//
//   - interactive14-nofold: ckks.Interactive14 (standard ring, 8192 slots)
//     evaluated as before the folding (ckks.Evaluator.ApplyFunc, change of
//     basis included): the package as it was;
//
//   - interactive14: the same ring with the change of basis folded into
//     the encoding and GELU split by parity;
//
//   - elementwise14: the default, Elementwise14 (conjugate-invariant ring,
//     16384 real slots, seven 36-bit levels), folded and split;
//
//   - elementwise15: the deep preset, Elementwise15 (conjugate-invariant
//     ring, 32768 real slots, seventeen 36-bit levels), folded and split.
//
//     go test -p 1 -run '^$' -bench '^BenchmarkElementwise$/^(interactive14-nofold|interactive14|elementwise14)$' -benchtime 1x -timeout 1h ./mpcbridge/elementwise
//
// Every configuration also runs spam-mini's 1/x (degree 127 and one Newton
// step, unfolded: 10 levels above the mask) on 128 x 768 values where it
// fits (Elementwise15 only; the others skip it), so that the deep preset
// is compared with the default in one run:
//
//	go test -p 1 -run '^$' -bench '^BenchmarkElementwise$/^(elementwise14|elementwise15)$' -benchtime 1x -timeout 1h ./mpcbridge/elementwise
//
// old-gelu-high and old-gelu-low are ckks.BenchmarkGELU's work in this
// process (approx.Default()'s GELU of degree 63 and 31), so that its CPU
// seconds are measured too: ckks.Evaluator.ApplyFunc on the same 48
// ciphertexts encrypted at the top level of Interactive14 (where the old
// path evaluates after a refresh), no conversion. Compare it with
// ckks.BenchmarkGELU and with this benchmark's cases on the default
// registry by hand (it is not part of the pattern above).
func BenchmarkElementwise(b *testing.B) {
	reg := approx.Default()
	for _, deg := range []approx.Degree{approx.High, approx.Low} {
		b.Run(fmt.Sprintf("old-gelu-%s/n=%d", deg, 128*3072), func(b *testing.B) {
			tc := newTestContext(b, ParametersLiteral{Preset: ckks.Interactive14})
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
			cpu0 := nettest.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ev.ApplyFunc(bg(), approx.GELU, x, degs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((nettest.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(k), "cts/operand")
			b.ReportMetric(float64(params.MaxLevel()), "input-level")
		})
	}
	trained, spam := trainedRegistry(b), spamMiniRegistry(b)
	for _, cfg := range []struct {
		name   string
		preset string
		noFold bool
	}{
		{"interactive14-nofold", ckks.Interactive14, true},
		{"interactive14", ckks.Interactive14, false},
		{"elementwise14", Elementwise14, false},
		{"elementwise15", Elementwise15, false},
	} {
		b.Run(cfg.name, func(b *testing.B) { benchmarkCalls(b, trained, spam, cfg.preset, cfg.noFold) })
	}
}

// benchmarkCalls runs BenchmarkElementwise's calls on one configuration:
// those of the registry trained, and spam's 1/x where the preset has the
// levels for it.
func benchmarkCalls(b *testing.B, trained, spam *approx.Registry, preset string, noFold bool) {
	for _, c := range []struct {
		name string
		reg  *approx.Registry
		call call
		n    int
	}{
		{"gelu-high", trained, call{op: opPoly, fn: approx.GELU, deg: approx.High}, 128 * 3072},
		{"gelu-low", trained, call{op: opPoly, fn: approx.GELU, deg: approx.Low}, 128 * 3072},
		{"exp-high", trained, call{op: opPoly, fn: approx.Exp, deg: approx.High}, 12 * 128 * 128},
		{"mul", trained, call{op: opMul}, 128 * 768},
		{"spam-reciprocal-high", spam, call{op: opPoly, fn: approx.Reciprocal, deg: approx.High}, 128 * 768},
	} {
		reg := c.reg
		b.Run(fmt.Sprintf("%s/n=%d", c.name, c.n), func(b *testing.B) {
			tc := *newTestContext(b, ParametersLiteral{Preset: preset})
			if c.call.op == opPoly {
				if _, err := tc.p.PolyLevel(reg, c.call.fn, c.call.deg); err != nil {
					b.Skip(err)
				}
			}
			tc.p.noFold = noFold
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
				if cl.fn == approx.Reciprocal { // softmax's sums: anywhere in the interval
					cl.x = uniform(r, c.n, lo, hi)
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
			cpu0 := nettest.CPUSeconds()
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
			cpu := (nettest.CPUSeconds() - cpu0) / float64(b.N)
			b.ReportMetric(cpu, "cpu-s/op")
			b.ReportMetric(float64(c.n)/cpu, "values/cpu-s")
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

// BenchmarkKeySwitchPrimes times the server's polynomial alone (one
// ciphertext, one goroutine, no conversion) on the chains Elementwise15
// was chosen from: N = 2^15, the mask primes, as many 36-bit levels as the
// HE standard's 881 bits leave beside two, three or four key-switching
// primes, and Elementwise14 for reference. Sentiment-tiny's GELU of degree
// 127 and 63 (folded and split) and spam-mini's 1/x (degree 127 and one
// Newton step, unfolded), each at the input level a call uses:
//
//	go test -p 1 -run '^$' -bench '^BenchmarkKeySwitchPrimes$' -benchtime 4x ./mpcbridge/elementwise
func BenchmarkKeySwitchPrimes(b *testing.B) {
	trained, spam := trainedRegistry(b), spamMiniRegistry(b)
	for _, c := range []struct {
		name string
		logN int
		logQ []int
		logP []int
	}{
		{"elementwise14", 14, append([]int{52, 51}, repeat(36, 7)...), []int{41, 41}},
		{"p=2x47", 15, append([]int{52, 51}, repeat(36, 19)...), []int{47, 47}},
		{"p=3x43", 15, append([]int{52, 51}, repeat(36, 18)...), []int{43, 43, 43}},
		{"p=4x41", 15, append([]int{52, 51}, repeat(36, 17)...), []int{41, 41, 41, 41}},
	} {
		b.Run(c.name, func(b *testing.B) {
			params, err := hefloat.NewParametersFromLiteral(hefloat.ParametersLiteral{
				LogN: c.logN, LogQ: c.logQ, LogP: c.logP, LogDefaultScale: 36,
				RingType: ring.ConjugateInvariant, Xs: rlwe.DefaultXs, Xe: rlwe.DefaultXe,
			})
			if err != nil {
				b.Fatal(err)
			}
			kgen := rlwe.NewKeyGenerator(params)
			sk := kgen.GenSecretKeyNew()
			evk := rlwe.NewMemEvaluationKeySet(kgen.GenRelinearizationKeyNew(sk))
			eval := hefloat.NewEvaluator(params, evk)
			enc := hefloat.NewEncoder(params)
			for _, f := range []struct {
				name string
				reg  *approx.Registry
				fn   approx.Func
			}{{"gelu-high", trained, approx.GELU}, {"gelu-low", trained, approx.GELU}, {"spam-reciprocal-high", spam, approx.Reciprocal}} {
				d := approx.High
				if f.name == "gelu-low" {
					d = approx.Low
				}
				b.Run(f.name, func(b *testing.B) {
					// The plan and depth as Server.Poly computes them, on
					// these parameters with the mask level 1.
					p := Parameters{params: params, maskLevel: 1}
					rec := f.reg.Recipe(f.fn, d)
					pl := p.plan(rec)
					level := p.maskLevel + p.PolyDepth(rec)
					if level > params.MaxLevel() {
						b.Skipf("needs level %d, the chain has %d", level, params.MaxLevel())
					}
					ev, err := ckks.NewEvaluator(params, evk, f.reg, 1)
					if err != nil {
						b.Fatal(err)
					}
					w := &serverWorker{poly: ev, eval: eval, pe: hefloat.NewPolynomialEvaluator(params, eval)}
					lo, hi := f.reg.Interval(f.fn)
					r := rand.New(rand.NewPCG(55, 56))
					x, in := make([]float64, params.MaxSlots()), make([]float64, params.MaxSlots())
					for i := range x {
						x[i] = lo + (hi-lo)*r.Float64()
						in[i] = x[i]
						if pl.fold {
							in[i] = pl.scalar * x[i] // t less the constant the server adds
						}
					}
					pt := hefloat.NewPlaintext(params, level)
					if err := enc.Encode(in, pt); err != nil {
						b.Fatal(err)
					}
					ct, err := rlwe.NewEncryptor(params, sk).EncryptNew(pt)
					if err != nil {
						b.Fatal(err)
					}
					var out *rlwe.Ciphertext
					best := math.Inf(1)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						in := ct.CopyNew()
						cpu0 := nettest.CPUSeconds()
						if out, err = w.evalPlan(bg(), pl, d, in); err != nil {
							b.Fatal(err)
						}
						best = min(best, nettest.CPUSeconds()-cpu0)
					}
					b.StopTimer()
					got := make([]float64, len(x))
					if err := enc.Decode(rlwe.NewDecryptor(params, sk).DecryptNew(out), got); err != nil {
						b.Fatal(err)
					}
					var worst float64
					for i := range x {
						worst = max(worst, math.Abs(got[i]-f.reg.Eval(f.fn, d, x[i])))
					}
					if worst > tolerance {
						b.Fatalf("max |error| %g against the recipe", worst)
					}
					b.ReportMetric(best, "best-cpu-s/ct")
					b.ReportMetric(float64(len(x))/best, "values/cpu-s")
					b.ReportMetric(float64(level), "input-level")
					b.ReportMetric(params.LogQP(), "logQP")
					b.ReportMetric(worst, "max-err")
				})
			}
		})
	}
}
