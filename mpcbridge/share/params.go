package share

import (
	"fmt"
	"math/big"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// Defaults and limits of ParametersLiteral.
const (
	// DefaultLambda is the statistical security parameter λ of the masks
	// (docs/design.md, "Parties, secrets and what leaks"): the masked polynomial the client decrypts is
	// within statistical distance 2^-(λ+1) of a message-independent one.
	DefaultLambda = 40
	// MinLambda is the smallest λ accepted.
	MinLambda = 40
	// DefaultFracBits is F, the fixed-point fractional bits of the shares.
	DefaultFracBits = 16
	// DefaultMaxBatch is the default bound on the ciphertexts of one batch.
	DefaultMaxBatch = 128
	// MaxMaxBatch bounds ParametersLiteral.MaxBatch.
	MaxMaxBatch = 4096
	// maxShareBits bounds the bit length of a share (|share| < 2^maxShareBits)
	// so that sums of two shares never wrap in Int128.
	maxShareBits = 126
)

// ParametersLiteral is the unchecked description of the conversion
// protocols; NewParameters validates it. A zero field means the default
// where one is documented.
type ParametersLiteral struct {
	// LogBound is B: every slot value x_i of a converted ciphertext
	// satisfies |x_i| <= 2^B, and its noise is below 2^B·Δ in the
	// coefficient domain. Public. Any value in [-32, 48].
	LogBound int
	// Lambda is the statistical security parameter λ (0: DefaultLambda;
	// otherwise at least MinLambda).
	Lambda int
	// FracBits is F, the fractional bits of the fixed-point shares
	// (0: DefaultFracBits; at most 60).
	FracBits int
	// MaxBatch bounds the ciphertexts of one batch, and so the size of one
	// message (0: DefaultMaxBatch; at most MaxMaxBatch).
	MaxBatch int
}

// Parameters are validated, immutable protocol parameters.
type Parameters struct {
	logBound, lambda, fracBits, maxBatch int
}

// NewParameters validates lit and fills in the defaults.
func NewParameters(lit ParametersLiteral) (Parameters, error) {
	p := Parameters{logBound: lit.LogBound, lambda: lit.Lambda, fracBits: lit.FracBits, maxBatch: lit.MaxBatch}
	if p.lambda == 0 {
		p.lambda = DefaultLambda
	}
	if p.fracBits == 0 {
		p.fracBits = DefaultFracBits
	}
	if p.maxBatch == 0 {
		p.maxBatch = DefaultMaxBatch
	}
	switch {
	case p.logBound < -32 || p.logBound > 48:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBound %d not in [-32, 48]", p.logBound)
	case p.lambda < MinLambda || p.lambda > 128:
		return Parameters{}, fmt.Errorf("cannot NewParameters: Lambda %d not in [%d, 128]", p.lambda, MinLambda)
	case p.fracBits < 1 || p.fracBits > 60:
		return Parameters{}, fmt.Errorf("cannot NewParameters: FracBits %d not in [1, 60]", p.fracBits)
	case p.maxBatch < 1 || p.maxBatch > MaxMaxBatch:
		return Parameters{}, fmt.Errorf("cannot NewParameters: MaxBatch %d not in [1, %d]", p.maxBatch, MaxMaxBatch)
	}
	return p, nil
}

// Literal returns the literal of p, defaults filled in.
func (p Parameters) Literal() ParametersLiteral {
	return ParametersLiteral{LogBound: p.logBound, Lambda: p.lambda, FracBits: p.fracBits, MaxBatch: p.maxBatch}
}

// LogBound returns B.
func (p Parameters) LogBound() int { return p.logBound }

// Lambda returns the statistical security parameter λ.
func (p Parameters) Lambda() int { return p.lambda }

// FracBits returns F, the fractional bits of the shares.
func (p Parameters) FracBits() int { return p.fracBits }

// MaxBatch returns the largest number of ciphertexts in one batch.
func (p Parameters) MaxBatch() int { return p.maxBatch }

// ceilLog2 returns ceil(log2(x)) for a finite x > 0.
func ceilLog2(x *big.Float) int {
	mant := new(big.Float)
	exp := x.MantExp(mant) // x = mant·2^exp, mant in [0.5, 1)
	if mant.Cmp(big.NewFloat(0.5)) == 0 {
		return exp - 1
	}
	return exp
}

// MaskBits returns the mask width b = λ + logN + ceil(log2(2^B·scale)) + 1
// for ciphertexts of scale scale in a ring of degree 2^logN: the masks are
// uniform in [-2^b, 2^b).
func (p Parameters) MaskBits(logN int, scale rlwe.Scale) (int, error) {
	if scale.Value.Sign() <= 0 || scale.Value.IsInf() {
		return 0, fmt.Errorf("cannot MaskBits: scale %v is not positive and finite", &scale.Value)
	}
	b := p.lambda + logN + p.logBound + ceilLog2(&scale.Value) + 1
	if b < 1 || b > maxShareBits-2 {
		return 0, fmt.Errorf("cannot MaskBits: mask width %d bits not in [1, %d]", b, maxShareBits-2)
	}
	return b, nil
}

// MaskLevel returns the level the server drops a ciphertext to before
// masking it: the lowest level whose modulus Q_l exceeds 2^(b+2), with b
// from MaskBits. It fails, naming the bits needed and available, when even
// level maxLevel (the ciphertext's level) is too small.
func (p Parameters) MaskLevel(params hefloat.Parameters, scale rlwe.Scale, maxLevel int) (level, maskBits int, err error) {
	if maxLevel < 0 || maxLevel > params.MaxLevel() {
		return 0, 0, fmt.Errorf("cannot MaskLevel: level %d not in [0, %d]", maxLevel, params.MaxLevel())
	}
	b, err := p.MaskBits(params.LogN(), scale)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot MaskLevel: %w", err)
	}
	bound := new(big.Int).Lsh(big.NewInt(1), uint(b+2))
	ringQ := params.RingQ()
	for l := 0; l <= maxLevel; l++ {
		if ringQ.AtLevel(l).Modulus().Cmp(bound) > 0 {
			return l, b, nil
		}
	}
	have := ringQ.AtLevel(maxLevel).Modulus().BitLen()
	return 0, 0, fmt.Errorf("cannot MaskLevel: level %d has a %d-bit modulus, the mask (b=%d bits) needs more than %d bits: refresh earlier or lower LogBound", maxLevel, have, b, b+2)
}

// shareBits bounds the bit length of a slot share decoded from a
// polynomial whose coefficients are below 2^(b+1): every slot is a sum of
// at most N such coefficients divided by the scale, then multiplied by
// 2^F, plus one for the rounding. Shares must fit it (and Int128).
func (p Parameters) shareBits(logN, maskBits int, scale rlwe.Scale) int {
	return maskBits + 1 + logN - (ceilLog2(&scale.Value) - 1) + p.fracBits + 1
}

// typicalShareBits is the size of the shares in practice: the mask
// coefficients are independent, so a slot is about sqrt(N) of them.
func (p Parameters) typicalShareBits(logN, maskBits int, scale rlwe.Scale) int {
	return maskBits + (logN+1)/2 - (ceilLog2(&scale.Value) - 1) + p.fracBits
}

// checkShareBits checks that shares decoded from masks of maskBits bits at
// scale fit Int128 and the codec's precision.
func (p Parameters) checkShareBits(logN, maskBits int, scale rlwe.Scale) error {
	if sb := p.shareBits(logN, maskBits, scale); sb > maxShareBits {
		return fmt.Errorf("shares of up to %d bits exceed the %d-bit limit: lower LogBound or FracBits", sb, maxShareBits)
	}
	return checkCodecBits(logN, p.typicalShareBits(logN, maskBits, scale))
}
