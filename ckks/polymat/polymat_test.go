package polymat

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/kernels"
)

// testContext holds a ring and a key pair.
type testContext struct {
	params Parameters
	sk     *rlwe.SecretKey
	dec    *rlwe.Decryptor
}

var (
	tcMu    sync.Mutex
	tcCache = map[int]*testContext{}
)

func newTestContext(tb testing.TB, lit ParametersLiteral) *testContext {
	tb.Helper()
	tcMu.Lock()
	defer tcMu.Unlock()
	if tc, ok := tcCache[lit.LogN]; ok {
		return tc
	}
	params, err := NewParametersFromLiteral(lit)
	if err != nil {
		tb.Fatal(err)
	}
	sk := rlwe.NewKeyGenerator(params.RLWE()).GenSecretKeyNew()
	tc := &testContext{params: params, sk: sk, dec: rlwe.NewDecryptor(params.RLWE(), sk)}
	tcCache[lit.LogN] = tc
	return tc
}

func bg() context.Context { return context.Background() }

func randInts(r *rand.Rand, n int, bound int64) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = r.Int64N(2*bound+1) - bound
	}
	return v
}

// matmul is the exact integer product of x (rows x in) and w (in x out).
func matmul(x, w []int64, rows, in, out int) []*big.Int {
	y := make([]*big.Int, rows*out)
	t := new(big.Int)
	for r := 0; r < rows; r++ {
		for c := 0; c < out; c++ {
			s := new(big.Int)
			for k := 0; k < in; k++ {
				s.Add(s, t.Mul(big.NewInt(x[r*in+k]), big.NewInt(w[k*out+c])))
			}
			y[r*out+c] = s
		}
	}
	return y
}

// centred returns the coefficient j of p (coefficient domain) as the
// representative in (-Q/2, Q/2].
func (tc *testContext) centred(p ring.Poly, j int) *big.Int {
	out := make([]*big.Int, tc.params.N())
	for k := range out {
		out[k] = new(big.Int)
	}
	tc.params.RingQ().PolyToBigintCentered(p, 1, out)
	return out[j]
}

// TestParameters checks the presets and the security bound.
func TestParameters(t *testing.T) {
	for _, tt := range []struct {
		name string
		lit  ParametersLiteral
		err  string
	}{
		{"N12", N12, ""},
		{"N13", N13, ""},
		{"N12/too-large-Q", ParametersLiteral{LogN: 12, LogQ: []int{55, 55}}, "HE standard"},
		{"N11", ParametersLiteral{LogN: 11, LogQ: []int{50}}, ""},
		{"N11/too-large-Q", ParametersLiteral{LogN: 11, LogQ: []int{30, 30}}, "HE standard"},
		{"both", ParametersLiteral{LogN: 12, LogQ: []int{50}, Q: []uint64{0x7ffffffe0001}}, "exactly one"},
		{"neither", ParametersLiteral{LogN: 12}, "exactly one"},
		{"logN", ParametersLiteral{LogN: 9, LogQ: []int{20}}, "LogN"},
		{"limbs", ParametersLiteral{LogN: 15, LogQ: []int{40, 40, 40, 40, 40}}, "primes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParametersFromLiteral(tt.lit)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.LogQ() > float64(heStandardMaxLogQP[p.LogN()]) {
				t.Fatalf("log Q %.2f above the standard", p.LogQ())
			}
			// The literal round-trips with explicit primes.
			p2, err := NewParametersFromLiteral(p.Literal())
			if err != nil || !p2.Equal(p) {
				t.Fatalf("literal does not round-trip: %v", err)
			}
			if kp := p.KernelParams(); kp.N() != p.N() || kp.MaxLevelQ() != p.Limbs()-1 || kp.MaxLevelP() != -1 {
				t.Fatalf("kernel parameters for N = %d, levels (%d, %d)", kp.N(), kp.MaxLevelQ(), kp.MaxLevelP())
			}
		})
	}
	p, _ := NewParametersFromLiteral(N12)
	if got := p.String(); got != "N=2^12 Q=54+55 bits" {
		t.Errorf("N12 is %q", got)
	}
}

// TestEncodingExponents multiplies encoded blocks as integer polynomials
// modulo x^N+1 (no encryption) and checks that every target holds the
// block's product and that no target is hit by another term.
func TestEncodingExponents(t *testing.T) {
	tc := newTestContext(t, N12)
	r := rand.New(rand.NewPCG(1, 2))
	for _, b := range []Block{{1, 1, 1}, {2, 3, 5}, {4, 16, 64}, {16, 16, 16}, {1, 4096, 1}, {1, 1, 4096}, {4096, 1, 1}, {3, 7, 11}} {
		t.Run(b.String(), func(t *testing.T) {
			d := Dims{Rows: b.D0, In: b.D1, Out: b.D2}
			lay, err := NewLayout(tc.params, d, b)
			if err != nil {
				t.Fatal(err)
			}
			n := tc.params.N()
			x := randInts(r, d.Rows*d.In, 9)
			w := randInts(r, d.In*d.Out, 9)
			xp := make([]int64, n)
			wp := make([]int64, n)
			for i := 0; i < d.Rows; i++ {
				for k := 0; k < d.In; k++ {
					xp[lay.InputExponent(i, k)] = x[i*d.In+k]
				}
			}
			for k := 0; k < d.In; k++ {
				for c := 0; c < d.Out; c++ {
					wp[lay.WeightExponent(k, c)] = w[k*d.Out+c]
				}
			}
			// Negacyclic product, only at the targets (O(N·nnz)).
			var xs, ws []int
			for e, v := range xp {
				if v != 0 {
					xs = append(xs, e)
				}
			}
			for e, v := range wp {
				if v != 0 {
					ws = append(ws, e)
				}
			}
			prod := make([]int64, n)
			for _, e1 := range xs {
				for _, e2 := range ws {
					e := e1 + e2
					v := xp[e1] * wp[e2]
					if e >= n {
						e -= n
						v = -v
					}
					prod[e] += v
				}
			}
			want := matmul(x, w, d.Rows, d.In, d.Out)
			for i := 0; i < d.Rows; i++ {
				for c := 0; c < d.Out; c++ {
					if got := prod[lay.TargetExponent(i, c)]; got != want[i*d.Out+c].Int64() {
						t.Fatalf("Y[%d,%d] = %d, want %d", i, c, got, want[i*d.Out+c])
					}
				}
			}
		})
	}
}

// TestMul encrypts random integer matrices, multiplies them by encoded
// weights and decrypts the targets: exact up to the noise e·W.
func TestMul(t *testing.T) {
	tc := newTestContext(t, N12)
	r := rand.New(rand.NewPCG(3, 4))
	for _, tt := range []struct {
		d Dims
		b Block
	}{
		{Dims{1, 1, 1}, Block{1, 1, 1}},
		{Dims{1, 70, 50}, Block{1, 16, 32}},
		{Dims{5, 17, 9}, Block{2, 4, 3}},
		{Dims{7, 33, 21}, Block{3, 8, 8}},
		{Dims{16, 64, 64}, Block{8, 8, 64}},
		{Dims{3, 5, 200}, Block{3, 5, 200}},
	} {
		for _, workers := range []int{1, 3} {
			for _, pre := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/block=%v/workers=%d/pre-encoded=%t", tt.d, tt.b, workers, pre), func(t *testing.T) {
					lay, err := NewLayout(tc.params, tt.d, tt.b)
					if err != nil {
						t.Fatal(err)
					}
					const bound = 1 << 20
					x := randInts(r, tt.d.Rows*tt.d.In, bound)
					w := randInts(r, tt.d.In*tt.d.Out, bound)
					ew := tc.weights(t, lay, w, pre, workers)
					in := tc.encrypt(t, lay, x)
					ev := NewEvaluator(tc.params, workers)
					out, err := ev.MulNew(bg(), lay, in, ew)
					if err != nil {
						t.Fatal(err)
					}
					want := matmul(x, w, tt.d.Rows, tt.d.In, tt.d.Out)
					tc.checkOutputs(t, lay, out, want, w)
				})
			}
		}
	}
}

// weights returns w encoded for lay, once or per call, and checks its
// memory.
func (tc *testContext) weights(tb testing.TB, lay Layout, w []int64, pre bool, workers int) *EncodedWeights {
	tb.Helper()
	var (
		ew   *EncodedWeights
		err  error
		want int64
	)
	if pre {
		wr, err := FromInt64(tc.params, lay.In, lay.Out, w)
		if err != nil {
			tb.Fatal(err)
		}
		ew, err = NewEncodedWeights(bg(), tc.params, lay, wr, workers)
		if err != nil {
			tb.Fatal(err)
		}
		want = int64(lay.Weights() * tc.params.Limbs() * tc.params.N() * 8)
	} else {
		if ew, err = NewOnTheFlyWeights(tc.params, lay, w); err != nil {
			tb.Fatal(err)
		}
		want = int64(len(w) * 8)
	}
	if ew.PreEncoded() != pre || ew.Count() != lay.Weights() {
		tb.Fatalf("PreEncoded %t, Count %d, want %t, %d", ew.PreEncoded(), ew.Count(), pre, lay.Weights())
	}
	if got := ew.MemoryBytes(); got != want {
		tb.Fatalf("MemoryBytes %d, want %d", got, want)
	}
	return ew
}

// TestMulMatchesLattigo computes the products four ways, which must agree
// word for word: pre-encoded and on-the-fly weights on the default
// backend, pre-encoded on the generic CPU kernels, and Lattigo's own
// ring.MulCoeffsMontgomeryThenAdd on weight blocks encoded with Lattigo's
// NTT and then MForm (where the encoders put the Montgomery factor in
// before their NTT).
func TestMulMatchesLattigo(t *testing.T) {
	tc := newTestContext(t, N12)
	r := rand.New(rand.NewPCG(7, 8))
	ringQ := tc.params.RingQ()
	for _, tt := range []struct {
		d Dims
		b Block
	}{
		{Dims{5, 17, 9}, Block{2, 4, 3}},
		{Dims{9, 300, 40}, Block{3, 2, 8}}, // 150 inner blocks
	} {
		t.Run(fmt.Sprintf("%v/block=%v", tt.d, tt.b), func(t *testing.T) {
			lay, err := NewLayout(tc.params, tt.d, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			// Weights beyond the primes: every residue is possible.
			w := randInts(r, tt.d.In*tt.d.Out, 1<<61)
			in := tc.encrypt(t, lay, randInts(r, tt.d.Rows*tt.d.In, 1<<20))
			// Lattigo.
			wr, err := FromInt64(tc.params, tt.d.In, tt.d.Out, w)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]*rlwe.Ciphertext, lay.Outputs())
			wp := make([]ring.Poly, lay.Weights())
			for a := 0; a < lay.InnerBlocks(); a++ {
				for j := 0; j < lay.ColBlocks(); j++ {
					p := ringQ.NewPoly()
					for l := range p.Coeffs {
						for k := 0; k < lay.BlockInner(a); k++ {
							for c := 0; c < lay.BlockCols(j); c++ {
								p.Coeffs[l][lay.WeightExponent(k, c)] = wr.Limbs[l][(a*lay.D1+k)*lay.Out+j*lay.D2+c]
							}
						}
					}
					ringQ.NTT(p, p)
					ringQ.MForm(p, p)
					wp[a*lay.ColBlocks()+j] = p
				}
			}
			for i := 0; i < lay.RowBlocks(); i++ {
				for j := 0; j < lay.ColBlocks(); j++ {
					ct := NewCiphertext(tc.params)
					for a := 0; a < lay.InnerBlocks(); a++ {
						for p := 0; p < 2; p++ {
							ringQ.MulCoeffsMontgomeryThenAdd(in[lay.InputIndex(i, a)].Value[p], wp[a*lay.ColBlocks()+j], ct.Value[p])
						}
					}
					want[lay.OutputIndex(i, j)] = ct
				}
			}
			generic, err := kernels.NewCPU(tc.params.KernelParams(), kernels.CPUOptions{Variant: kernels.VariantGeneric})
			if err != nil {
				t.Fatal(err)
			}
			evGeneric, err := NewEvaluatorWithBackend(tc.params, 2, generic)
			if err != nil {
				t.Fatal(err)
			}
			ewGeneric, err := evGeneric.EncodeWeights(bg(), lay, wr)
			if err != nil {
				t.Fatal(err)
			}
			for name, run := range map[string]func() ([]*rlwe.Ciphertext, error){
				"pre-encoded": func() ([]*rlwe.Ciphertext, error) {
					return NewEvaluator(tc.params, 2).MulNew(bg(), lay, in, tc.weights(t, lay, w, true, 2))
				},
				"on-the-fly": func() ([]*rlwe.Ciphertext, error) {
					return NewEvaluator(tc.params, 3).MulNew(bg(), lay, in, tc.weights(t, lay, w, false, 3))
				},
				"generic": func() ([]*rlwe.Ciphertext, error) { return evGeneric.MulNew(bg(), lay, in, ewGeneric) },
			} {
				got, err := run()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for o := range want {
					for p := 0; p < 2; p++ {
						if !got[o].Value[p].Equal(&want[o].Value[p]) {
							t.Fatalf("%s: output %d polynomial %d differs from Lattigo's", name, o, p)
						}
					}
				}
			}
		})
	}
}

// TestMulBackendErrors checks the backend checks of NewEvaluatorWithBackend
// and that released weights are refused.
func TestMulBackendErrors(t *testing.T) {
	tc := newTestContext(t, N12)
	other, err := NewParametersFromLiteral(N13)
	if err != nil {
		t.Fatal(err)
	}
	be, err := kernels.NewCPU(other.KernelParams(), kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEvaluatorWithBackend(tc.params, 1, be); err == nil {
		t.Error("a backend for another ring was accepted")
	}
	if _, err := NewEvaluatorWithBackend(tc.params, 1, nil); err == nil {
		t.Error("a nil backend was accepted")
	}
	lay, _ := NewLayout(tc.params, Dims{2, 4, 4}, Block{1, 2, 2})
	ew := tc.weights(t, lay, make([]int64, 16), true, 1)
	if err := ew.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEvaluator(tc.params, 1).MulNew(bg(), lay, tc.encrypt(t, lay, make([]int64, 8)), ew); err == nil {
		t.Error("released weights were used")
	}
	if _, err := NewOnTheFlyWeights(tc.params, lay, make([]int64, 15)); err == nil {
		t.Error("NewOnTheFlyWeights accepted a wrong length")
	}
}

// encrypt encrypts x block by block (seeded, as the client does) and
// rebuilds the ciphertexts as the server does.
func (tc *testContext) encrypt(tb testing.TB, lay Layout, x []int64) []*rlwe.Ciphertext {
	tb.Helper()
	xr, err := FromInt64(tc.params, lay.Rows, lay.In, x)
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := NewEncryptor(tc.params, tc.sk)
	if err != nil {
		tb.Fatal(err)
	}
	ringQ := tc.params.RingQ()
	in := make([]*rlwe.Ciphertext, lay.Inputs())
	for i := 0; i < lay.RowBlocks(); i++ {
		for a := 0; a < lay.InnerBlocks(); a++ {
			m := ringQ.NewPoly()
			lay.EncodeInput(xr, i, a, m)
			seed := make([]byte, SeedSize)
			seed[0], seed[1] = byte(i), byte(a)
			ct := NewCiphertext(tc.params)
			if err := enc.EncryptSeeded(m, seed, ct.Value[0]); err != nil {
				tb.Fatal(err)
			}
			if err := ExpandC1(tc.params, seed, ct.Value[1]); err != nil {
				tb.Fatal(err)
			}
			in[lay.InputIndex(i, a)] = ct
		}
	}
	return in
}

// checkOutputs decrypts every output and compares its targets with want;
// the difference is the noise e·W, at most 19·Σ|w| per target.
func (tc *testContext) checkOutputs(tb testing.TB, lay Layout, out []*rlwe.Ciphertext, want []*big.Int, w []int64) {
	tb.Helper()
	var l1 int64
	for _, v := range w {
		l1 += max(v, -v)
	}
	noiseBound := big.NewInt(20 * l1)
	ringQ := tc.params.RingQ()
	coeffs := make([]*big.Int, tc.params.N())
	for k := range coeffs {
		coeffs[k] = new(big.Int)
	}
	var targets, entries []int
	diff := new(big.Int)
	for o, ct := range out {
		pt := tc.dec.DecryptNew(ct)
		ringQ.INTT(pt.Value, pt.Value)
		ringQ.PolyToBigintCentered(pt.Value, 1, coeffs)
		targets = lay.AppendTargets(targets[:0], o)
		entries = lay.AppendTargetEntries(entries[:0], o)
		if len(targets) != lay.Targets(o) {
			tb.Fatalf("output %d: %d targets, want %d", o, len(targets), lay.Targets(o))
		}
		for k, e := range targets {
			diff.Sub(coeffs[e], want[entries[k]])
			if diff.CmpAbs(noiseBound) > 0 {
				tb.Fatalf("output %d target %d: got %v, want %v (noise bound %v)", o, k, coeffs[e], want[entries[k]], noiseBound)
			}
		}
	}
}

// TestLayoutErrors checks the shape checks.
func TestLayoutErrors(t *testing.T) {
	tc := newTestContext(t, N12)
	for _, tt := range []struct {
		d Dims
		b Block
	}{
		{Dims{0, 1, 1}, Block{1, 1, 1}},
		{Dims{1, 1, MaxDim + 1}, Block{1, 1, 1}},
		{Dims{4, 4, 4}, Block{5, 1, 1}},
		{Dims{4, 4, 4}, Block{0, 1, 1}},
		{Dims{64, 64, 64}, Block{64, 64, 2}},
	} {
		if _, err := NewLayout(tc.params, tt.d, tt.b); err == nil {
			t.Errorf("layout %v %v accepted", tt.d, tt.b)
		}
	}
}

// TestMulErrors checks that mismatched inputs and weights are refused.
func TestMulErrors(t *testing.T) {
	tc := newTestContext(t, N12)
	lay, _ := NewLayout(tc.params, Dims{4, 8, 8}, Block{2, 4, 4})
	other, _ := NewLayout(tc.params, Dims{4, 8, 8}, Block{2, 2, 4})
	w, _ := FromInt64(tc.params, 8, 8, make([]int64, 64))
	ew, err := NewEncodedWeights(bg(), tc.params, lay, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := tc.encrypt(t, lay, make([]int64, 32))
	ev := NewEvaluator(tc.params, 2)
	if _, err := ev.MulNew(bg(), other, tc.encrypt(t, other, make([]int64, 32)), ew); err == nil {
		t.Error("weights of another block accepted")
	}
	if _, err := ev.MulNew(bg(), lay, in[1:], ew); err == nil {
		t.Error("too few inputs accepted")
	}
	bad := append([]*rlwe.Ciphertext(nil), in...)
	bad[0] = rlwe.NewCiphertext(tc.params.RLWE(), 1, 0)
	if _, err := ev.MulNew(bg(), lay, bad, ew); err == nil {
		t.Error("input at a lower level accepted")
	}
	ctx, cancel := context.WithCancel(bg())
	cancel()
	if _, err := ev.MulNew(ctx, lay, in, ew); err == nil {
		t.Error("cancelled context ignored")
	}
	if _, err := FromInt64(tc.params, 2, 2, make([]int64, 3)); err == nil {
		t.Error("FromInt64 accepted a wrong length")
	}
}

// TestModInt64 checks the residues of extreme values.
func TestModInt64(t *testing.T) {
	q := uint64(0x7ffffffe0001)
	for _, x := range []int64{0, 1, -1, 1 << 62, -(1 << 62), 9223372036854775807, -9223372036854775808} {
		want := new(big.Int).Mod(big.NewInt(x), new(big.Int).SetUint64(q)).Uint64()
		if got := ModInt64(x, q); got != want {
			t.Errorf("ModInt64(%d) = %d, want %d", x, got, want)
		}
	}
}

// TestChooseBlock checks the chosen shapes for BERT-base's products and
// the memory bound, pre-encoded and not.
func TestChooseBlock(t *testing.T) {
	tc := newTestContext(t, N12)
	for _, tt := range []struct {
		d      Dims
		budget int64
	}{
		{Dims{128, 768, 768}, 400 << 20},
		{Dims{128, 768, 3072}, 1300 << 20},
		{Dims{128, 768, 3072}, 300 << 20},
		{Dims{128, 768, 3072}, 0},
		{Dims{128, 768, 2304}, 0},
		{Dims{1, 768, 768}, -1},
		{Dims{3, 17, 5}, -1},
		{Dims{512, 3072, 768}, 1300 << 20},
	} {
		c, err := CostModel{}.ChooseBlock(tc.params, tt.d, tt.budget)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v budget %d MiB: block %v pre-encoded %t, %d products, %d/%d cts, %.1f/%.1f MB, held %.0f MiB, encode %.3f s, %.3f s",
			tt.d, tt.budget>>20, c.Block, c.PreEncoded, c.Products, c.Inputs, c.Outputs, float64(c.BytesIn)/1e6, float64(c.BytesOut)/1e6, float64(c.WeightBytes)/(1<<20), c.EncodeSeconds, c.Seconds)
		if c.D0*c.D1*c.D2 > tc.params.N() {
			t.Errorf("block %v exceeds N", c.Block)
		}
		switch {
		case tt.budget == 0 && c.PreEncoded:
			t.Errorf("pre-encoded with a zero budget")
		case tt.budget < 0 && !c.PreEncoded:
			t.Errorf("encoded per call without a bound")
		case tt.budget > 0 && c.PreEncoded && c.PlaintextBytes > tt.budget:
			t.Errorf("weights %d bytes exceed the budget %d", c.PlaintextBytes, tt.budget)
		case c.PreEncoded != (c.EncodeSeconds == 0):
			t.Errorf("pre-encoded %t with %.3f s of encoding", c.PreEncoded, c.EncodeSeconds)
		}
		pre, err := CostModel{}.ChooseBlockPreEncoded(tc.params, tt.d, max(tt.budget, -1))
		if tt.budget == 0 {
			if err == nil {
				t.Errorf("ChooseBlockPreEncoded found a block within 0 bytes")
			}
			continue
		}
		if err != nil || !pre.PreEncoded || c.Seconds > pre.Seconds {
			t.Errorf("ChooseBlockPreEncoded: %+v, %v (ChooseBlock %.3f s)", pre, err, c.Seconds)
		}
	}
	if _, err := (CostModel{}).ChooseBlockPreEncoded(tc.params, Dims{4, 4, 4}, 1); err == nil {
		t.Error("a budget no block fits was accepted")
	}
	if _, err := (CostModel{}).ChooseBlock(tc.params, Dims{0, 4, 4}, 1); err == nil {
		t.Error("empty dimensions accepted")
	}
}

// bertBase is the list of BERT-base's 48 matrices at n rows: per layer
// the fused QKV projection, the attention output and the two of the
// feed-forward block.
func bertBase(n int) []Dims {
	var mats []Dims
	for l := 0; l < 12; l++ {
		mats = append(mats, Dims{n, 768, 2304}, Dims{n, 768, 768}, Dims{n, 768, 3072}, Dims{n, 3072, 768})
	}
	return mats
}

// TestPlan plans BERT-base at n = 128 under four budgets and checks that
// the plan respects each, that every entry is the model's estimate of its
// block, that more memory never costs time, and that the extremes are
// ChooseBlock's (all per call at 0, all pre-encoded without a bound).
func TestPlan(t *testing.T) {
	tc := newTestContext(t, N12)
	mats := bertBase(128)
	var cm CostModel
	last := math.Inf(1)
	for _, budget := range []int64{0, 1 << 30, 4 << 30, 16 << 30, -1} {
		plan, err := cm.Plan(tc.params, mats, budget)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("budget %d GiB: %d of %d pre-encoded, %.2f GiB of plaintexts, %.2f GiB held, %.2f s modelled (%.2f s encoding)",
			budget>>30, plan.PreEncoded, len(mats), float64(plan.PreEncodedBytes)/(1<<30), float64(plan.HeldBytes)/(1<<30), plan.Seconds, plan.EncodeSeconds)
		for k, c := range plan.Matrices[:4] {
			t.Logf("  %v: block %v pre-encoded %t, %.0f MiB held, %.3f s", mats[k], c.Block, c.PreEncoded, float64(c.WeightBytes)/(1<<20), c.Seconds)
		}
		if budget >= 0 && plan.PreEncodedBytes > budget {
			t.Errorf("budget %d: %d bytes pre-encoded", budget, plan.PreEncodedBytes)
		}
		if plan.Seconds > last*(1+1e-12) {
			t.Errorf("budget %d: %.3f s, more than %.3f s with less memory", budget, plan.Seconds, last)
		}
		last = plan.Seconds
		var sum float64
		for k, c := range plan.Matrices {
			lay, err := NewLayout(tc.params, mats[k], c.Block)
			if err != nil {
				t.Fatal(err)
			}
			if e := cm.Estimate(tc.params, lay, c.PreEncoded); e != c {
				t.Fatalf("matrix %d: %+v, estimate %+v", k, c, e)
			}
			want, err := cm.ChooseBlock(tc.params, mats[k], min(budget, 0)) // 0 or no bound
			if err != nil {
				t.Fatal(err)
			}
			if budget <= 0 && c != want {
				t.Errorf("budget %d, matrix %d: %+v, ChooseBlock %+v", budget, k, c, want)
			}
			sum += c.Seconds
		}
		if math.Abs(sum-plan.Seconds) > 1e-9*sum {
			t.Errorf("Seconds %.6f, sum %.6f", plan.Seconds, sum)
		}
	}
}

// TestPlanOptimal compares the plan of a small model with an exhaustive
// search over every matrix's options: the plan is no worse than the best
// choice within its budget less one rounding unit per matrix, and no
// better than the best within the whole budget.
func TestPlanOptimal(t *testing.T) {
	tc := newTestContext(t, N12)
	mats := []Dims{{64, 768, 768}, {64, 768, 2304}, {64, 3072, 768}}
	var cm CostModel
	var fronts [][]Cost
	for _, d := range mats {
		opts, err := cm.options(tc.params, d)
		if err != nil {
			t.Fatal(err)
		}
		fronts = append(fronts, front(opts))
	}
	exhaustive := func(budget int64) float64 {
		best := math.Inf(1)
		var rec func(k int, bytes int64, secs float64)
		rec = func(k int, bytes int64, secs float64) {
			if bytes > budget {
				return
			}
			if k == len(mats) {
				best = min(best, secs)
				return
			}
			for _, c := range fronts[k] {
				b := int64(0)
				if c.PreEncoded {
					b = c.PlaintextBytes
				}
				rec(k+1, bytes+b, secs+c.Seconds)
			}
		}
		rec(0, 0, 0)
		return best
	}
	for _, budget := range []int64{1 << 20, 100 << 20, 300 << 20, 700 << 20, 2 << 30} {
		plan, err := cm.Plan(tc.params, mats, budget)
		if err != nil {
			t.Fatal(err)
		}
		slack := int64(len(mats)) * ((budget + planUnits - 1) / planUnits)
		lo, hi := exhaustive(budget), exhaustive(budget-slack)
		if plan.Seconds < lo*(1-1e-12) || plan.Seconds > hi*(1+1e-12) {
			t.Errorf("budget %d: plan %.4f s, exhaustive %.4f s (%.4f s within the budget less %d bytes)", budget, plan.Seconds, lo, hi, slack)
		}
	}
}

// TestChooseRows checks that weights planned for n = 128 serve shorter
// inputs with their own D1 and D2 and the best D0 for the rows, pre-encoded
// or not.
func TestChooseRows(t *testing.T) {
	tc := newTestContext(t, N12)
	var cm CostModel
	d := Dims{128, 768, 768}
	for _, budget := range []int64{-1, 0} {
		c, err := cm.ChooseBlock(tc.params, d, budget)
		if err != nil {
			t.Fatal(err)
		}
		lay, err := NewLayout(tc.params, d, c.Block)
		if err != nil {
			t.Fatal(err)
		}
		var ew *EncodedWeights
		if c.PreEncoded {
			ew = &EncodedWeights{In: d.In, Out: d.Out, D1: c.D1, D2: c.D2, params: tc.params, pts: kernelsBufferStub(t, tc)}
		} else if ew, err = NewOnTheFlyWeights(tc.params, lay, make([]int64, d.In*d.Out)); err != nil {
			t.Fatal(err)
		}
		for _, rows := range []int{128, 77, 32, 1} {
			got, err := cm.ChooseRows(tc.params, Dims{rows, d.In, d.Out}, ew)
			if err != nil {
				t.Fatal(err)
			}
			if got.D1 != c.D1 || got.D2 != c.D2 || got.PreEncoded != c.PreEncoded || got.D0 > rows {
				t.Fatalf("budget %d, %d rows: %+v for weights in %v", budget, rows, got, c.Block)
			}
			if rows == d.Rows && got.Seconds > c.Seconds {
				t.Fatalf("at the planned rows: %.3f s, ChooseBlock %.3f s", got.Seconds, c.Seconds)
			}
			t.Logf("weights in %v (pre-encoded %t), %d rows: block %v, %.3f s", c.Block, c.PreEncoded, rows, got.Block, got.Seconds)
		}
		if _, err := cm.ChooseRows(tc.params, Dims{4, 768, 64}, ew); err == nil {
			t.Error("weights of another shape accepted")
		}
	}
}

// kernelsBufferStub returns a one-polynomial buffer, standing for
// pre-encoded plaintexts where only the shape matters.
func kernelsBufferStub(t *testing.T, tc *testContext) kernels.Buffer {
	be, err := kernels.NewCPU(tc.params.KernelParams(), kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	buf, err := be.Alloc(kernels.Basis{LevelQ: tc.params.Limbs() - 1, LevelP: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}
