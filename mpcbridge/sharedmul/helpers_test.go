package sharedmul

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"go.uber.org/goleak"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func bg() context.Context { return context.Background() }

// testLiteral bounds both operands by 2^4, as for Q and K.
var testLiteral = ParametersLiteral{LogBoundX: 4, LogBoundY: 4}

// testContext holds a ring, the protocol parameters and a key pair.
type testContext struct {
	p  Parameters
	sk *rlwe.SecretKey
	pk *rlwe.PublicKey
}

var (
	tcOnce sync.Once
	tcVal  *testContext
	tcErr  error
)

// newTestContext returns testLiteral on polymat.N13 (the package's ring)
// with one key pair, shared by the tests.
func newTestContext(tb testing.TB) *testContext {
	tb.Helper()
	tcOnce.Do(func() {
		rp, err := polymat.NewParametersFromLiteral(polymat.N13)
		if err != nil {
			tcErr = err
			return
		}
		p, err := NewParameters(rp, testLiteral)
		if err != nil {
			tcErr = err
			return
		}
		sk, pk := rlwe.NewKeyGenerator(rp.RLWE()).GenKeyPairNew()
		tcVal = &testContext{p: p, sk: sk, pk: pk}
	})
	if tcErr != nil {
		tb.Fatal(tcErr)
	}
	return tcVal
}

// connPair returns the server's and the client's wire.Conn over transport.
func connPair(tb testing.TB, transport string) (srv, cli *wire.Conn) {
	tb.Helper()
	return nettest.WireConns(tb, transport, "sharedmul-test", true)
}

// fixed returns round(2^F·v) for real values v uniform in (-2^b, 2^b).
func fixed(r *rand.Rand, n, f int, b float64) share.Vector {
	v := make(share.Vector, n)
	for i := range v {
		v[i] = share.Int128FromInt64(int64(math.Round(math.Ldexp((2*r.Float64()-1)*math.Exp2(b), f))))
	}
	return v
}

// split returns statistically masked integer shares (a, b) of v, b uniform
// in [-2^bits, 2^bits).
func split(r *rand.Rand, v share.Vector, bits int) (a, b share.Vector) {
	a, b = make(share.Vector, len(v)), make(share.Vector, len(v))
	off := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	for i := range v {
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

// want returns round(Σ_k X[r,k]·Y[k,c] / 2^F) exactly for the integer
// matrices X (Rows x In) and Y (In x Out).
func want(d polymat.Dims, f int, x, y share.Vector) []*big.Int {
	out := make([]*big.Int, d.Rows*d.Out)
	t := new(big.Int)
	for r := 0; r < d.Rows; r++ {
		for c := 0; c < d.Out; c++ {
			s := new(big.Int)
			for k := 0; k < d.In; k++ {
				s.Add(s, t.Mul(x[r*d.In+k].Big(nil), y[k*d.Out+c].Big(nil)))
			}
			s.Add(s, new(big.Int).Lsh(big.NewInt(1), uint(f-1)))
			out[r*d.Out+c] = s.Rsh(s, uint(f))
		}
	}
	return out
}

// wantBatch returns want of every product of lay, laid out as Mul returns
// them (Rows x Count·Out): x is Rows x Count·In, y the Count right
// operands one after the other.
func wantBatch(lay Layout, f int, x, y share.Vector) []*big.Int {
	d := lay.Per
	out := make([]*big.Int, d.Rows*lay.Count*d.Out)
	for h := 0; h < lay.Count; h++ {
		xh := make(share.Vector, 0, d.Rows*d.In)
		for r := 0; r < d.Rows; r++ {
			xh = append(xh, x[r*lay.In+h*d.In:r*lay.In+(h+1)*d.In]...)
		}
		zh := want(d, f, xh, y[h*d.In*d.Out:(h+1)*d.In*d.Out])
		for r := 0; r < d.Rows; r++ {
			copy(out[r*lay.Out+h*d.Out:], zh[r*d.Out:(r+1)*d.Out])
		}
	}
	return out
}

// run runs one product between a fresh client and srv (nil: a fresh
// server) over transport, each party with its shares of both operands;
// the bytes sent are those of the product (the handshake's excluded).
func (tc *testContext) run(tb testing.TB, transport string, srv *Server, lay Layout, xc, yc, xs, ys share.Vector, workers int) (a, b share.Vector, cs, ss wire.Stats) {
	tb.Helper()
	sc, cc := connPair(tb, transport)
	cli, err := NewClient(tc.p, tc.sk, workers, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if srv == nil {
		if srv, err = NewServer(tc.p, tc.pk, workers, nil); err != nil {
			tb.Fatal(err)
		}
	}
	cs0, ss0 := cc.Stats(), sc.Stats()
	serr, cerr := nettest.Both(func() error {
		var err error
		b, err = srv.Mul(bg(), sc, lay, xs, ys)
		return err
	}, func() error {
		var err error
		a, err = cli.Mul(bg(), cc, lay, xc, yc)
		return err
	})
	if err := errors.Join(serr, cerr); err != nil {
		tb.Fatal(err)
	}
	cs, ss = cc.Stats(), sc.Stats()
	cs.BytesSent -= cs0.BytesSent
	ss.BytesSent -= ss0.BytesSent
	return a, b, cs, ss
}
