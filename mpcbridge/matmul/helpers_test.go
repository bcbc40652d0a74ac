package matmul

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// testContext holds a ring, protocol parameters and a key pair.
type testContext struct {
	ring polymat.Parameters
	p    Parameters
	sk   *rlwe.SecretKey
	pk   *rlwe.PublicKey
}

var (
	tcMu    sync.Mutex
	tcCache = map[string]*testContext{}
	keyMu   sync.Mutex
	keys    = map[int][2]any{}
)

// testLiteral is the protocol literal of most tests: inputs within 2^3,
// outputs within 2^8, and 10 guard bits, so that the encryption noise
// times the tests' large random weights stays below half an output unit
// and the shares sum to the exact product within ±2.
var testLiteral = ParametersLiteral{LogBound: 3, LogBoundOut: 8, GuardBits: 10}

// benchLiteral is the literal of the benchmark: the defaults, for inputs
// within 2^3 and BERT-like weights (N(0, 0.03²) at In = 768).
var benchLiteral = ParametersLiteral{LogBound: 3, LogBoundOut: 8}

func newTestContext(tb testing.TB, ringLit polymat.ParametersLiteral, lit ParametersLiteral) *testContext {
	tb.Helper()
	key := fmt.Sprintf("%d/%+v", ringLit.LogN, lit)
	tcMu.Lock()
	defer tcMu.Unlock()
	if tc, ok := tcCache[key]; ok {
		return tc
	}
	ring, err := polymat.NewParametersFromLiteral(ringLit)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewParameters(ring, lit)
	if err != nil {
		tb.Fatal(err)
	}
	keyMu.Lock()
	kp, ok := keys[ring.LogN()]
	if !ok {
		sk, pk := rlwe.NewKeyGenerator(ring.RLWE()).GenKeyPairNew()
		kp = [2]any{sk, pk}
		keys[ring.LogN()] = kp
	}
	keyMu.Unlock()
	tc := &testContext{ring: ring, p: p, sk: kp[0].(*rlwe.SecretKey), pk: kp[1].(*rlwe.PublicKey)}
	tcCache[key] = tc
	return tc
}

func bg() context.Context { return context.Background() }

// connPair returns the server's and the client's wire.Conn over net.Pipe
// or loopback TCP; both are closed when the test ends.
func connPair(tb testing.TB, transport string) (srv, cli *wire.Conn) {
	tb.Helper()
	return nettest.WireConns(tb, transport, "matmul-test", true)
}

// problem is one random product: X (Rows x In, |x| < 2^B), W (In x Out,
// scaled so that the column sums stay within the output bound), a bias.
type problem struct {
	lay      polymat.Layout
	x        []float64
	w        []float64
	bias     []float64
	onTheFly bool // the server's weights are encoded per call
}

func (tc *testContext) newProblem(tb testing.TB, r *rand.Rand, d polymat.Dims, b polymat.Block, withBias bool) *problem {
	tb.Helper()
	if b == (polymat.Block{}) {
		c, err := tc.p.ChooseBlock(d, 0)
		if err != nil {
			tb.Fatal(err)
		}
		b = c.Block
	}
	lay, err := polymat.NewLayout(tc.ring, d, b)
	if err != nil {
		tb.Fatal(err)
	}
	pr := &problem{lay: lay, x: make([]float64, d.Rows*d.In), w: make([]float64, d.In*d.Out)}
	xb := math.Ldexp(1, tc.p.logBound)
	for i := range pr.x {
		pr.x[i] = (2*r.Float64() - 1) * xb * 0.999
	}
	// Uniform weights with Σ_k |w| <= 2^(By-B)·0.9 in every column.
	wb := math.Ldexp(0.9, tc.p.logBoundOut-tc.p.logBound) / float64(d.In)
	for i := range pr.w {
		pr.w[i] = (2*r.Float64() - 1) * wb
	}
	if withBias {
		pr.bias = make([]float64, d.Out)
		for i := range pr.bias {
			pr.bias[i] = 2*r.Float64() - 1
		}
	}
	return pr
}

// fixedX returns round(2^F·x) for every input.
func (tc *testContext) fixedX(pr *problem) share.Vector {
	out := make(share.Vector, len(pr.x))
	for i, v := range pr.x {
		out[i] = share.Int128FromInt64(int64(math.Round(math.Ldexp(v, tc.p.fracBits))))
	}
	return out
}

// splitShares returns random integer shares (a, b) of v with b uniform in
// [-2^bits, 2^bits).
func splitShares(r *rand.Rand, v share.Vector, bits int) (a, b share.Vector) {
	a, b = make(share.Vector, len(v)), make(share.Vector, len(v))
	off := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	for i := range v {
		// bits+1 uniform bits from two words.
		x := new(big.Int).SetUint64(r.Uint64())
		x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(r.Uint64()))
		x.Rsh(x, uint(128-bits-1))
		x.Sub(x, off)
		bi, _ := share.Int128FromBig(x)
		b[i] = bi
		a[i] = v[i].Sub(bi)
	}
	return a, b
}

// want returns round(2^F·(Xq·Wq + bias)) exactly, with Xq the fixed-point
// input (a + b over 2^F) and Wq the quantized weights.
func (tc *testContext) want(pr *problem, x share.Vector) []*big.Int {
	d := pr.lay.Dims
	fw := tc.p.weightFracBits
	wq := make([]*big.Int, len(pr.w))
	for i, v := range pr.w {
		wq[i] = big.NewInt(int64(math.Round(math.Ldexp(v, fw))))
	}
	out := make([]*big.Int, d.Rows*d.Out)
	t := new(big.Int)
	for r := 0; r < d.Rows; r++ {
		for c := 0; c < d.Out; c++ {
			s := new(big.Int)
			for k := 0; k < d.In; k++ {
				s.Add(s, t.Mul(x[r*d.In+k].Big(nil), wq[k*d.Out+c]))
			}
			// round(s / 2^Fw) + round(2^F·bias)
			s.Add(s, new(big.Int).Lsh(big.NewInt(1), uint(fw-1)))
			s.Rsh(s, uint(fw))
			if pr.bias != nil {
				s.Add(s, big.NewInt(int64(math.Round(math.Ldexp(pr.bias[c], tc.p.fracBits)))))
			}
			out[r*d.Out+c] = s
		}
	}
	return out
}

// run runs one product between a fresh client and server over transport;
// xs is the server's input share (nil: the client's x is the whole input).
func (tc *testContext) run(tb testing.TB, transport string, srv *Server, pr *problem, x, xs share.Vector) (a, b share.Vector, cs, ss wire.Stats) {
	tb.Helper()
	sc, cc := connPair(tb, transport)
	cli, err := NewClient(tc.p, tc.sk, 2, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if srv == nil {
		if srv, err = NewServer(tc.p, tc.pk, 2, nil); err != nil {
			tb.Fatal(err)
		}
	}
	var ws *Weights
	if pr.onTheFly {
		ws, err = NewWeightsOnTheFly(tc.p, pr.lay, pr.w, pr.bias)
	} else {
		ws, err = NewWeights(bg(), tc.p, pr.lay, pr.w, pr.bias, 2)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if ws.PreEncoded() == pr.onTheFly {
		tb.Fatalf("PreEncoded %t for a problem on the fly %t", ws.PreEncoded(), pr.onTheFly)
	}
	s0, c0 := sc.Stats(), cc.Stats()
	serr, cerr := nettest.Both(func() error {
		var err error
		b, err = srv.MatMul(bg(), sc, pr.lay, ws, xs)
		return err
	}, func() error {
		var err error
		a, err = cli.MatMul(bg(), cc, pr.lay, x)
		return err
	})
	if err := errors.Join(serr, cerr); err != nil {
		tb.Fatal(err)
	}
	return a, b, cc.Stats().Sub(c0), sc.Stats().Sub(s0)
}

// checkShares checks |a + b - want| <= 2 everywhere and returns the
// largest deviation.
func checkShares(tb testing.TB, a, b share.Vector, want []*big.Int) int64 {
	tb.Helper()
	if len(a) != len(want) || len(b) != len(want) {
		tb.Fatalf("shares of lengths %d and %d, want %d", len(a), len(b), len(want))
	}
	var worst int64
	d := new(big.Int)
	for i := range want {
		d.Sub(a[i].Add(b[i]).Big(nil), want[i])
		if !d.IsInt64() || d.Int64() > 2 || d.Int64() < -2 {
			tb.Fatalf("entry %d: shares sum to %v, want %v", i, a[i].Add(b[i]).Big(nil), want[i])
		}
		worst = max(worst, d.Int64(), -d.Int64())
	}
	return worst
}

func roundLdexp(v float64, e int) float64 { return math.Round(math.Ldexp(v, e)) }

func abs64(v int64) int64 { return max(v, -v) }

func log2(v float64) float64 { return math.Log2(v) }
