package share

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
)

// TestMaskWidth pins the mask widths and levels of the rings the engine
// masks on and checks the formulas: β the least integer with the session's
// statistical distance at most 2^-(λ+1), which is λ + LogMaxValues/2 +
// V + 1 with V = B + log2 Δ + 1 for an even LogMaxValues; the mask level
// the lowest with 3·2^β + 2^V < (1/2 - 2^-20)·Q_l.
func TestMaskWidth(t *testing.T) {
	pins := []struct {
		ring              string
		lit               ParametersLiteral
		v, beta, level    int
		typicalShareBits  int
		log2SessionBound  float64
		sessionBoundRatio float64 // of 2^-(λ+2)
	}{
		// mpcbridge/elementwise's default (Elementwise14's chain): Δ = 2^36,
		// Q_1 of 104 bits (52 + 51 bits, 2^103 + 3·10^-11 of it), where the
		// masked values need 2^102.585.
		{testCI14, ParametersLiteral{LogBound: 8}, 45, 100, 1, 89, -41.90, 1.0724},
		// Its chain in N = 2^11 (InsecureElementwise11): Q_1 just below
		// 2^103, still above 2^102.585.
		{testCI11, ParametersLiteral{LogBound: 8}, 45, 100, 1, 88, -41.90, 1.0724},
		// prunestep's ciphertext path at Interactive14: Δ = 2^33; Q_1 has
		// 80 bits, Q_2 112.
		{ckks.Interactive14, ParametersLiteral{LogBound: 8}, 42, 97, 2, 89, -41.90, 1.0724},
		{ckks.Interactive14, ParametersLiteral{LogBound: 6, FracBits: 16}, 40, 95, 2, 87, -41.90, 1.0724},
		// An odd budget: a bit less.
		{testCI14, ParametersLiteral{LogBound: 8, LogMaxValues: 27}, 45, 99, 1, 88, -41.40, 1.5166},
	}
	for _, pin := range pins {
		params := testParams(t, pin.ring)
		p, err := NewParameters(pin.lit)
		if err != nil {
			t.Fatal(err)
		}
		scale := params.DefaultScale()
		v, err := p.ValueBits(scale)
		if err != nil {
			t.Fatal(err)
		}
		level, beta, err := p.MaskLevel(params, scale, params.MaxLevel())
		if err != nil {
			t.Fatalf("%s %+v: %v", pin.ring, pin.lit, err)
		}
		sd, err := p.SessionBound(scale)
		if err != nil {
			t.Fatal(err)
		}
		lambda := p.Lambda()
		t.Logf("%s %+v: V = %d, β = %d, mask level %d (Q_l %d bits), typical shares %d bits, session bound 2^%.2f over 2^%d coefficients",
			pin.ring, pin.lit, v, beta, level, params.RingQ().AtLevel(level).Modulus().BitLen(),
			p.TypicalShareBits(params.LogN(), beta, scale), math.Log2(sd), p.LogMaxValues())
		if v != pin.v || beta != pin.beta || level != pin.level {
			t.Errorf("%s %+v: V, β, level = %d, %d, %d; want %d, %d, %d", pin.ring, pin.lit, v, beta, level, pin.v, pin.beta, pin.level)
		}
		if got := p.TypicalShareBits(params.LogN(), beta, scale); got != pin.typicalShareBits {
			t.Errorf("%s %+v: typical shares of %d bits, want %d", pin.ring, pin.lit, got, pin.typicalShareBits)
		}
		if want := lambda + p.LogMaxValues()/2 + v + 1; p.LogMaxValues()%2 == 0 && beta != want {
			t.Errorf("%s %+v: β = %d, want %d", pin.ring, pin.lit, beta, want)
		}
		if sd > math.Ldexp(1, -lambda-1) {
			t.Errorf("%s %+v: session bound %g above 2^-(λ+1)", pin.ring, pin.lit, sd)
		}
		if r := sd / math.Ldexp(1, -lambda-2); math.Abs(r-pin.sessionBoundRatio) > 1e-4 || math.Abs(math.Log2(sd)-pin.log2SessionBound) > 0.01 {
			t.Errorf("%s %+v: session bound %.4f·2^-(λ+2) = 2^%.2f, want %.4f and 2^%.2f", pin.ring, pin.lit, r, math.Log2(sd), pin.sessionBoundRatio, pin.log2SessionBound)
		}
		// The masked coefficients, |v + M| <= 2^V + 3·2^β, fit
		// (1/2 - 2^-20)·Q_l at the mask level, not at the level below.
		most := new(big.Int).Lsh(big.NewInt(3), uint(beta))
		most.Add(most, new(big.Int).Lsh(big.NewInt(1), uint(v)))
		need := new(big.Float).Quo(new(big.Float).SetInt(most), big.NewFloat(0.5-0x1p-20))
		for l, fits := range map[int]bool{level: true, level - 1: false} {
			if l < 0 {
				continue
			}
			q := params.RingQ().AtLevel(l).Modulus()
			t.Logf("  Q_%d = 2^%.6f, 2·(2^V + 3·2^β) = 2^%.4f", l, bigLog2(q), bigLog2(new(big.Int).Lsh(most, 1)))
			if got := new(big.Float).SetInt(q).Cmp(need) > 0; got != fits {
				t.Errorf("%s %+v: level %d holds the masked values: %v, want %v", pin.ring, pin.lit, l, got, fits)
			}
		}
	}
	// The formulas for other literals: the bound holds for every budget.
	params := testParams(t, ckks.Interactive14)
	for _, lit := range []ParametersLiteral{
		{LogBound: 0, LogMaxValues: 1},
		{LogBound: 4, LogMaxValues: 33},
		{LogBound: 8, Lambda: 50, LogMaxValues: 20},
		{LogBound: -4, LogMaxValues: MaxLogMaxValues},
	} {
		p, err := NewParameters(lit)
		if err != nil {
			t.Fatalf("%+v: %v", lit, err)
		}
		sd, err := p.SessionBound(params.DefaultScale())
		if err != nil {
			t.Fatal(err)
		}
		if sd > math.Ldexp(1, -p.Lambda()-1) || sd <= math.Ldexp(1, -p.Lambda()-2) {
			t.Errorf("%+v: session bound %g not in (2^-(λ+2), 2^-(λ+1)]: β is not the least width", lit, sd)
		}
	}
	// A scale just above Δ (a product rescaled by a prime below Δ) keeps
	// β; 2Δ costs one bit.
	p, _ := NewParameters(ParametersLiteral{LogBound: 8})
	d := params.DefaultScale().Float64()
	b0, _ := p.MaskBits(params.DefaultScale())
	b1, _ := p.MaskBits(rlwe.NewScale(d * 1.001))
	b2, _ := p.MaskBits(rlwe.NewScale(2 * d))
	if b1 != b0 || b2 != b0+1 {
		t.Errorf("β at Δ, 1.001Δ, 2Δ: %d, %d, %d; want %d, %d, %d", b0, b1, b2, b0, b0, b0+1)
	}
	if _, err := NewParameters(ParametersLiteral{LogMaxValues: MaxLogMaxValues + 1}); err == nil || !strings.Contains(err.Error(), "LogMaxValues") {
		t.Errorf("LogMaxValues %d accepted: %v", MaxLogMaxValues+1, err)
	}
}

// bigLog2 returns log2(x) for x > 0.
func bigLog2(x *big.Int) float64 {
	f, _ := new(big.Float).SetInt(x).Float64()
	return math.Log2(f)
}

// TestSessionBudget checks that a server and its copies count the
// coefficients they mask against one budget and refuse beyond it, without
// counting a refused batch.
func TestSessionBudget(t *testing.T) {
	// 2^13 coefficients: four ciphertexts of N = 2^11.
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4, LogMaxValues: 13})
	srv, err := NewServer(tc.params, tc.pk, tc.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := srv.ShallowCopy()
	r := rand.New(rand.NewPCG(21, 22))
	x := randomVector(r, tc.params.MaxSlots(), 3)
	ct := tc.computedCiphertext(t, x, 3)
	n := int64(tc.params.N())
	if _, err := srv.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct, ct}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Masked(); got != 3*n {
		t.Fatalf("Masked = %d after three ciphertexts, want %d", got, 3*n)
	}
	_, err = cp.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct, ct})
	if err == nil || !strings.Contains(err.Error(), "exceed the session's 8192") {
		t.Fatalf("two more ciphertexts: %v", err)
	}
	if got := cp.Masked(); got != 3*n {
		t.Fatalf("Masked = %d after a refusal, want %d", got, 3*n)
	}
	// The fourth fits; a fifth is refused by either.
	if _, err := srv.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct}); err != nil {
		t.Fatalf("fourth ciphertext: %v", err)
	}
	for _, s := range []*Server{srv, cp} {
		if _, err := s.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct}); err == nil || !strings.Contains(err.Error(), "exceed the session's") {
			t.Fatalf("fifth ciphertext: %v", err)
		}
	}
	if got := srv.Masked(); got != 4*n {
		t.Fatalf("Masked = %d, want %d", got, 4*n)
	}
	// A fresh server has its own session.
	if tc.server.Masked() > 4*n {
		t.Fatalf("the test context's server shares the budget")
	}
}
