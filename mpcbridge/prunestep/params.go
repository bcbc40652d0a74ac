package prunestep

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// MinTheta is θ_min: a pruning threshold must exceed it. After an attention
// block a padding row receives exactly zero attention (the key mask zeroes
// its column), so its score is 0 up to the rounding and the noise of the
// calls in slots (about 1e-5) and any θ > θ_min prunes it. That makes every kept row a real
// token, which is what lets the masks of the next layer be the public
// all-valid masks of the kept count (see the package documentation).
const MinTheta = 1e-3

// ringBits is the ring of the comparisons' score shares: 2^64 (the low
// words of the shuffle's ring shares modulo 2^128, shuffle.Ring128).
const ringBits = 64

// statBits is the statistical parameter of the ring-to-integer conversion
// (mpcbridge/README.md section 4), for all the values of one step jointly.
const statBits = 40

// convBits is the width of the conversion masks: b' is uniform in
// [0, 2^convBits). A value v with |v| < 2^(B+F) is then within
// 2^(B+F-convBits) of the value-independent -b', and the m = (n-1)·d values
// of a step within m·2^(B+F-convBits) jointly, at most 2^-statBits while
// log2(m) + B + F <= convBits - statBits = 48 (Parameters.checkConversion).
// The integer shares v - b' and b' have at most convBits+1 bits, below
// MaxShareBits.
const convBits = 88

// maxValueBits bounds B + F: |2^F·x| < 2^22 leaves 26 bits of the joint
// budget for the number of converted values (2^26 = 67 M, 85,000 rows of
// d = 768), and every score fits the comparisons' K-bit signed fixed
// point for K >= 24.
const maxValueBits = 22

// DefaultCompareBits is the default ring width K of the garbled comparison.
const DefaultCompareBits = 64

// ParametersLiteral is the unchecked description of the pruning step;
// NewParameters validates it. A zero field means its documented default.
type ParametersLiteral struct {
	// Share gives the fixed-point format of the shares
	// (share.ParametersLiteral: LogBound B, FracBits F; Lambda enters the
	// fingerprint only).
	// Its FracBits is also the fixed-point F of the comparisons, so the
	// score shares need no rescaling (a shift of a ring share is not exact).
	// LogBound + FracBits must be at most 22, so that the ring-to-integer
	// conversion hides the (n-1)·d values of a step to 2^-40 jointly for
	// every layout up to 2^26 values (see convBits).
	Share share.ParametersLiteral
	// CompareBits is the ring width K of the garbled comparisons (0:
	// DefaultCompareBits = 64). Ring shares modulo 2^64 reduce exactly to
	// any K; a smaller K halves the circuit at K = 32 but requires every
	// score and threshold to fit K signed bits: B + F + 1 < K.
	CompareBits int
	// KeepGroup, when not zero, hides the number of rows above θ: each
	// step keeps a multiple of KeepGroup rows, CLS included (capped at the
	// rows entering it), adding the best-scoring rows below θ, so that only
	// the rounded count is revealed (gc's top-K circuit; see the package
	// documentation). A power of two from 2 to gc.MaxBucket.
	KeepGroup int
	// ScoreFracBits is the fixed-point F of the scores' shares and of the
	// comparisons with θ and β (0: Share.FracBits). Scores are about 1/n
	// and θ about 1e-3, so a step on shares may take them with more
	// fraction bits than the hidden state's (mpcbridge/layers gives F + 4):
	// from FracBits to FracBits + LogBound, a score then below
	// 2^(LogBound - (ScoreFracBits - FracBits)).
	ScoreFracBits int
}

// Parameters are the validated, immutable parameters of the pruning step.
// Both parties must hold equal Parameters (the request message carries a
// fingerprint and the client checks it).
type Parameters struct {
	share  share.Parameters
	cmp    gc.Params
	argmax gc.Params // RevealLabelShares' top-1 circuit: the client alone learns the argmax
	topk   gc.Params // with a KeepGroup: the top-K comparison of the step
	group  int
	scoreF int // the scores' and comparisons' fraction bits
}

// NewParameters validates lit and fills in the defaults.
func NewParameters(lit ParametersLiteral) (Parameters, error) {
	sp, err := share.NewParameters(lit.Share)
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	k := lit.CompareBits
	if k == 0 {
		k = DefaultCompareBits
	}
	b, f := sp.LogBound(), sp.FracBits()
	switch {
	case b+f > maxValueBits:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBound %d + FracBits %d = %d exceeds %d: values of 2^%d would not be hidden to 2^-%d by the ring-to-integer conversion",
			b, f, b+f, maxValueBits, b+f, statBits)
	case k < 2 || k > ringBits:
		return Parameters{}, fmt.Errorf("cannot NewParameters: CompareBits %d not in [2, %d]", k, ringBits)
	case b+f+1 >= k:
		return Parameters{}, fmt.Errorf("cannot NewParameters: CompareBits %d too small for scores of 2^%d at %d fraction bits", k, b, f)
	case lit.KeepGroup != 0 && (lit.KeepGroup < 2 || lit.KeepGroup > gc.MaxBucket || lit.KeepGroup&(lit.KeepGroup-1) != 0):
		return Parameters{}, fmt.Errorf("cannot NewParameters: KeepGroup %d is not a power of two in [2, %d]", lit.KeepGroup, gc.MaxBucket)
	case lit.ScoreFracBits != 0 && (lit.ScoreFracBits < f || lit.ScoreFracBits > f+b):
		return Parameters{}, fmt.Errorf("cannot NewParameters: ScoreFracBits %d not in [FracBits, FracBits + LogBound] = [%d, %d]", lit.ScoreFracBits, f, f+b)
	}
	sf := lit.ScoreFracBits
	if sf == 0 {
		sf = f
	}
	p := Parameters{share: sp, group: lit.KeepGroup, scoreF: sf}
	if err := p.newCircuits(k, b, f); err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	return p, nil
}

// newCircuits sets the comparisons' Params of p at K = k: the step's at
// the scores' fraction bits (with a KeepGroup also its top-K circuit's,
// for scores whose shares are below 2^(b+f)) and RevealLabelShares' at
// F = f.
func (p *Parameters) newCircuits(k, b, f int) error {
	sf := p.scoreF
	var err error
	if p.group > 0 {
		// The top-K circuit compares K = B + F + 2 bits: a score is below
		// 2^B in magnitude (Rows), so round(2^F·x) and the rank offset
		// below fit B + F + 2 signed bits and the low bits of the shares
		// determine it exactly; the sorting network, whose cost grows with
		// the key width, then compares 24 bits instead of 64 at the
		// engine's B = 6, F = 16.
		p.topk, err = gc.NewParams(gc.ParamsLiteral{K: b + f + 2, F: sf, OT: gc.IKNP,
			KeepGroup: p.group, KeepBase: 1, RankShift: max(0, sf-rankBits)})
		if err != nil {
			return err
		}
	}
	if p.cmp, err = gc.NewParams(gc.ParamsLiteral{K: k, F: sf, OT: gc.IKNP}); err != nil {
		return err
	}
	p.argmax, err = gc.NewParams(argmaxLiteral(f))
	return err
}

// argmaxLiteral returns the Params of RevealLabelShares' argmax at F = f:
// gc's top-K circuit with KeepGroup 2 and KeepBase 1 keeps exactly one
// score when none exceeds θ (θ is the largest K-bit value), the largest,
// the first of equal ones by the tie order (the label index), at the full
// 64 bits (logits are not bounded by B), and only the evaluator (the
// client) learns which.
func argmaxLiteral(f int) gc.ParamsLiteral {
	return gc.ParamsLiteral{K: ringBits, F: f, OT: gc.IKNP, KeepGroup: 2, KeepBase: 1, EvaluatorOnly: true}
}

// rankBits sets the resolution of the top-K ranking (KeepGroup): scores are
// ranked in bins of 2^-rankBits ≈ MinTheta, centred on multiples of it,
// and ties go to the lower row index. The noise of a padding row's zero
// score (about 1e-5) stays inside the bin of 0, so the padding rows an
// inference keeps are the first ones, as in the plaintext rule (Decide),
// instead of those with the largest noise.
const rankBits = 10

// rankOffset is what the top-K comparison adds to the scores and the
// thresholds (centring the bins on multiples of 2^-rankBits): half a bin,
// in the comparison's fixed point.
func (p Parameters) rankOffset() uint64 {
	if d := p.topk.Literal().RankShift; d > 0 {
		return 1 << uint(d-1)
	}
	return 0
}

// Literal returns the literal of p with the defaults filled in.
func (p Parameters) Literal() ParametersLiteral {
	return ParametersLiteral{Share: p.share.Literal(), CompareBits: p.cmp.K(), KeepGroup: p.group, ScoreFracBits: p.scoreF}
}

// ScoreFracBits returns the fixed-point F of the scores and comparisons.
func (p Parameters) ScoreFracBits() int { return p.scoreF }

// KeepGroup returns the group of the kept counts (0: counts not rounded).
func (p Parameters) KeepGroup() int { return p.group }

// Share returns the parameters of the conversions.
func (p Parameters) Share() share.Parameters { return p.share }

// Compare returns the parameters of the garbled comparisons.
func (p Parameters) Compare() gc.Params { return p.cmp }

// FracBits returns F, the fixed-point fraction bits of every share.
func (p Parameters) FracBits() int { return p.share.FracBits() }

// valid reports whether p came from NewParameters.
func (p Parameters) valid() bool { return p.cmp.K() != 0 }

// MaxRows returns the largest n (CLS included) one step accepts: the
// comparisons take at most MaxScores shuffled rows.
func (p Parameters) MaxRows() int { return p.cmp.MaxScores() + 1 }

// checkConversion checks that the ring-to-integer conversion of a step on
// rows x cols hides its (rows-1)·cols values to 2^-statBits jointly.
func (p Parameters) checkConversion(rows, cols int) error {
	m := uint64(max(rows-1, 0)) * uint64(max(cols, 0))
	budget := convBits - statBits - p.share.LogBound() - p.share.FracBits()
	if budget < 0 || budget < 64 && m > 1<<budget {
		return fmt.Errorf("%d x %d rows would convert %d values, more than the 2^%d that masks of %d bits hide to 2^-%d jointly at LogBound %d, FracBits %d",
			rows, cols, m, max(budget, 0), convBits, statBits, p.share.LogBound(), p.share.FracBits())
	}
	return nil
}

// encodeThresholds checks θ and β and returns them in the comparison's
// fixed point (with a KeepGroup, the top-K comparison's, plus its rank
// offset).
func (p Parameters) encodeThresholds(theta, beta float64) (uint64, uint64, error) {
	if math.IsNaN(theta) || !(theta > MinTheta) {
		return 0, 0, fmt.Errorf("threshold θ = %g must exceed θ_min = %g (padding rows would survive)", theta, MinTheta)
	}
	if math.IsNaN(beta) || math.IsInf(beta, 0) || math.IsInf(theta, 0) {
		return 0, 0, fmt.Errorf("thresholds θ = %g, β = %g must be finite", theta, beta)
	}
	cmp, off := p.cmp, 0.0
	if p.group > 0 {
		cmp, off = p.topk, math.Ldexp(float64(p.rankOffset()), -p.topk.F())
	}
	t, err := cmp.Encode(theta + off)
	if err != nil {
		return 0, 0, fmt.Errorf("threshold θ: %w", err)
	}
	b, err := cmp.Encode(beta + off)
	if err != nil {
		return 0, 0, fmt.Errorf("threshold β: %w", err)
	}
	return t, b, nil
}

// fingerprint is the digest of p that the request message carries: the
// parties must agree on it. It covers the step's own parameters only, not
// the CKKS parameters (the step encrypts nothing), as six big-endian
// int32s: LogBound, Lambda, FracBits, CompareBits, KeepGroup (0: none) and
// the scores' fraction bits. Version 2 of the encoding (version 1 also
// hashed the CKKS parameters and the removed ciphertext path's fields).
func fingerprint(p Parameters) [32]byte {
	h := sha256.New()
	h.Write([]byte("cipherprune/mpcbridge/prunestep v2\x00"))
	var b [4]byte
	sl := p.share.Literal()
	for _, v := range []int{sl.LogBound, sl.Lambda, sl.FracBits, p.cmp.K(), p.group, p.scoreF} {
		binary.BigEndian.PutUint32(b[:], uint32(int32(v)))
		h.Write(b[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
