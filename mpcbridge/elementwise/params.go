package elementwise

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Defaults and limits of ParametersLiteral.
const (
	// DefaultLogBound is B: every output value is within 2^B, as in the
	// engine's conversions (|GELU| <= 17, exp <= e^4, 1/x <= 23, ... for
	// the shipped models).
	DefaultLogBound = 8
	// MaxLogBound bounds ParametersLiteral.LogBound.
	MaxLogBound = 30
	// DefaultLambda is λ: everything the client decrypts in a session is
	// within statistical distance 2^-(λ+1) of a value-independent view.
	DefaultLambda = share.DefaultLambda
	// DefaultLogMaxValues is log2 of the coefficients a Server masks in one
	// session (share.DefaultLogMaxValues, 2^28): BERT-base at n = 512 masks
	// about 9,300 output ciphertexts of 2^14 coefficients, 2^27.2.
	DefaultLogMaxValues = share.DefaultLogMaxValues
	// DefaultFracBits is F, the fractional bits of the shares.
	DefaultFracBits = share.DefaultFracBits
	// DefaultChunk is the number of ciphertexts per message.
	DefaultChunk = 8
	// MaxChunk bounds ParametersLiteral.Chunk: 64 ciphertexts of two
	// operands at the top level of Interactive14 are 100 MB (of
	// Elementwise14 95 MB), within mpcbridge/wire's default frame limit of
	// 256 MiB. At N = 2^15 the top level holds more: NewParameters also
	// refuses a Chunk whose largest message (MsgInput of two operands at
	// the top level) exceeds that limit, which allows at most 45 at
	// Elementwise15 (3.0 MB per ciphertext and operand) and 46 at
	// ckks.Interactive15.
	MaxChunk = 64
	// DefaultMaxValues bounds the length of one call's vectors: 2^24
	// values (BERT-base's attention at n = 1024 is 12·2^20).
	DefaultMaxValues = 1 << 24
	// MaxMaxValues bounds ParametersLiteral.MaxValues.
	MaxMaxValues = 1 << 28
)

// ParametersLiteral is the unchecked description of the protocol;
// NewParameters validates it. A zero field means the default where one is
// documented. Everything in it is public.
type ParametersLiteral struct {
	// Preset names the CKKS parameter set, one of this package's
	// (Presets) or a ckks one (PresetByName; checked against the HE
	// standard's 128-bit bound): "" means DefaultPreset, Elementwise14.
	Preset string
	// AllowInsecure admits the insecure test presets (tests only).
	AllowInsecure bool
	// LogBound is B: every output value (a polynomial's or a product's)
	// satisfies |y| <= 2^B, its noise included (0: DefaultLogBound; at most
	// MaxLogBound). It sets the mask width of the way back.
	LogBound int
	// Lambda is λ (0: DefaultLambda; at least share.MinLambda).
	Lambda int
	// LogMaxValues is log2 of the coefficients one Server may mask in its
	// session, N per output ciphertext (0: DefaultLogMaxValues; at most
	// share.MaxLogMaxValues): the mask width grows by one bit for every two
	// bits of it, and the server refuses to mask more
	// (share.ParametersLiteral.LogMaxValues).
	LogMaxValues int
	// FracBits is F, the fractional bits of the shares (0:
	// DefaultFracBits).
	FracBits int
	// Chunk is the number of ciphertexts per message (0: DefaultChunk; at
	// most MaxChunk).
	Chunk int
	// MaxValues bounds the length of the vectors of one call (0:
	// DefaultMaxValues; at most MaxMaxValues).
	MaxValues int
}

// Parameters are validated, immutable protocol parameters. All of them are
// public.
type Parameters struct {
	lit         ParametersLiteral
	preset      ckks.Preset
	params      hefloat.Parameters
	share       share.Parameters
	maskLevel   int
	maskBits    int
	fingerprint uint32
	// noFold evaluates every recipe as ckks.Evaluator.ApplyFunc does,
	// change of basis included, on inputs encoded at Δ: the evaluation
	// before the folding, kept for the benchmarks' side-by-side runs.
	noFold bool
}

// NewParameters validates lit: the preset's security, the fields' ranges,
// and that the mask of the way back fits a level of the ring.
func NewParameters(lit ParametersLiteral) (Parameters, error) {
	if lit.Preset == "" {
		lit.Preset = DefaultPreset
	}
	lit.LogBound = orDefault(lit.LogBound, DefaultLogBound)
	lit.Lambda = orDefault(lit.Lambda, DefaultLambda)
	lit.LogMaxValues = orDefault(lit.LogMaxValues, DefaultLogMaxValues)
	lit.FracBits = orDefault(lit.FracBits, DefaultFracBits)
	lit.Chunk = orDefault(lit.Chunk, DefaultChunk)
	lit.MaxValues = orDefault(lit.MaxValues, DefaultMaxValues)
	switch {
	case lit.LogBound < -lit.FracBits || lit.LogBound > MaxLogBound:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBound %d not in [-F, %d] = [%d, %d]", lit.LogBound, MaxLogBound, -lit.FracBits, MaxLogBound)
	case lit.Chunk < 1 || lit.Chunk > MaxChunk:
		return Parameters{}, fmt.Errorf("cannot NewParameters: Chunk %d not in [1, %d]", lit.Chunk, MaxChunk)
	case lit.MaxValues < 1 || lit.MaxValues > MaxMaxValues:
		return Parameters{}, fmt.Errorf("cannot NewParameters: MaxValues %d not in [1, %d]", lit.MaxValues, MaxMaxValues)
	}
	preset, err := PresetByName(lit.Preset, lit.AllowInsecure)
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	params, err := preset.Params()
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	// Every conversion carries one ciphertext: a batch of one.
	sp, err := share.NewParameters(share.ParametersLiteral{LogBound: lit.LogBound, Lambda: lit.Lambda, LogMaxValues: lit.LogMaxValues, FracBits: lit.FracBits, MaxBatch: 1})
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	p := Parameters{lit: lit, preset: preset, params: params, share: sp}
	if p.maskLevel, p.maskBits, err = sp.MaskLevel(params, params.DefaultScale(), params.MaxLevel()); err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	// An output's scale may exceed Δ a little: Δ²/q after a rescale by a
	// prime q below Δ, Δ·(Δ/q)² after a squaring of such a product. Its
	// mask must still fit the same level, so that both parties know the
	// level of every output in advance: checked at Δ·r², r the largest Δ/q
	// over the primes above the mask level (1.00013·Δ at Elementwise14;
	// the mask width is the least for the session's bound, so such a
	// scale costs no bit, where 2Δ would cost one that the mask level of
	// Elementwise14 and Elementwise15 has not).
	delta := params.DefaultScale().Float64()
	r := 1.0
	for _, q := range params.Q()[p.maskLevel+1:] {
		r = max(r, delta/float64(q))
	}
	if l, _, err := sp.MaskLevel(params, rlwe.NewScale(delta*r*r), params.MaxLevel()); err != nil || l != p.maskLevel {
		return Parameters{}, fmt.Errorf("cannot NewParameters: an output's mask at scale %.6g·Δ needs another level than %d (LogBound %d or LogMaxValues %d too large for preset %s)", r*r, p.maskLevel, lit.LogBound, lit.LogMaxValues, lit.Preset)
	}
	// The output shares must go back into a call (LayerNorm's 1/√v into
	// the product): their typical size, β + 1 + logN/2 - log2 Δ + 1 + F
	// bits (a slot decodes a sum of N mask coefficients of standard
	// deviation 2^β), must fit the slot codec.
	if sb, limit := sp.TypicalShareBits(params.LogN(), p.maskBits, params.DefaultScale()), share.CodecBits(params.LogN()); sb > limit {
		return Parameters{}, fmt.Errorf("cannot NewParameters: output shares of about %d bits exceed the %d bits the slot codec encodes: lower LogBound or FracBits", sb, limit)
	}
	// The largest message, MsgInput of two operands at the top level (c0
	// of every ciphertext), must fit mpcbridge/wire's default frame limit.
	if size := fixedHeader + 2 + 2*lit.Chunk*(4+entryOverhead+p.polyBytes(params.MaxLevel())); size > wire.DefaultMaxFrame {
		most := (wire.DefaultMaxFrame - fixedHeader - 2) / (2 * (4 + entryOverhead + p.polyBytes(params.MaxLevel())))
		return Parameters{}, fmt.Errorf("cannot NewParameters: Chunk %d: a message of two operands at the top level would be %d bytes, beyond mpcbridge/wire's frame limit of %d (preset %s allows at most %d)", lit.Chunk, size, wire.DefaultMaxFrame, lit.Preset, most)
	}
	if p.maskLevel+1 > params.MaxLevel() {
		return Parameters{}, fmt.Errorf("cannot NewParameters: the mask level %d leaves no level for a product (preset %s has %d)", p.maskLevel, lit.Preset, params.MaxLevel())
	}
	h := fnv.New32a()
	h.Write([]byte(lit.Preset))
	var buf [8]byte
	for _, v := range []int{params.LogN(), params.MaxLevel(), lit.LogBound, lit.Lambda, lit.FracBits, lit.Chunk, lit.LogMaxValues} {
		binary.LittleEndian.PutUint64(buf[:], uint64(int64(v)))
		h.Write(buf[:])
	}
	p.fingerprint = h.Sum32()
	return p, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Literal returns the literal of p with every default filled in.
func (p Parameters) Literal() ParametersLiteral { return p.lit }

// Params returns the CKKS parameters of the preset.
func (p Parameters) Params() hefloat.Parameters { return p.params }

// Share returns the parameters of the conversions (mpcbridge/share):
// LogBound, Lambda and FracBits as in p, one ciphertext per batch.
func (p Parameters) Share() share.Parameters { return p.share }

// LogBound returns B.
func (p Parameters) LogBound() int { return p.lit.LogBound }

// Lambda returns λ.
func (p Parameters) Lambda() int { return p.lit.Lambda }

// FracBits returns F.
func (p Parameters) FracBits() int { return p.lit.FracBits }

// Chunk returns the number of ciphertexts per message.
func (p Parameters) Chunk() int { return p.lit.Chunk }

// MaxValues returns the largest vector length of one call.
func (p Parameters) MaxValues() int { return p.lit.MaxValues }

// Slots returns the values one ciphertext holds.
func (p Parameters) Slots() int { return p.params.MaxSlots() }

// Ciphertexts returns ceil(n/Slots): the ciphertexts per operand of a call
// on n values.
func (p Parameters) Ciphertexts(n int) int { return (n + p.Slots() - 1) / p.Slots() }

// MaskLevel returns the level every output ciphertext is masked at: the
// lowest whose modulus holds the mask (share.Parameters.MaskLevel at the
// default scale; 1 at Elementwise14 and Elementwise15, 2 at Interactive14
// for B <= 8).
func (p Parameters) MaskLevel() int { return p.maskLevel }

// LogMaxValues returns log2 of the coefficients one session may mask.
func (p Parameters) LogMaxValues() int { return p.lit.LogMaxValues }

// MaskBits returns the mask width β at the default scale
// (share.Parameters.MaskBits): every coefficient of the way back is masked
// by the sum of three integers uniform in [-2^β, 2^β), β = λ +
// LogMaxValues/2 + B + log2 Δ + 2 for an even LogMaxValues (100 at
// Elementwise14 with the defaults, 97 at Interactive14).
func (p Parameters) MaskBits() int { return p.maskBits }

// SessionBound returns the bound on the statistical distance of what the
// client sees of a whole session, 2^LogMaxValues masked coefficients
// (2^LogMaxValues/N output ciphertexts), from a view independent of the
// values and of the noise: sqrt(2^LogMaxValues·1.15)·2^(B+1)·Δ/2^(β+1)
// <= 2^-(λ+1) (share.Parameters.SessionBound; Hellinger composition).
// The server refuses to mask more (share.Server.Masked).
func (p Parameters) SessionBound() float64 {
	sd, err := p.share.SessionBound(p.params.DefaultScale())
	if err != nil {
		panic(err) // checked by NewParameters
	}
	return sd
}

// MaxCiphertexts returns the output ciphertexts one session may mask:
// 2^LogMaxValues/N.
func (p Parameters) MaxCiphertexts() int64 {
	return int64(1) << p.lit.LogMaxValues / int64(p.params.N())
}

// MulLevel returns the level both operands of a product are encrypted at:
// one level above the mask level.
func (p Parameters) MulLevel() int { return p.maskLevel + 1 }

// MulScaledLevel returns the level of x in the scaled product w ⊙ x ⊙ y
// (Server.MulScaled): one above MulLevel, for the product by the server's
// plaintext w and its rescale; y is at MulLevel. It fails when the preset
// has no level above MulLevel.
func (p Parameters) MulScaledLevel() (int, error) {
	l := p.MulLevel() + 1
	if l > p.params.MaxLevel() {
		return 0, fmt.Errorf("cannot MulScaledLevel: level %d needed, preset %s has %d", l, p.lit.Preset, p.params.MaxLevel())
	}
	return l, nil
}

// PolyLevel returns the level the input of fn (variant d of reg) is
// encrypted at: the recipe's depth above the mask level (PolyDepth). It
// fails when the preset has not that many levels.
func (p Parameters) PolyLevel(reg *approx.Registry, fn approx.Func, d approx.Degree) (int, error) {
	if reg == nil {
		return 0, fmt.Errorf("cannot PolyLevel: nil registry")
	}
	if !fn.Valid() || !d.Valid() {
		return 0, fmt.Errorf("cannot PolyLevel: invalid function %d or degree %d", fn, d)
	}
	depth := p.PolyDepth(reg.Recipe(fn, d))
	l := p.maskLevel + depth
	if l > p.params.MaxLevel() {
		return 0, fmt.Errorf("cannot PolyLevel: %s/%s needs %d levels above the mask level %d, preset %s has %d in all", fn, d, depth, p.maskLevel, p.lit.Preset, p.params.MaxLevel())
	}
	return l, nil
}

// MulPolyLevel returns the level of y in x ⊙ fn(y): PolyLevel + 1 (x is at
// MulLevel).
func (p Parameters) MulPolyLevel(reg *approx.Registry, fn approx.Func, d approx.Degree) (int, error) {
	l, err := p.PolyLevel(reg, fn, d)
	if err != nil {
		return 0, err
	}
	if l+1 > p.params.MaxLevel() {
		return 0, fmt.Errorf("cannot MulPolyLevel: %s/%s and the product need level %d, preset %s has %d", fn, d, l+1, p.lit.Preset, p.params.MaxLevel())
	}
	return l + 1, nil
}

// Folded reports whether the server folds rec's change of basis
// t = scalar·x + constant into the conversion (Server.Poly): both parties
// encode their shares at Δ·scalar, so the ciphertext holds t at scale Δ
// and no level is spent on it. Every recipe is folded but those with
// Newton steps, which need the raw input x beside t.
func (p Parameters) Folded(rec *approx.Recipe) bool {
	if p.noFold {
		return false
	}
	switch rec.Post() {
	case approx.PostNone, approx.PostSquare:
		return true
	default:
		return rec.Steps() == 0
	}
}

// PolyDepth returns the levels the server's evaluation of rec consumes:
// approx.Recipe.Cost().Depth, less the change of basis when it is folded
// (Folded).
func (p Parameters) PolyDepth(rec *approx.Recipe) int {
	c := rec.Cost()
	if !p.Folded(rec) {
		return c.Depth
	}
	return c.PolyDepth + c.PostDepth + c.OutputScaleDepth
}
