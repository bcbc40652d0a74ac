package matmul

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// TestMaskWidth pins the widths of the benchmark's parameters and checks
// the formulas: β = λ + ceil(LogMaxValues/2) + V + 1, Q > 2^(β+3), and the
// session's statistical distance at most 2^-(λ+1).
func TestMaskWidth(t *testing.T) {
	ring, err := polymat.NewParametersFromLiteral(polymat.N12)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewParameters(ring, benchLiteral)
	if err != nil {
		t.Fatal(err)
	}
	// F = 16, G = 5, B = 3, By = 8: the largest Fw is 20, V = 50 (2^49
	// plus the noise terms), β = 40 + 14 + 50 + 1 = 105, and 2^108 < Q.
	pins := []struct {
		name      string
		got, want int
	}{
		{"Fw", p.WeightFracBits(), 20},
		{"V", p.ValueBits(), 50},
		{"β", p.MaskBits(), 105},
		{"k", p.CompressBits(), 15},
		{"bits per output coefficient", p.OutWidth(), 94},
	}
	for _, pin := range pins {
		if pin.got != pin.want {
			t.Errorf("%s = %d, want %d", pin.name, pin.got, pin.want)
		}
	}
	if sd := p.SessionBound(); sd > math.Ldexp(1, -41) {
		t.Errorf("session bound %g above 2^-41", sd)
	}
	for _, lit := range []ParametersLiteral{
		benchLiteral, testLiteral,
		{LogBound: 0, LogBoundOut: 2, LogMaxValues: 40},
		{LogBound: 4, LogBoundOut: 10, Lambda: 50, LogMaxValues: 20},
		{LogBound: -4, LogBoundOut: 0, FracBits: 20, GuardBits: 3},
	} {
		p, err := NewParameters(ring, lit)
		if err != nil {
			t.Fatalf("%+v: %v", lit, err)
		}
		if want := p.Lambda() + (p.LogMaxValues()+1)/2 + p.ValueBits() + 1; p.MaskBits() != want {
			t.Errorf("%+v: β = %d, want %d", lit, p.MaskBits(), want)
		}
		if ring.Q().Cmp(new(big.Int).Lsh(big.NewInt(1), uint(p.MaskBits()+3))) <= 0 {
			t.Errorf("%+v: Q below 2^(β+3)", lit)
		}
		if sd := p.SessionBound(); sd > math.Ldexp(1, -p.Lambda()-1) {
			t.Errorf("%+v: session bound %g above 2^-(λ+1)", lit, sd)
		}
		// The value bound holds for the worst input: 2^(G+F+Fw+By) plus the
		// noise terms.
		n := float64(ring.N())
		bound := math.Ldexp(1, p.GuardBits()+p.FracBits()+p.WeightFracBits()+p.LogBoundOut()) +
			20*n*math.Ldexp(1, p.WeightFracBits()+p.LogBoundOut()-p.LogBound()) + 20*(2*n+1)
		if bound > math.Ldexp(1, p.ValueBits()) {
			t.Errorf("%+v: 2^V below the value bound", lit)
		}
	}
}

// TestParametersErrors checks the literal checks.
func TestParametersErrors(t *testing.T) {
	ring, _ := polymat.NewParametersFromLiteral(polymat.N12)
	for _, tt := range []struct {
		lit ParametersLiteral
		err string
	}{
		{ParametersLiteral{LogBound: 3, LogBoundOut: 40}, "no WeightFracBits"},
		{ParametersLiteral{LogBound: 3, LogBoundOut: 8, WeightFracBits: 30}, "log2 Q >"},
		{ParametersLiteral{Lambda: 30}, "Lambda"},
		{ParametersLiteral{LogMaxValues: 41}, "LogMaxValues"},
		{ParametersLiteral{Chunk: MaxChunk + 1}, "Chunk"},
		{ParametersLiteral{LogBound: -20}, "LogBound"},
		{ParametersLiteral{FracBits: 41}, "FracBits"},
		{ParametersLiteral{GuardBits: -1}, "GuardBits"},
		{ParametersLiteral{WeightFracBits: 7}, "WeightFracBits"},
	} {
		if _, err := NewParameters(ring, tt.lit); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%+v: error %v, want one containing %q", tt.lit, err, tt.err)
		}
	}
	// The literal round-trips with its defaults filled in.
	p, _ := NewParameters(ring, benchLiteral)
	p2, err := NewParameters(ring, p.Literal())
	if err != nil || p2.fingerprint != p.fingerprint || p2.maskBits != p.maskBits {
		t.Fatalf("literal does not round-trip: %v", err)
	}
}

// ih3Counts returns, for s in [0, 3w-3], the number of ways to write s as
// a sum of three integers in [0, w): w³ times the probability function.
func ih3Counts(w int) []float64 {
	tri := func(m int) float64 {
		if m < 0 {
			return 0
		}
		return float64(m+2) * float64(m+1) / 2
	}
	c := make([]float64, 3*w-2)
	for s := range c {
		c[s] = tri(s) - 3*tri(s-w) + 3*tri(s-2*w) - tri(s-3*w)
	}
	return c
}

// TestIH3Constant computes J = Σ (sqrt(f(x+1)) - sqrt(f(x)))² for the
// masks' distribution at widths 2^4..2^16. w²·J exceeds its continuous
// limit I/4 = 1.14052 by less than 1/w (I = 2·sqrt(3)·ln(2+sqrt(3)) =
// 4.56208, the Fisher information of the sum of three uniforms on [0, 1)),
// so it is below ih3J = 1.15 from w = 2^7 on; the masks have w = 2^(β+1)
// >= 2^50. It also checks the inequality the proof rests on,
// H²(M, M+v) <= v²·J/2, with Hellinger distances computed exactly.
func TestIH3Constant(t *testing.T) {
	const limit = 1.1405190
	for lw := 4; lw <= 16; lw++ {
		w := 1 << lw
		counts := ih3Counts(w)
		w3 := math.Pow(float64(w), 3)
		// sqrt(a) - sqrt(b) = (a - b)/(sqrt(a) + sqrt(b)), with the counts
		// exact in float64: no cancellation.
		var sum, j float64
		prev := 0.0 // count at -1
		step := func(a, b float64) {
			d := (a - b) / (math.Sqrt(a) + math.Sqrt(b))
			j += d * d / w3
		}
		for _, v := range counts {
			sum += v
			step(v, prev)
			prev = v
		}
		step(0, prev) // down to the count at 3w-2, zero
		if sum != w3 {
			t.Fatalf("w = %d: counts sum to %v, want %v", w, sum, w3)
		}
		f := make([]float64, len(counts))
		for i, v := range counts {
			f[i] = v / w3
		}
		ww := float64(w) * float64(w) * j
		if ww > limit+1/float64(w) || ww < limit-1e-9 {
			t.Errorf("w = 2^%d: w²·J = %.6f not in [%.6f, %.6f + 1/w]", lw, ww, limit, limit)
		}
		if lw >= 7 && ww > ih3J {
			t.Errorf("w = 2^%d: w²·J = %.6f above %.2f", lw, ww, ih3J)
		}
		if lw == 6 {
			for v := 1; v <= 8; v++ {
				// H² = 1 - Σ sqrt(f(x)·f(x+v)).
				bc := 0.0
				for x := 0; x+v < len(f); x++ {
					bc += math.Sqrt(f[x] * f[x+v])
				}
				if h2 := 1 - bc; h2 > float64(v*v)*j/2*(1+1e-9) {
					t.Errorf("w = %d, v = %d: H² = %g above v²·J/2 = %g", w, v, h2, float64(v*v)*j/2)
				}
			}
		}
	}
}

// TestMaskSampler checks the masks' range and their first two moments.
func TestMaskSampler(t *testing.T) {
	for _, bits := range []int{10, 63, 64, 100, 105} {
		s, err := newMaskSampler(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), bits)
		if err != nil {
			t.Fatal(err)
		}
		m := make([]share.Int128, 20000)
		s.Sample(m)
		scale := math.Ldexp(1, -bits)
		var mean, sq float64
		for _, x := range m {
			if x.BitLen() > bits+2 {
				t.Fatalf("β = %d: mask of %d bits", bits, x.BitLen())
			}
			f := x.Float64() * scale
			if f < -3 || f >= 3 {
				t.Fatalf("β = %d: mask %v outside [-3·2^β, 3·2^β)", bits, f)
			}
			mean += f
			sq += f * f
		}
		mean /= float64(len(m))
		variance := sq/float64(len(m)) - mean*mean
		// Three uniforms on [-1, 1): mean -3/2^(β+1) ≈ 0, variance 3·(1/3) = 1.
		if math.Abs(mean) > 0.03 || math.Abs(variance-1) > 0.05 {
			t.Errorf("β = %d: mean %.4f, variance %.4f, want 0 and 1", bits, mean, variance)
		}
	}
	if _, err := newMaskSampler(bytes.NewReader(nil), 10); err == nil {
		t.Error("a sampler without randomness was built")
	}
}

// TestSessionBudget checks that a server refuses to mask more outputs than
// the session's bound covers.
func TestSessionBudget(t *testing.T) {
	lit := testLiteral
	lit.LogMaxValues = 10 // 1024 outputs
	tc := newTestContext(t, polymat.N12, lit)
	r := rand.New(rand.NewPCG(15, 16))
	srv, err := NewServer(tc.p, tc.pk, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr := tc.newProblem(t, r, polymat.Dims{Rows: 4, In: 10, Out: 100}, polymat.Block{}, false)
	for k := 0; k < 2; k++ {
		a, b, _, _ := tc.run(t, "pipe", srv, pr, tc.fixedX(pr), nil)
		checkShares(t, a, b, tc.want(pr, tc.fixedX(pr)))
	}
	if got := srv.Masked(); got != 800 {
		t.Fatalf("Masked = %d, want 800", got)
	}
	ws, err := NewWeights(bg(), tc.p, pr.lay, pr.w, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.MatMul(bg(), replay(nil), pr.lay, ws, nil)
	if err == nil || !strings.Contains(err.Error(), "exceed the session's 1024 masked outputs") {
		t.Fatalf("third product: %v", err)
	}
	if got := srv.Masked(); got != 800 {
		t.Fatalf("Masked = %d after a refusal, want 800", got)
	}
}

// TestPlanWeights plans a small model's matrices under a budget that fits
// some of their pre-encoded plaintexts, runs every product as the plan
// says (pre-encoded or on the fly, with its block) and checks the shares;
// the plan counts the protocol's output width, and ChooseBlock stays
// pre-encoded within its bound.
func TestPlanWeights(t *testing.T) {
	tc := newTestContext(t, polymat.N12, testLiteral)
	r := rand.New(rand.NewPCG(17, 18))
	mats := []polymat.Dims{{Rows: 4, In: 64, Out: 300}, {Rows: 4, In: 300, Out: 64}, {Rows: 4, In: 64, Out: 64}}
	unbounded, err := tc.p.PlanWeights(mats, -1)
	if err != nil {
		t.Fatal(err)
	}
	budget := unbounded.Matrices[0].PlaintextBytes
	plan, err := tc.p.PlanWeights(mats, budget)
	if err != nil {
		t.Fatal(err)
	}
	if plan.PreEncodedBytes > budget || plan.PreEncoded == 0 || plan.PreEncoded == len(mats) {
		t.Fatalf("plan pre-encodes %d matrices in %d bytes, budget %d", plan.PreEncoded, plan.PreEncodedBytes, budget)
	}
	for k, c := range plan.Matrices {
		lay, err := polymat.NewLayout(tc.ring, mats[k], c.Block)
		if err != nil {
			t.Fatal(err)
		}
		if want := tc.p.CostModel().Estimate(tc.ring, lay, c.PreEncoded); c != want {
			t.Fatalf("matrix %d: %+v, the protocol's estimate %+v", k, c, want)
		}
		pr := tc.newProblem(t, r, mats[k], c.Block, true)
		pr.onTheFly = !c.PreEncoded
		a, b, _, _ := tc.run(t, "pipe", nil, pr, tc.fixedX(pr), nil)
		checkShares(t, a, b, tc.want(pr, tc.fixedX(pr)))
	}
	c, err := tc.p.ChooseBlock(mats[0], budget)
	if err != nil || !c.PreEncoded || c.PlaintextBytes > budget {
		t.Fatalf("ChooseBlock: %+v, %v", c, err)
	}
	if _, err := tc.p.ChooseBlock(mats[0], 1); err == nil {
		t.Fatal("ChooseBlock found a block within 1 byte")
	}
}
