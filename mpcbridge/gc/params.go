package gc

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// MaxBucket is the largest number of scores one comparison step may carry
// (a BERT input has at most 512 tokens).
const MaxBucket = 512

// defaultBuckets are the circuit sizes used when ParamsLiteral.Buckets is
// nil: powers of two from 8 to MaxBucket. A call with m scores runs the
// circuit of the smallest bucket >= m, so it pays for at most twice its
// size, and at most seven circuits are ever compiled per K.
var defaultBuckets = []int{8, 16, 32, 64, 128, 256, 512}

// OT selects the oblivious transfer that hands the evaluator the wire labels
// of its own input bits.
type OT uint8

const (
	// IKNP is the IKNP OT extension (semi-honest, the library's ot.COT)
	// seeded by 128 Chou-Orlandi base OTs: one constant public-key phase per
	// call, then 48 bytes and a few AES calls per evaluator input bit. It is
	// the default (the zero value).
	IKNP OT = iota
	// ChouOrlandi runs one Chou-Orlandi base OT (P-256) per evaluator input
	// bit. It saves one message flight but costs about three scalar
	// multiplications per bit; it exists for comparison and for tiny inputs.
	ChouOrlandi
)

// String returns the OT's name.
func (o OT) String() string {
	switch o {
	case IKNP:
		return "IKNP"
	case ChouOrlandi:
		return "ChouOrlandi"
	default:
		return fmt.Sprintf("OT(%d)", uint8(o))
	}
}

// ParamsLiteral is the unchecked, serializable description of a comparison
// step. Turn it into Params with NewParams.
type ParamsLiteral struct {
	// K is the ring bit width: shares, scores and thresholds are K-bit
	// two's-complement integers, i.e. only their low K bits are used
	// (2 <= K <= 64). Additive shares modulo 2^64 may be compared with a
	// smaller K, since reducing both shares modulo 2^K is exact, provided
	// every score and threshold fits in K signed bits. The circuit has
	// 3K non-XOR gates per score, so K sets its size.
	K int `json:"k"`
	// F is the number of fraction bits of the fixed-point encoding
	// (0 <= F < K). The circuit does not depend on it; Encode and Decode do,
	// and both parties must agree on it.
	F int `json:"f"`
	// OT selects the oblivious transfer; the zero value is IKNP.
	OT OT `json:"ot"`
	// Buckets are the public circuit sizes, strictly increasing multiples
	// of 8 no larger than MaxBucket; nil means the powers of two from 8 to
	// MaxBucket. A call with m scores runs the smallest bucket >= m.
	Buckets []int `json:"buckets,omitempty"`
	// EvaluatorOnly gives the bits to the evaluator alone: the garbler
	// sends the output decoding as always but does not read the output
	// labels back, so it learns nothing of the result (Garble returns nil
	// bit vectors), and the evaluator cannot be caught reporting a wrong
	// output (semi-honest either way). For results the garbler must not
	// see: an inference's label (mpcbridge/prunestep's RevealLabel).
	EvaluatorOnly bool `json:"evaluator_only,omitempty"`
	// KeepGroup, when not zero, selects the top-K circuit (topk.go): the
	// number of kept scores is rounded up so that it plus KeepBase is a
	// multiple of KeepGroup (capped at m), by keeping the best-scoring
	// dropped scores, and only that rounded count is revealed. A power of
	// two from 2 to MaxBucket; the buckets must be powers of two. Such
	// Params are used with GarbleTopK and EvaluateTopK.
	KeepGroup int `json:"keep_group,omitempty"`
	// KeepBase is the number of rows kept outside the call that count
	// towards the rounding (mpcbridge/prunestep's CLS row: 1), in [0,
	// KeepGroup).
	KeepBase int `json:"keep_base,omitempty"`
	// RankShift is the number of low score bits the top-K ranking ignores
	// (0 <= RankShift < K): scores equal after an arithmetic shift right by
	// RankShift are ranked by their tie order. It makes the ranking blind to
	// noise below 2^RankShift.
	RankShift int `json:"rank_shift,omitempty"`
}

// DefaultParamsLiteral compares K = 64-bit shares (uint64 shares used as they
// are) with F = 16 fraction bits, over IKNP. F must equal the fraction bits
// of the HE-to-shares conversion that produced the scores.
var DefaultParamsLiteral = ParamsLiteral{K: 64, F: 16, OT: IKNP}

// Params are validated, immutable comparison parameters. Both parties must
// hold equal Params: Garble and Evaluate check this before anything secret
// is sent. The zero value is invalid.
type Params struct {
	k, f     int
	ot       OT
	buckets  []int
	evalOnly bool
	group    int // KeepGroup; 0: the comparison circuit
	base     int // KeepBase
	shift    int // RankShift
	hash     [sha256.Size]byte
}

// NewParams checks lit and returns the Params it describes.
func NewParams(lit ParamsLiteral) (Params, error) {
	if lit.K < 2 || lit.K > 64 {
		return Params{}, fmt.Errorf("cannot NewParams: K = %d outside [2, 64]", lit.K)
	}
	if lit.F < 0 || lit.F >= lit.K {
		return Params{}, fmt.Errorf("cannot NewParams: F = %d outside [0, K=%d)", lit.F, lit.K)
	}
	if lit.OT != IKNP && lit.OT != ChouOrlandi {
		return Params{}, fmt.Errorf("cannot NewParams: unknown OT %v", lit.OT)
	}
	buckets := lit.Buckets
	if buckets == nil {
		buckets = defaultBuckets
	}
	if len(buckets) == 0 {
		return Params{}, fmt.Errorf("cannot NewParams: no buckets")
	}
	for i, b := range buckets {
		// Multiples of 8 keep the IKNP batch (bucket*K OTs) a whole number of
		// bytes, which the library's IKNP code assumes.
		if b < 8 || b > MaxBucket || b%8 != 0 {
			return Params{}, fmt.Errorf("cannot NewParams: bucket %d is not a multiple of 8 in [8, %d]", b, MaxBucket)
		}
		if i > 0 && b <= buckets[i-1] {
			return Params{}, fmt.Errorf("cannot NewParams: buckets %v not strictly increasing", buckets)
		}
	}
	if err := checkKeepGroup(lit, buckets); err != nil {
		return Params{}, fmt.Errorf("cannot NewParams: %w", err)
	}
	p := Params{k: lit.K, f: lit.F, ot: lit.OT, buckets: slices.Clone(buckets), evalOnly: lit.EvaluatorOnly,
		group: lit.KeepGroup, base: lit.KeepBase, shift: lit.RankShift}
	p.hash = p.computeHash()
	return p, nil
}

// computeHash is the digest the two parties compare in their hello messages.
func (p Params) computeHash() [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("cipherprune/mpcbridge/gc params v1\x00"))
	var b [4]byte
	for _, v := range append([]int{p.k, p.f, int(p.ot), len(p.buckets)}, p.buckets...) {
		binary.BigEndian.PutUint32(b[:], uint32(v))
		h.Write(b[:])
	}
	if p.evalOnly { // absent otherwise, so the digests of earlier Params stay
		h.Write([]byte("evaluator only"))
	}
	if p.group > 0 { // likewise
		h.Write([]byte("top-K"))
		for _, v := range []int{p.group, p.base, p.shift} {
			binary.BigEndian.PutUint32(b[:], uint32(v))
			h.Write(b[:])
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// valid reports whether p came from NewParams.
func (p Params) valid() bool { return p.k != 0 }

// K returns the ring bit width.
func (p Params) K() int { return p.k }

// F returns the number of fixed-point fraction bits.
func (p Params) F() int { return p.f }

// OT returns the oblivious transfer in use.
func (p Params) OT() OT { return p.ot }

// Buckets returns a copy of the public circuit sizes.
func (p Params) Buckets() []int { return slices.Clone(p.buckets) }

// MaxScores returns the largest number of scores one call accepts.
func (p Params) MaxScores() int {
	if !p.valid() {
		return 0
	}
	return p.buckets[len(p.buckets)-1]
}

// Literal returns the literal p was built from (with Buckets filled in).
func (p Params) Literal() ParamsLiteral {
	return ParamsLiteral{K: p.k, F: p.f, OT: p.ot, Buckets: p.Buckets(), EvaluatorOnly: p.evalOnly,
		KeepGroup: p.group, KeepBase: p.base, RankShift: p.shift}
}

// KeepGroup returns the group of the top-K circuit (0: the comparison
// circuit).
func (p Params) KeepGroup() int { return p.group }

// EvaluatorOnly reports whether only the evaluator learns the bits.
func (p Params) EvaluatorOnly() bool { return p.evalOnly }

// Equal reports whether p and other describe the same comparison step.
func (p Params) Equal(other Params) bool { return p.hash == other.hash }

// Bucket returns the circuit size used for m scores: the smallest bucket
// >= m. The bucket is public, as m is (it is the number of rows entering the
// layer).
func (p Params) Bucket(m int) (int, error) {
	if !p.valid() {
		return 0, fmt.Errorf("cannot Bucket: invalid Params (use NewParams)")
	}
	if m < 0 || m > p.MaxScores() {
		return 0, fmt.Errorf("cannot Bucket: %d scores outside [0, %d]", m, p.MaxScores())
	}
	for _, b := range p.buckets {
		if b >= m {
			return b, nil
		}
	}
	panic("unreachable: m <= MaxScores")
}

// mask returns 2^K - 1.
func (p Params) mask() uint64 {
	if p.k == 64 {
		return math.MaxUint64
	}
	return 1<<uint(p.k) - 1
}

// signed returns the K-bit two's-complement value of x's low K bits.
func (p Params) signed(x uint64) int64 {
	sh := uint(64 - p.k)
	return int64(x<<sh) >> sh
}

// Greater is the plaintext rule the circuit computes: a > b, both read as
// K-bit two's-complement integers (bits above K ignored). For a share pair,
// a is (c + v) mod 2^K.
func (p Params) Greater(a, b uint64) bool { return p.signed(a) > p.signed(b) }

// Encode returns x in the K-bit fixed-point encoding with F fraction bits,
// round(x * 2^F) in two's complement, or an error if that does not fit.
func (p Params) Encode(x float64) (uint64, error) {
	if !p.valid() {
		return 0, fmt.Errorf("cannot Encode: invalid Params (use NewParams)")
	}
	v := math.Round(math.Ldexp(x, p.f))
	lim := math.Ldexp(1, p.k-1)
	if math.IsNaN(v) || v < -lim || v >= lim {
		return 0, fmt.Errorf("cannot Encode: %g outside the K=%d, F=%d range [%g, %g)", x, p.k, p.f,
			math.Ldexp(-1, p.k-1-p.f), math.Ldexp(1, p.k-1-p.f))
	}
	return uint64(int64(v)) & p.mask(), nil
}

// Decode returns the value of x's low K bits in the fixed-point encoding.
func (p Params) Decode(x uint64) float64 {
	if !p.valid() {
		return math.NaN()
	}
	return math.Ldexp(float64(p.signed(x)), -p.f)
}
