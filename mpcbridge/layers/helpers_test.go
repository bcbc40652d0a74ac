package layers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

func bg() context.Context { return context.Background() }

const tinyDir = "../../models/trained/sentiment-tiny"

// testContext is one parameter set with the client's keys.
type testContext struct {
	p    Parameters
	cp   Parameters // the client's: the server's levels, no registry
	skey ServerKeys
	ckey ClientKeys
}

var (
	tcMu    sync.Mutex
	tcCache = map[string]*testContext{}
)

// newTestContext returns the context of lit and reg (cached: key
// generation at N = 2^14 takes seconds).
func newTestContext(tb testing.TB, lit ParametersLiteral, reg *approx.Registry) *testContext {
	tb.Helper()
	key := fmt.Sprintf("%+v/%p", lit, reg)
	tcMu.Lock()
	defer tcMu.Unlock()
	if tc, ok := tcCache[key]; ok {
		return tc
	}
	p, err := NewParameters(lit, reg)
	if err != nil {
		tb.Fatal(err)
	}
	kgen := rlwe.NewKeyGenerator(p.Elementwise().Params())
	sk, pk := kgen.GenKeyPairNew()
	msk, mpk := rlwe.NewKeyGenerator(p.MatMul().Ring().RLWE()).GenKeyPairNew()
	ssk, spk := rlwe.NewKeyGenerator(p.Scores().Ring().RLWE()).GenKeyPairNew()
	cp, err := NewClientParameters(p.Literal(), p.PolyLevels())
	if err != nil {
		tb.Fatal(err)
	}
	tc := &testContext{
		p:    p,
		cp:   cp,
		skey: ServerKeys{MatMul: mpk, SharedMul: spk, PK: pk, RLK: kgen.GenRelinearizationKeyNew(sk)},
		ckey: ClientKeys{MatMul: msk, SharedMul: ssk, CKKS: sk},
	}
	tcCache[key] = tc
	return tc
}

func (tc *testContext) parties(tb testing.TB, workers int) (*Server, *Client) {
	tb.Helper()
	srv, err := NewServer(tc.p, tc.skey, workers)
	if err != nil {
		tb.Fatal(err)
	}
	cli, err := NewClient(tc.cp, tc.ckey, workers)
	if err != nil {
		tb.Fatal(err)
	}
	return srv, cli
}

// tiny is sentiment-tiny with its calibrated registry and the plaintext
// approximate forward.
type tiny struct {
	model *models.Model
	reg   *approx.Registry
	ap    *models.Approximate
	ids   []int // a golden input's ids
}

var (
	tinyOnce sync.Once
	tinyVal  *tiny
	tinyErr  error
)

func loadTiny(tb testing.TB) *tiny {
	tb.Helper()
	tinyOnce.Do(func() {
		t := &tiny{}
		if t.model, tinyErr = models.Load(tinyDir); tinyErr != nil {
			return
		}
		lit, err := models.LoadApproxSettings(tinyDir)
		if err != nil {
			tinyErr = err
			return
		}
		if t.ap, tinyErr = models.NewApproximate(lit); tinyErr != nil {
			return
		}
		t.reg = t.ap.Registry()
		b, err := os.ReadFile(filepath.Join(tinyDir, "golden.json"))
		if err != nil {
			tinyErr = err
			return
		}
		var g struct {
			Examples []struct {
				InputIDs []int `json:"input_ids"`
			} `json:"examples"`
		}
		if tinyErr = json.Unmarshal(b, &g); tinyErr != nil {
			return
		}
		if len(g.Examples) == 0 {
			tinyErr = errors.New("no golden example")
			return
		}
		t.ids = g.Examples[0].InputIDs
		tinyVal = t
	})
	if tinyErr != nil {
		tb.Fatal(tinyErr)
	}
	return tinyVal
}

// input returns the plaintext approximate forward's input of layer l on
// the first n ids (padding included where the text is shorter), every row
// attended to.
func (t *tiny) input(tb testing.TB, l, n int) models.Matrix {
	tb.Helper()
	x, err := t.model.Client.Embed(t.ids[:n], nil)
	if err != nil {
		tb.Fatal(err)
	}
	s := t.model.Server
	for k := 0; k < l; k++ {
		h, _, err := s.AttentionBlock(k, x, nil, nil, t.ap)
		if err != nil {
			tb.Fatal(err)
		}
		if x, err = s.FeedForwardBlock(k, h, nil, t.ap); err != nil {
			tb.Fatal(err)
		}
	}
	return x
}

// hidden returns the approximate forward's input of layer l's
// feed-forward stage (input's rows).
func (t *tiny) hidden(tb testing.TB, l, n int) models.Matrix {
	tb.Helper()
	h, _, err := t.model.Server.AttentionBlock(l, t.input(tb, l, n), nil, nil, t.ap)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// tinyLiteral returns the literal for sentiment-tiny: products' inputs
// within 2^5 (h and GELU's outputs, at most 17 on its interval), the
// output bound the server derives from the weights of both layers (one
// more bit for the quantization), the elementwise preset, the bounds of
// the scaled queries, keys and values (TestAttention logs the largest
// entries), and the model's softmax shift.
func tinyLiteral(tb testing.TB, t *tiny, preset string) ParametersLiteral {
	tb.Helper()
	const logBound = 5
	by := 0
	srv := t.model.Server
	lins := []*models.Linear{&srv.Pooler, &srv.Classifier}
	for l := range srv.Layers {
		ly := &srv.Layers[l]
		lins = append(lins, &ly.Intermediate, &ly.Output, &ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput)
	}
	for _, l := range lins {
		b, err := LogBoundOut(logBound, transpose(l.Weight), l.In(), l.Out())
		if err != nil {
			tb.Fatal(err)
		}
		by = max(by, b+1)
	}
	return ParametersLiteral{
		MatMul:       matmul.ParametersLiteral{LogBound: logBound, LogBoundOut: by},
		Elementwise:  elementwise.ParametersLiteral{Preset: preset, AllowInsecure: preset != elementwise.Elementwise14, Chunk: 4},
		Scores:       sharedmul.ParametersLiteral{LogBoundX: 3, LogBoundY: 5},
		Context:      sharedmul.ParametersLiteral{LogBoundY: 4},
		SoftmaxShift: t.ap.SoftmaxShift(),
	}
}

// connPair returns the server's and the client's wire.Conn over loopback
// TCP, handshaken; both close when the test ends.
func connPair(tb testing.TB) (srv, cli *wire.Conn) {
	tb.Helper()
	return nettest.WireConns(tb, "tcp", "layers-test", true)
}

// split returns integer shares (client, server) of round(2^F·x), the
// server's uniform in [-2^bits, 2^bits) as a conversion's statistically
// masked shares.
func split(r *rand.Rand, x []float64, f, bits int) (a, b share.Vector) {
	a, b = make(share.Vector, len(x)), make(share.Vector, len(x))
	for i, v := range x {
		m := new(big.Int).SetUint64(r.Uint64())
		m.Lsh(m, 64).Or(m, new(big.Int).SetUint64(r.Uint64()))
		m.Rsh(m, uint(127-bits))
		m.Sub(m, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
		bi, ok := share.Int128FromBig(m)
		if !ok {
			panic("share out of range")
		}
		b[i] = bi
		a[i] = share.Int128FromInt64(int64(math.Round(math.Ldexp(v, f)))).Sub(bi)
	}
	return a, b
}

// quantized returns round(2^F·x)/2^F, the values shares of x hold.
func quantized(m models.Matrix, f int) models.Matrix {
	q := m.Clone()
	for i, v := range q.Data {
		q.Data[i] = math.Ldexp(math.Round(math.Ldexp(v, f)), -f)
	}
	return q
}

// open returns the values of the shares a + b.
func open(tb testing.TB, p Parameters, a, b share.Vector) []float64 {
	tb.Helper()
	return openAt(tb, p.FracBits(), a, b)
}

// openAt returns the values of the shares a + b at f fractional bits.
func openAt(tb testing.TB, f int, a, b share.Vector) []float64 {
	tb.Helper()
	sp, err := share.NewParameters(share.ParametersLiteral{FracBits: f})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := share.Reconstruct(sp, a, b)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// maxDiff returns max_i |got_i - want_i|.
func maxDiff(got, want []float64) float64 {
	var d float64
	for i := range got {
		d = max(d, math.Abs(got[i]-want[i]))
	}
	return d
}

// modelDegrees converts approx degrees to the plaintext forward's.
func modelDegrees(degs []approx.Degree) []models.Degree {
	if degs == nil {
		return nil
	}
	out := make([]models.Degree, len(degs))
	for i, d := range degs {
		if d == approx.Low {
			out[i] = models.DegreeLow
		}
	}
	return out
}

// refLayerNorm is models' LayerNorm with the approximate forward's 1/√x:
// (x - mean)·InvSqrt(var + ε)·γ + β, the biased variance.
func refLayerNorm(x models.Matrix, ln *models.LayerNorm, degs []models.Degree, ap *models.Approximate) models.Matrix {
	y := x.Clone()
	d := float64(x.Cols)
	for i := 0; i < x.Rows; i++ {
		row := y.Row(i)
		var mean, variance float64
		for _, v := range row {
			mean += v
		}
		mean /= d
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= d
		dg := models.DegreeHigh
		if degs != nil {
			dg = degs[i]
		}
		r := ap.InvSqrt(variance+ln.Eps, dg)
		for j, v := range row {
			row[j] = (v-mean)*r*ln.Gamma[j] + ln.Beta[j]
		}
	}
	return y
}

// oneKey is the approximate forward with the softmax of a single valid key
// exactly 1, as the protocol computes it (the registry's 1/x need not hold
// a lone exponential).
type oneKey struct{ *models.Approximate }

func (o oneKey) SoftmaxRow(dst, scores []float64, valid []bool, deg models.Degree) {
	k := -1
	for j, v := range valid {
		if v {
			if k >= 0 {
				o.Approximate.SoftmaxRow(dst, scores, valid, deg)
				return
			}
			k = j
		}
	}
	clear(dst)
	dst[k] = 1
}

// runParties runs the server's call f and the client's g over sc and cc
// (nettest.BothAborting: a failing party aborts its connection) and fails
// tb with both errors if either fails.
func runParties(tb testing.TB, sc, cc *wire.Conn, f, g func() error) {
	tb.Helper()
	if serr, cerr := nettest.BothAborting(sc, cc, f, g); serr != nil || cerr != nil {
		tb.Fatalf("server: %v, client: %v", serr, cerr)
	}
}
