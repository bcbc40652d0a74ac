package sharedmul

import (
	"errors"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
)

// Defaults and limits of ParametersLiteral.
const (
	// DefaultFracBits is F, the fractional bits of the shares.
	DefaultFracBits = 16
	// DefaultGuardBits is G: the operands are encoded at scale 2^(F+G).
	DefaultGuardBits = 5
	// DefaultLambda is λ: 2^-(λ+1) bounds the statistical distance of the
	// client's view over a session.
	DefaultLambda = 40
	// MinLambda is the smallest λ accepted.
	MinLambda = 40
	// DefaultLogMaxValues is log2 of the outputs one Server masks:
	// BERT-base's attention products at n = 512 are 2^26.2 outputs.
	DefaultLogMaxValues = 27
)

// ParametersLiteral is the unchecked description of the protocol; fields
// whose zero value has a default say so. All of it is public.
type ParametersLiteral struct {
	// LogBoundX is Bx: every entry of the reconstructed left operand X
	// satisfies |x| <= 2^Bx (no default: 0 means |x| <= 1, softmax's
	// probabilities). A public promise of the caller.
	LogBoundX int
	// LogBoundY is By, the same for the right operand Y.
	LogBoundY int
	// FracBits is F (0: DefaultFracBits).
	FracBits int
	// GuardBits is G (0: DefaultGuardBits).
	GuardBits int
	// Lambda is λ (0: DefaultLambda).
	Lambda int
	// LogMaxValues is log2 of the outputs one Server may mask (0:
	// DefaultLogMaxValues; at most 40).
	LogMaxValues int
	// ExactOutputs sends the output coefficients whole instead of rounded
	// to multiples of 2^k (Parameters.RoundBits): 15 more bits each on
	// polymat.N13, for tests that read c1 exactly.
	ExactOutputs bool
}

// Parameters are validated, immutable protocol parameters on a ring.
type Parameters struct {
	ring polymat.Parameters
	lit  ParametersLiteral
	rnd  *rounder
}

// NewParameters validates lit for the ring and fills its defaults. The
// widths depend on the layout too (ValueBits, MaskBits); CheckLayout says
// whether a layout fits the ring.
func NewParameters(ring polymat.Parameters, lit ParametersLiteral) (Parameters, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&lit.FracBits, DefaultFracBits)
	def(&lit.GuardBits, DefaultGuardBits)
	def(&lit.Lambda, DefaultLambda)
	def(&lit.LogMaxValues, DefaultLogMaxValues)
	var err error
	switch {
	case lit.LogBoundX < 0 || lit.LogBoundX > 30 || lit.LogBoundY < 0 || lit.LogBoundY > 30:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBoundX %d or LogBoundY %d not in [0, 30]", lit.LogBoundX, lit.LogBoundY)
	case lit.FracBits < 1 || lit.FracBits > 40:
		return Parameters{}, fmt.Errorf("cannot NewParameters: FracBits %d not in [1, 40]", lit.FracBits)
	case lit.GuardBits < 0 || lit.GuardBits > 30:
		return Parameters{}, fmt.Errorf("cannot NewParameters: GuardBits %d not in [0, 30]", lit.GuardBits)
	case lit.Lambda < MinLambda || lit.Lambda > 128:
		return Parameters{}, fmt.Errorf("cannot NewParameters: Lambda %d not in [%d, 128]", lit.Lambda, MinLambda)
	case lit.LogMaxValues < 1 || lit.LogMaxValues > 40:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogMaxValues %d not in [1, 40]", lit.LogMaxValues)
	case ring.N() == 0:
		return Parameters{}, errors.New("cannot NewParameters: zero ring")
	}
	p := Parameters{ring: ring, lit: lit}
	if p.rnd, err = newRounder(ring, p.roundBits()); err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	return p, nil
}

// roundBits is k = F + 2G - 6 - ceil(log2(sqrt(2N)/3)) + 1 (0 with
// ExactOutputs, and at least 0): the rounding of c1 to multiples of 2^k
// adds to the client's value an error of standard deviation
// 2^(k-1)·sqrt(2N)/3 (times the ternary secret), at most 2^(F+2G-6), 1/64
// of the output's last unit (mpcbridge/matmul's rule).
func (p Parameters) roundBits() int {
	if p.lit.ExactOutputs {
		return 0
	}
	n := float64(p.ring.N())
	k := p.Shift() - 6 - int(math.Ceil(math.Log2(math.Sqrt(2*n)/3))) + 1
	return max(0, k)
}

// RoundBits returns k: every output coefficient travels as round(c/2^k),
// c in [0, Q) (package documentation, "Cost").
func (p Parameters) RoundBits() int { return int(p.rnd.k) }

// OutputWidth returns the bits of a transmitted output coefficient,
// those of floor((Q-1)/2^k).
func (p Parameters) OutputWidth() int { return int(p.rnd.width) }

// Ring returns the ring of the products.
func (p Parameters) Ring() polymat.Parameters { return p.ring }

// Literal returns the literal with every default filled in.
func (p Parameters) Literal() ParametersLiteral { return p.lit }

// Shift returns F + 2G: the bits each party drops from its share of the
// product, whose scale is 2^(2F+2G).
func (p Parameters) Shift() int { return p.lit.FracBits + 2*p.lit.GuardBits }

// ValueBits returns V for lay: every value at a target before the mask,
// the product with all its noise, is below 2^V in magnitude (package
// documentation, "Budget"):
//
//	In·2^(Mx+My) + P·(20·(D0·D1·2^Mx + D1·D2·2^My) + 400·N) + 20·(2N+1),
//
// with Mx = F + G + Bx, My = F + G + By, In one product's (Per.In) and P
// the most inner blocks an output sums (Layout.MaxInner).
func (p Parameters) ValueBits(lay Layout) int {
	mx := math.Exp2(float64(p.lit.FracBits + p.lit.GuardBits + p.lit.LogBoundX))
	my := math.Exp2(float64(p.lit.FracBits + p.lit.GuardBits + p.lit.LogBoundY))
	in, n, pp := float64(lay.Per.In), float64(p.ring.N()), float64(lay.MaxInner())
	d0, d1, d2 := float64(lay.D0), float64(lay.D1), float64(lay.D2)
	v := in*mx*my + pp*(20*(d0*d1*mx+d1*d2*my)+400*n) + 20*(2*n+1)
	// The float rounding is far below the margin of the ceiling plus one.
	return int(math.Ceil(math.Log2(v) * (1 + 1e-12)))
}

// MaskBits returns β = λ + ceil(LogMaxValues/2) + V + 1 for lay: a mask is
// the sum of three integers uniform in [-2^β, 2^β).
func (p Parameters) MaskBits(lay Layout) int {
	return p.lit.Lambda + (p.lit.LogMaxValues+1)/2 + p.ValueBits(lay) + 1
}

// CheckLayout checks that lay is on the ring and that the masked values fit
// it: log2 Q > β + 3 (and β <= 123, the mask sampler's limit; the
// rounding's 2^(k-1)·(N+1) is far below 2^β - 2^V).
func (p Parameters) CheckLayout(lay Layout) error {
	if lay.N() != p.ring.N() {
		return fmt.Errorf("layout for N = %d, ring of N = %d", lay.N(), p.ring.N())
	}
	b := p.MaskBits(lay)
	if float64(b+3) >= p.ring.LogQ() || b > 123 {
		return fmt.Errorf("mask of %d bits for In = %d needs log2 Q > %d, the ring has %.2f (lower B or G, or a larger ring)", b, lay.Per.In, b+3, p.ring.LogQ())
	}
	return nil
}

// SessionBound returns the bound on the statistical distance of the
// client's view over a session for lay: sqrt(2^LogMaxValues·1.15)·2^V /
// 2^(β+1), at most 1.0724·2^-(λ+2).
func (p Parameters) SessionBound(lay Layout) float64 {
	return math.Sqrt(math.Exp2(float64(p.lit.LogMaxValues))*matmul.IH3J) * math.Exp2(float64(p.ValueBits(lay)-p.MaskBits(lay)-1))
}
