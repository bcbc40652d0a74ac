package elementwise

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// tolerance is the error allowed beyond the recipe's own: 2^-10.
var tolerance = math.Ldexp(1, -10)

// inputRange returns the recipe's interval shrunk by 1% at each end.
func inputRange(reg *approx.Registry, fn approx.Func) (lo, hi float64) {
	a, b := reg.Interval(fn)
	m := (b - a) / 100
	if fn == approx.Reciprocal || fn == approx.InvSqrt {
		m = min(m, a/10)
	}
	return a + m, b - m
}

// checkClose compares got with the recipe (within tolerance) and the exact
// function (within the recipe's own error plus tolerance), each scaled by
// the factor xs[i] (nil: 1).
func checkClose(t *testing.T, rec *approx.Recipe, in, xs, got []float64) {
	t.Helper()
	var worstRec, worstExact float64
	for i, v := range in {
		f := 1.0
		if xs != nil {
			f = xs[i]
		}
		wantRec := f * rec.Eval(v)
		wantExact := f * rec.Func().Exact(v)
		dr, de := math.Abs(got[i]-wantRec), math.Abs(got[i]-wantExact)
		worstRec, worstExact = max(worstRec, dr), max(worstExact, de/max(1, math.Abs(f)))
		if dr > tolerance*max(1, math.Abs(f)) {
			t.Fatalf("value %d: %s(%g)·%g = %g, recipe %g (error %.3g)", i, rec.Func(), v, f, got[i], wantRec, dr)
		}
		if de > (rec.Stats().MaxAbsErr+tolerance)*max(1, math.Abs(f)) {
			t.Fatalf("value %d: %s(%g)·%g = %g, exact %g (error %.3g, recipe's own %.3g)", i, rec.Func(), v, f, got[i], wantExact, de, rec.Stats().MaxAbsErr)
		}
	}
	t.Logf("max error %.3g against the recipe, %.3g against %s (recipe's own %.3g)", worstRec, worstExact, rec.Func(), rec.Stats().MaxAbsErr)
}

// testSizes are 1 value, a partial ciphertext, and three ciphertexts (the
// last partial) in two messages, at InsecureElementwise11's 2048 slots
// (five at InsecureTest11's 1024).
var testSizes = []int{1, 1000, 2*2048 + 77}

// TestPoly evaluates every function of the trained registry, both
// variants where they differ, on shared inputs of several sizes, over
// loopback TCP, on the default chain (conjugate-invariant ring) and on a
// standard-ring preset.
func TestPoly(t *testing.T) {
	for _, lit := range []ParametersLiteral{testLiteral, stdLiteral} {
		t.Run(lit.Preset, func(t *testing.T) { testPoly(t, lit) })
	}
}

func testPoly(t *testing.T, lit ParametersLiteral) {
	tc := newTestContext(t, lit)
	reg := trainedRegistry(t)
	type fd struct {
		fn  approx.Func
		deg approx.Degree
	}
	cases := []fd{{approx.GELU, approx.High}, {approx.GELU, approx.Low}, {approx.Exp, approx.High}, {approx.Reciprocal, approx.High}, {approx.InvSqrt, approx.High}, {approx.Tanh, approx.High}}
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		for _, n := range testSizes {
			t.Run(fmt.Sprintf("%s/%s/n=%d", c.fn, c.deg, n), func(t *testing.T) {
				sc, cc := connPair(t, "tcp")
				lo, hi := inputRange(reg, c.fn)
				x := uniform(r, n, lo, hi)
				x[0] = lo // the ends of the interval
				if n > 1 {
					x[n-1] = hi
				}
				res, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: c.fn, deg: c.deg, x: x})
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, reg.Recipe(c.fn, c.deg), quantized(tc.p, x), nil, res.got)
			})
		}
	}
}

// TestMul multiplies two shared vectors.
func TestMul(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range testSizes {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			sc, cc := connPair(t, "pipe")
			x, y := uniform(r, n, -8, 8), uniform(r, n, -8, 8)
			res, err := tc.run(t, nil, sc, cc, r, call{op: opMul, x: x, y: y})
			if err != nil {
				t.Fatal(err)
			}
			xq, yq := quantized(tc.p, x), quantized(tc.p, y)
			var worst float64
			for i := range xq {
				d := math.Abs(res.got[i] - xq[i]*yq[i])
				worst = max(worst, d)
				if d > tolerance {
					t.Fatalf("value %d: %g·%g = %g, want %g", i, xq[i], yq[i], res.got[i], xq[i]*yq[i])
				}
			}
			t.Logf("max error %.3g", worst)
		})
	}
}

// TestSquare squares a shared vector (LayerNorm's (x - mean)²): one
// operand on the way up.
func TestSquare(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range testSizes {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			sc, cc := connPair(t, "pipe")
			x := uniform(r, n, -16, 16)
			res, err := tc.run(t, nil, sc, cc, r, call{op: opSquare, x: x})
			if err != nil {
				t.Fatal(err)
			}
			xq := quantized(tc.p, x)
			var worst float64
			for i := range xq {
				d := math.Abs(res.got[i] - xq[i]*xq[i])
				worst = max(worst, d)
				if d > tolerance {
					t.Fatalf("value %d: %g² = %g, want %g", i, xq[i], res.got[i], xq[i]*xq[i])
				}
			}
			t.Logf("max error %.3g", worst)
		})
	}
}

// TestMulScaled computes w ⊙ x ⊙ y with the server's plaintext w
// (LayerNorm's γ·z·(1/σ)), and refuses weights beyond 2^B.
func TestMulScaled(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range testSizes {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			x, y, w := uniform(r, n, -8, 8), uniform(r, n, 0.2, 2.5), uniform(r, n, -3, 3)
			res, err := tc.run(t, nil, sc, cc, r, call{op: opMulScaled, x: x, y: y, w: w})
			if err != nil {
				t.Fatal(err)
			}
			xq, yq := quantized(tc.p, x), quantized(tc.p, y)
			var worst float64
			for i := range xq {
				want := w[i] * xq[i] * yq[i]
				d := math.Abs(res.got[i] - want)
				worst = max(worst, d)
				if d > tolerance {
					t.Fatalf("value %d: %g·%g·%g = %g, want %g", i, w[i], xq[i], yq[i], res.got[i], want)
				}
			}
			t.Logf("max error %.3g", worst)
		})
	}
	t.Run("refused", func(t *testing.T) {
		srv, err := NewServer(tc.p, tc.pk, tc.rlk, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		x := make(share.Vector, 4)
		for _, w := range [][]float64{{1, 2, 3}, {1, 2, 3, 1e6}, {1, math.NaN(), 0, 0}} {
			if _, err := srv.MulScaled(bg(), nil, w, x, x); err == nil {
				t.Errorf("weights %v accepted", w)
			}
		}
	})
}

// TestMulPoly computes x ⊙ fn(y) with one conversion each way: LayerNorm's
// x·(1/√v), and exp (softmax's 1/Σ does not fit: the trained reciprocal
// takes 8 levels, the product a ninth, above the mask's 2).
func TestMulPoly(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	r := rand.New(rand.NewPCG(5, 6))
	for _, fn := range []approx.Func{approx.InvSqrt, approx.Exp} {
		for _, n := range testSizes {
			t.Run(fmt.Sprintf("%s/n=%d", fn, n), func(t *testing.T) {
				sc, cc := connPair(t, "tcp")
				lo, hi := inputRange(reg, fn)
				x, y := uniform(r, n, -4, 4), uniform(r, n, lo, hi)
				res, err := tc.run(t, reg, sc, cc, r, call{op: opMulPoly, fn: fn, deg: approx.High, x: x, y: y})
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, reg.Recipe(fn, approx.High), quantized(tc.p, y), quantized(tc.p, x), res.got)
			})
		}
	}
}

// TestPolyDeep runs spam-mini's recipes on InsecureElementwise11Deep
// (Elementwise15's chain): its 1/x (degree 127 and one Newton step,
// evaluated unfolded at 10 levels above the mask) on every test size, the
// softmax's product e^s·(1/Σ) with it (MulPoly, one level more), and the
// other functions on one size.
func TestPolyDeep(t *testing.T) {
	tc := newTestContext(t, deepLiteral)
	reg := spamMiniRegistry(t)
	r := rand.New(rand.NewPCG(11, 12))
	lo, hi := inputRange(reg, approx.Reciprocal)
	for _, n := range testSizes {
		t.Run(fmt.Sprintf("reciprocal/high/n=%d", n), func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			x := uniform(r, n, lo, hi)
			x[0] = lo
			if n > 1 {
				x[n-1] = hi
			}
			res, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: approx.Reciprocal, deg: approx.High, x: x})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, reg.Recipe(approx.Reciprocal, approx.High), quantized(tc.p, x), nil, res.got)
		})
	}
	t.Run("mulpoly/reciprocal/high/n=1000", func(t *testing.T) {
		sc, cc := connPair(t, "tcp")
		x, y := uniform(r, 1000, 0, 4), uniform(r, 1000, lo, hi)
		res, err := tc.run(t, reg, sc, cc, r, call{op: opMulPoly, fn: approx.Reciprocal, deg: approx.High, x: x, y: y})
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, reg.Recipe(approx.Reciprocal, approx.High), quantized(tc.p, y), quantized(tc.p, x), res.got)
	})
	for _, fn := range []approx.Func{approx.GELU, approx.Exp, approx.InvSqrt, approx.Tanh} {
		if reg.Recipe(fn, approx.High).PolyDegree() < 1 {
			continue
		}
		t.Run(fmt.Sprintf("%s/high/n=1000", fn), func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			flo, fhi := inputRange(reg, fn)
			x := uniform(r, 1000, flo, fhi)
			res, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: fn, deg: approx.High, x: x})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, reg.Recipe(fn, approx.High), quantized(tc.p, x), nil, res.got)
		})
	}
}

// TestChain feeds the output shares of one call into the next (LayerNorm's
// 1/√v, then the product with x): the conversions' own shares (about 87
// bits) are accepted as inputs.
func TestChain(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	r := rand.New(rand.NewPCG(7, 8))
	const n = 1500
	lo, hi := inputRange(reg, approx.InvSqrt)
	v, x := uniform(r, n, lo, hi), uniform(r, n, -4, 4)
	sc, cc := connPair(t, "tcp")
	first, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: approx.InvSqrt, deg: approx.High, x: v})
	if err != nil {
		t.Fatal(err)
	}
	maxBits := 0
	for i := range first.client {
		maxBits = max(maxBits, first.client[i].BitLen(), first.server[i].BitLen())
	}
	t.Logf("output shares of up to %d bits", maxBits)
	xa, xb := splitShares(r, fixed(tc.p, x), 82)
	srv, cli := polysParties(t, tc, reg)
	var sh, ch share.Vector
	serr, cerr := nettest.Both(func() error {
		var err error
		sh, err = srv.Mul(bg(), sc, xb, first.server)
		return err
	}, func() error {
		var err error
		ch, err = cli.Mul(bg(), cc, xa, first.client)
		return err
	})
	if err := errors.Join(serr, cerr); err != nil {
		t.Fatal(err)
	}
	got, err := share.Reconstruct(tc.p.Share(), ch, sh)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, reg.Recipe(approx.InvSqrt, approx.High), quantized(tc.p, v), quantized(tc.p, x), got)
}

// TestSecurePreset runs GELU and a product at Interactive14 (8192 slots)
// on 8193 values: two ciphertexts, the second holding one value.
func TestSecurePreset(t *testing.T) {
	if testing.Short() {
		t.Skip("key generation and N = 2^14 evaluation take tens of seconds")
	}
	tc := newTestContext(t, ParametersLiteral{Preset: ckks.Interactive14})
	reg := trainedRegistry(t)
	r := rand.New(rand.NewPCG(9, 10))
	n := tc.p.Slots() + 1
	sc, cc := connPair(t, "tcp")
	lo, hi := inputRange(reg, approx.GELU)
	x := uniform(r, n, lo, hi)
	res, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: approx.GELU, deg: approx.High, x: x})
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, reg.Recipe(approx.GELU, approx.High), quantized(tc.p, x), nil, res.got)
}

// TestSecurePresetDeep runs spam-mini's 1/x (10 levels above the mask)
// at Elementwise15 (32768 slots) on 32769 values: two ciphertexts, the
// second holding one value.
func TestSecurePresetDeep(t *testing.T) {
	if testing.Short() {
		t.Skip("key generation and N = 2^15 evaluation take seconds")
	}
	tc := newTestContext(t, ParametersLiteral{Preset: Elementwise15})
	reg := spamMiniRegistry(t)
	r := rand.New(rand.NewPCG(13, 14))
	n := tc.p.Slots() + 1
	sc, cc := connPair(t, "tcp")
	lo, hi := inputRange(reg, approx.Reciprocal)
	x := uniform(r, n, lo, hi)
	res, err := tc.run(t, reg, sc, cc, r, call{op: opPoly, fn: approx.Reciprocal, deg: approx.High, x: x})
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, reg.Recipe(approx.Reciprocal, approx.High), quantized(tc.p, x), nil, res.got)
}

// TestCancel ends each party's call through its context while it waits
// for a peer that says nothing: the call returns the context's error and
// leaves no goroutine behind.
func TestCancel(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	r := rand.New(rand.NewPCG(11, 12))
	x := fixed(tc.p, uniform(r, 3000, -1, 1))
	srv, cli := polysParties(t, tc, reg)
	before := runtime.NumGoroutine()
	for _, c := range []struct {
		name string
		run  func(ctx context.Context, sc, cc Conn) error
	}{
		{"server", func(ctx context.Context, sc, _ Conn) error {
			_, err := srv.Poly(ctx, sc, approx.GELU, approx.High, x)
			return err
		}},
		{"client", func(ctx context.Context, _, cc Conn) error {
			l, _ := srv.PolyLevel(approx.GELU, approx.High)
			_, err := cli.Poly(ctx, cc, l, x)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			ctx, cancel := context.WithTimeout(bg(), 300*time.Millisecond)
			defer cancel()
			err := c.run(ctx, sc, cc)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want the context's", err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}
