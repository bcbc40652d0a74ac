package share

import (
	"fmt"
	"math"
	"math/big"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	statmask "github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
)

// Defaults and limits of ParametersLiteral.
const (
	// DefaultLambda is the statistical security parameter λ of the masks
	// (docs/design.md, "Parties, secrets and what leaks"): the masked polynomial the client decrypts is
	// within statistical distance 2^-(λ+1) of a message-independent one.
	DefaultLambda = 40
	// MinLambda is the smallest λ accepted.
	MinLambda = 40
	// DefaultLogMaxValues is log2 of the number of coefficients a Server
	// masks in one session: 2^28 covers BERT-base at n = 512 in
	// mpcbridge/elementwise (about 9,300 ciphertexts of 2^14 coefficients,
	// 2^27.2) nearly twice over.
	DefaultLogMaxValues = 28
	// MaxLogMaxValues bounds ParametersLiteral.LogMaxValues.
	MaxLogMaxValues = 40
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
	// LogMaxValues is log2 of the number of coefficients one Server (with
	// its ShallowCopy copies) may mask in its session, the session's budget
	// (0: DefaultLogMaxValues; at most MaxLogMaxValues). The mask width
	// grows by one bit for every two bits of it; the server refuses to mask
	// beyond it.
	LogMaxValues int
	// FracBits is F, the fractional bits of the fixed-point shares
	// (0: DefaultFracBits; at most 60).
	FracBits int
	// MaxBatch bounds the ciphertexts of one batch, and so the size of one
	// message (0: DefaultMaxBatch; at most MaxMaxBatch).
	MaxBatch int
}

// Parameters are validated, immutable protocol parameters.
type Parameters struct {
	logBound, lambda, logMaxValues, fracBits, maxBatch int
}

// NewParameters validates lit and fills in the defaults.
func NewParameters(lit ParametersLiteral) (Parameters, error) {
	p := Parameters{logBound: lit.LogBound, lambda: lit.Lambda, logMaxValues: lit.LogMaxValues, fracBits: lit.FracBits, maxBatch: lit.MaxBatch}
	if p.lambda == 0 {
		p.lambda = DefaultLambda
	}
	if p.logMaxValues == 0 {
		p.logMaxValues = DefaultLogMaxValues
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
	case p.logMaxValues < 1 || p.logMaxValues > MaxLogMaxValues:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogMaxValues %d not in [1, %d]", p.logMaxValues, MaxLogMaxValues)
	case p.fracBits < 1 || p.fracBits > 60:
		return Parameters{}, fmt.Errorf("cannot NewParameters: FracBits %d not in [1, 60]", p.fracBits)
	case p.maxBatch < 1 || p.maxBatch > MaxMaxBatch:
		return Parameters{}, fmt.Errorf("cannot NewParameters: MaxBatch %d not in [1, %d]", p.maxBatch, MaxMaxBatch)
	}
	return p, nil
}

// Literal returns the literal of p, defaults filled in.
func (p Parameters) Literal() ParametersLiteral {
	return ParametersLiteral{LogBound: p.logBound, Lambda: p.lambda, LogMaxValues: p.logMaxValues, FracBits: p.fracBits, MaxBatch: p.maxBatch}
}

// LogBound returns B.
func (p Parameters) LogBound() int { return p.logBound }

// Lambda returns the statistical security parameter λ.
func (p Parameters) Lambda() int { return p.lambda }

// LogMaxValues returns log2 of the coefficients one session may mask.
func (p Parameters) LogMaxValues() int { return p.logMaxValues }

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

// ValueBits returns V = B + ceil(log2 scale) + 1: every coefficient of a
// masked polynomial's m + e is below 2^V in magnitude (package
// documentation, "Security").
func (p Parameters) ValueBits(scale rlwe.Scale) (int, error) {
	if scale.Value.Sign() <= 0 || scale.Value.IsInf() {
		return 0, fmt.Errorf("scale %v is not positive and finite", &scale.Value)
	}
	return p.logBound + ceilLog2(&scale.Value) + 1, nil
}

// MaskBits returns the mask width β for ciphertexts of scale scale: every
// coefficient is masked by the sum of three integers uniform in
// [-2^β, 2^β), and β is the least integer for which the session's
// 2^LogMaxValues masked coefficients, each of magnitude at most
// 2^(B+1)·scale, are within SessionBound <= 2^-(λ+1) of a value-independent
// view: β = ceil(λ + log2(sqrt(1.15·2^LogMaxValues)·2^(B+1)·scale))
// (package documentation, "Security"). For an even LogMaxValues and a
// scale that is a power of two this is λ + LogMaxValues/2 + V + 1 with V
// from ValueBits, mpcbridge/matmul's formula (for an odd one a bit less); a
// scale a little above a power of two (Δ²/q after a rescale by a prime q
// just below Δ) does not cost a bit more.
func (p Parameters) MaskBits(scale rlwe.Scale) (int, error) {
	x, err := p.logMaskBound(scale)
	if err != nil {
		return 0, fmt.Errorf("cannot MaskBits: %w", err)
	}
	b := int(math.Ceil(float64(p.lambda) + x))
	if b < 1 || b > statmask.MaxBits || b+2 > maxShareBits-2 {
		return 0, fmt.Errorf("cannot MaskBits: mask width %d bits not in [1, %d]", b, min(statmask.MaxBits, maxShareBits-4))
	}
	return b, nil
}

// logMaskBound returns log2(sqrt(1.15·2^LogMaxValues)·2^(B+1)·scale): the
// session bound is 2 to the power of it, less β + 1.
func (p Parameters) logMaskBound(scale rlwe.Scale) (float64, error) {
	if scale.Value.Sign() <= 0 || scale.Value.IsInf() {
		return 0, fmt.Errorf("scale %v is not positive and finite", &scale.Value)
	}
	mant := new(big.Float)
	exp := scale.Value.MantExp(mant) // scale = mant·2^exp, mant in [0.5, 1)
	m, _ := mant.Float64()
	return 0.5*(float64(p.logMaxValues)+math.Log2(statmask.IH3J)) + float64(p.logBound+1+exp) + math.Log2(m), nil
}

// SessionBound returns the bound on the statistical distance of the
// client's view of a whole session (2^LogMaxValues masked coefficients of
// ciphertexts at scale) from a view independent of the values and the
// noise: sqrt(2^LogMaxValues·1.15)·2^(B+1)·scale/2^(β+1) (Hellinger
// composition, package documentation), at most 2^-(λ+1); 1.0724·2^-(λ+2)
// for an even LogMaxValues and a scale that is a power of two.
func (p Parameters) SessionBound(scale rlwe.Scale) (float64, error) {
	b, err := p.MaskBits(scale)
	if err != nil {
		return 0, fmt.Errorf("cannot SessionBound: %w", err)
	}
	x, _ := p.logMaskBound(scale)
	return math.Exp2(x - float64(b) - 1), nil
}

// MaskLevel returns the level the server drops a ciphertext to before
// masking it: the lowest level whose modulus Q_l holds every masked
// coefficient, |v + M| <= 2^V + 3·2^β (V from ValueBits, β from MaskBits),
// below (1/2 - 2^-20)·Q_l, which the exact reconstruction needs: Q_l is
// then a little above 2^(β+2.585) (mpcbridge/matmul asks 2^(β+3), a
// simpler bound that Elementwise14's level 1 meets by 3·10^-11 of Q_1
// and its N = 2^11 test chain misses by 2·10^-11). It fails, naming the
// bits needed and available, when even level maxLevel (the ciphertext's
// level) is too small.
func (p Parameters) MaskLevel(params hefloat.Parameters, scale rlwe.Scale, maxLevel int) (level, maskBits int, err error) {
	if maxLevel < 0 || maxLevel > params.MaxLevel() {
		return 0, 0, fmt.Errorf("cannot MaskLevel: level %d not in [0, %d]", maxLevel, params.MaxLevel())
	}
	b, err := p.MaskBits(scale)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot MaskLevel: %w", err)
	}
	v, _ := p.ValueBits(scale)
	most := maskedBound(b, v)
	// Q_l·(1/2 - 2^-20) > most, that is Q_l·(2^20 - 2) > most·2^21.
	need := new(big.Int).Lsh(most.Big(new(big.Int)), 21)
	ringQ := params.RingQ()
	for l := 0; l <= maxLevel; l++ {
		q := new(big.Int).Mul(ringQ.AtLevel(l).Modulus(), big.NewInt(1<<20-2))
		if q.Cmp(need) > 0 {
			return l, b, nil
		}
	}
	have := ringQ.AtLevel(maxLevel).Modulus().BitLen()
	return 0, 0, fmt.Errorf("cannot MaskLevel: level %d has a %d-bit modulus, the mask (β=%d bits) needs more than 2·(3·2^β + 2^%d), %d bits: use a higher level or lower LogBound or LogMaxValues", maxLevel, have, b, v, most.BitLen()+1)
}

// maskedBound returns 3·2^β + 2^V, the largest magnitude of a masked
// coefficient.
func maskedBound(beta, v int) Int128 {
	return pow2(beta).Add(pow2(beta)).Add(pow2(beta)).Add(pow2(v))
}

// pow2 returns 2^e for e in [0, 126].
func pow2(e int) Int128 {
	if e >= 64 {
		return Int128{Hi: 1 << (e - 64)}
	}
	return Int128{Lo: 1 << e}
}

// shareBits bounds the bit length of a slot share decoded from a
// polynomial whose coefficients are below 2^(β+2) (a mask of three
// uniforms in [-2^β, 2^β), or a masked value): every slot is a sum of at
// most N such coefficients divided by the scale, then multiplied by 2^F,
// plus one for the rounding. Shares must fit it (and Int128).
func (p Parameters) shareBits(logN, maskBits int, scale rlwe.Scale) int {
	return maskBits + 2 + logN - (ceilLog2(&scale.Value) - 1) + p.fracBits + 1
}

// TypicalShareBits returns the size of the slot shares in practice for
// masks of maskBits = β bits at scale on a ring of 2^logN coefficients: a
// mask coefficient has standard deviation 2^β, and the coefficients are
// independent, so a slot is about sqrt(N) of them:
// β + 1 + ceil(logN/2) - (ceil(log2 scale) - 1) + F bits.
func (p Parameters) TypicalShareBits(logN, maskBits int, scale rlwe.Scale) int {
	return maskBits + 1 + (logN+1)/2 - (ceilLog2(&scale.Value) - 1) + p.fracBits
}

// checkShareBits checks that shares decoded from masks of maskBits bits at
// scale fit Int128 and the codec's precision.
func (p Parameters) checkShareBits(logN, maskBits int, scale rlwe.Scale) error {
	if sb := p.shareBits(logN, maskBits, scale); sb > maxShareBits {
		return fmt.Errorf("shares of up to %d bits exceed the %d-bit limit: lower LogBound or FracBits", sb, maxShareBits)
	}
	return checkCodecBits(logN, p.TypicalShareBits(logN, maskBits, scale))
}
