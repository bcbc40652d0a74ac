package elementwise

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

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

func bg() context.Context { return context.Background() }

// testContext is one preset's parameters and a key set.
type testContext struct {
	p   Parameters
	sk  *rlwe.SecretKey
	pk  *rlwe.PublicKey
	rlk *rlwe.RelinearizationKey
}

var (
	tcMu    sync.Mutex
	tcCache = map[string]*testContext{}
)

// newTestContext returns the context of lit (cached: key generation at
// N = 2^14 takes seconds). Tests run on InsecureElementwise11 (the default
// preset's modulus chain in N = 2^11: the same levels, scales and mask
// widths, 2048 slots) unless they name another preset.
func newTestContext(tb testing.TB, lit ParametersLiteral) *testContext {
	tb.Helper()
	key := fmt.Sprintf("%+v", lit)
	tcMu.Lock()
	defer tcMu.Unlock()
	if tc, ok := tcCache[key]; ok {
		return tc
	}
	p, err := NewParameters(lit)
	if err != nil {
		tb.Fatal(err)
	}
	kgen := rlwe.NewKeyGenerator(p.Params())
	sk, pk := kgen.GenKeyPairNew()
	tc := &testContext{p: p, sk: sk, pk: pk, rlk: kgen.GenRelinearizationKeyNew(sk)}
	tcCache[key] = tc
	return tc
}

// testLiteral is the literal of most tests: the default preset's chain in
// N = 2^11 (2048 real slots).
var testLiteral = ParametersLiteral{Preset: InsecureElementwise11, AllowInsecure: true, Chunk: 2}

// stdLiteral is a standard-ring preset (ckks.Interactive14's chain in
// N = 2^11, 1024 complex slots), which the package also supports.
var stdLiteral = ParametersLiteral{Preset: ckks.InsecureTest11, AllowInsecure: true, Chunk: 2}

// trainedRegistry is sentiment-tiny's calibrated registry: every recipe
// fits Interactive14's levels (the deepest, GELU high and 1/x, use 8).
func trainedRegistry(tb testing.TB) *approx.Registry {
	tb.Helper()
	lit, err := models.LoadApproxSettings("../../models/trained/sentiment-tiny")
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

// spamMiniRegistry is spam-mini's calibrated registry, loaded as the
// engine loads it (models.LoadApproxSettings, models.NewApproximate): its
// 1/x (degree 127 and one Newton step, not folded) needs 10 levels above
// the mask level, more than Elementwise14's 7.
func spamMiniRegistry(tb testing.TB) *approx.Registry {
	tb.Helper()
	lit, err := models.LoadApproxSettings("../../models/trained/spam-mini")
	if err != nil {
		tb.Fatal(err)
	}
	a, err := models.NewApproximate(lit)
	if err != nil {
		tb.Fatal(err)
	}
	return a.Registry()
}

// deepLiteral is the literal of the deep recipes' tests: Elementwise15's
// chain in N = 2^11 (2048 real slots).
var deepLiteral = ParametersLiteral{Preset: InsecureElementwise11Deep, AllowInsecure: true, Chunk: 2}

// connPair returns the server's and the client's wire.Conn over net.Pipe
// or loopback TCP, handshaken; both close when the test ends.
func connPair(tb testing.TB, transport string) (srv, cli *wire.Conn) {
	tb.Helper()
	return nettest.WireConns(tb, transport, "elementwise-test", true)
}

// fixed returns round(2^F·x).
func fixed(p Parameters, x []float64) share.Vector {
	out := make(share.Vector, len(x))
	for i, v := range x {
		out[i] = share.Int128FromInt64(int64(math.Round(math.Ldexp(v, p.FracBits()))))
	}
	return out
}

// quantized returns round(2^F·x)/2^F: the values the shares hold.
func quantized(p Parameters, x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Ldexp(math.Round(math.Ldexp(v, p.FracBits())), -p.FracBits())
	}
	return out
}

// splitShares returns integer shares (a, b) of v with b uniform in
// [-2^bits, 2^bits), as a conversion's statistically masked shares.
func splitShares(r *rand.Rand, v share.Vector, bits int) (a, b share.Vector) {
	a, b = make(share.Vector, len(v)), make(share.Vector, len(v))
	for i := range v {
		m := new(big.Int).SetUint64(r.Uint64())
		m.Lsh(m, 64).Or(m, new(big.Int).SetUint64(r.Uint64()))
		m.Rsh(m, uint(127-bits)) // bits+1 random bits
		m.Sub(m, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		bi, ok := share.Int128FromBig(m)
		if !ok {
			panic("share out of range")
		}
		b[i] = bi
		a[i] = v[i].Sub(bi)
	}
	return a, b
}

// uniform returns n values uniform in [lo, hi].
func uniform(r *rand.Rand, n int, lo, hi float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*r.Float64()
	}
	return x
}

// call runs one operation between a fresh server and client over conns,
// the inputs split into random integer shares of shareBits bits, and
// returns the reconstructed outputs and both shares.
type call struct {
	op        op
	fn        approx.Func
	deg       approx.Degree
	x, y      []float64
	w         []float64 // MulScaled's server weights
	shareBits int
}

type result struct {
	got            []float64
	client, server share.Vector
}

func (tc *testContext) run(tb testing.TB, reg *approx.Registry, sc, cc Conn, r *rand.Rand, c call) (result, error) {
	tb.Helper()
	srv, err := NewServer(tc.p, tc.pk, tc.rlk, reg, 2)
	if err != nil {
		tb.Fatal(err)
	}
	cli, err := NewClient(tc.p, tc.sk, 2)
	if err != nil {
		tb.Fatal(err)
	}
	bits := c.shareBits
	if bits == 0 {
		bits = 82
	}
	xa, xb := splitShares(r, fixed(tc.p, c.x), bits)
	var ya, yb share.Vector
	if c.y != nil {
		ya, yb = splitShares(r, fixed(tc.p, c.y), bits)
	}
	var res result
	serr, cerr := nettest.Both(func() error {
		var err error
		switch c.op {
		case opPoly:
			res.server, err = srv.Poly(bg(), sc, c.fn, c.deg, xb)
		case opMul:
			res.server, err = srv.Mul(bg(), sc, xb, yb)
		case opMulPoly:
			res.server, err = srv.MulPoly(bg(), sc, c.fn, c.deg, xb, yb)
		case opSquare:
			res.server, err = srv.Square(bg(), sc, xb)
		case opMulScaled:
			res.server, err = srv.MulScaled(bg(), sc, c.w, xb, yb)
		}
		return err
	}, func() error {
		var err error
		switch c.op {
		case opPoly:
			var l int
			if l, err = srv.PolyLevel(c.fn, c.deg); err == nil {
				res.client, err = cli.Poly(bg(), cc, l, xa)
			}
		case opMul:
			res.client, err = cli.Mul(bg(), cc, xa, ya)
		case opMulPoly:
			var l int
			if l, err = srv.MulPolyLevel(c.fn, c.deg); err == nil {
				res.client, err = cli.MulPoly(bg(), cc, l, xa, ya)
			}
		case opSquare:
			res.client, err = cli.Square(bg(), cc, xa)
		case opMulScaled:
			res.client, err = cli.MulScaled(bg(), cc, xa, ya)
		}
		return err
	})
	if err := errors.Join(serr, cerr); err != nil {
		return res, err
	}
	got, err := share.Reconstruct(tc.p.Share(), res.client, res.server)
	if err != nil {
		tb.Fatal(err)
	}
	res.got = got
	return res, nil
}

// recConn records the payloads one party sends.
type recConn struct {
	Conn
	mu   sync.Mutex
	sent map[wire.Type][][]byte
}

func record(c Conn) *recConn { return &recConn{Conn: c, sent: map[wire.Type][][]byte{}} }

func (r *recConn) Send(ctx context.Context, t wire.Type, p []byte) error {
	r.mu.Lock()
	r.sent[t] = append(r.sent[t], append([]byte(nil), p...))
	r.mu.Unlock()
	return r.Conn.Send(ctx, t, p)
}

// replayConn feeds recorded payloads to one party and records what it
// sends; Recv fails once the recording is exhausted.
type replayConn struct {
	mu   sync.Mutex
	in   map[wire.Type][][]byte
	sent map[wire.Type][][]byte
}

func replay(in map[wire.Type][][]byte) *replayConn {
	cp := map[wire.Type][][]byte{}
	for t, ps := range in {
		for _, p := range ps {
			cp[t] = append(cp[t], append([]byte(nil), p...))
		}
	}
	return &replayConn{in: cp, sent: map[wire.Type][][]byte{}}
}

func (r *replayConn) Send(_ context.Context, t wire.Type, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[t] = append(r.sent[t], append([]byte(nil), p...))
	return nil
}

func (r *replayConn) Recv(ctx context.Context, t wire.Type) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(r.in[t]) == 0 {
		return nil, fmt.Errorf("replay: no %#04x left", uint16(t))
	}
	p := r.in[t][0]
	r.in[t] = r.in[t][1:]
	return p, nil
}

// one returns the header of a one-group call: op on n values, operands at
// levels, ciphertexts [first, first+count).
func one(o op, n, first, count int, levels ...int) header {
	return header{op: o, groups: []group{{values: n, levels: levels}}, first: first, count: count}
}
