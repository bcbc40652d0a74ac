package matmul

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// Defaults and limits of ParametersLiteral.
const (
	// DefaultLambda is λ: the statistical distance of everything the client
	// sees in a session from a view independent of W is at most 2^-(λ+1).
	DefaultLambda = 40
	// MinLambda is the smallest λ accepted.
	MinLambda = 40
	// DefaultFracBits is F, the fractional bits of the shares (as in
	// mpcbridge/share).
	DefaultFracBits = 16
	// DefaultGuardBits is G: the inputs are encoded at scale 2^(F+G), so
	// that the encryption noise times W stays below 2^-3 of an output unit.
	DefaultGuardBits = 5
	// DefaultLogMaxValues is log2 of the number of outputs a Server masks
	// in one session: 2^27 covers BERT-base at n = 512 (2^25.3 outputs of
	// its linear layers) four times over.
	DefaultLogMaxValues = 27
	// DefaultChunk is the number of ciphertexts per message.
	DefaultChunk = 64
	// MaxChunk bounds ParametersLiteral.Chunk.
	MaxChunk = 1024
	// noiseBound bounds every coefficient of a fresh Gaussian error
	// (Lattigo's sampler rejects |x| > 19.2 and rounds).
	noiseBound = 20
	// maxValueBits bounds the masked values so that masks and sums fit
	// Int128 with room.
	maxValueBits = 120
)

// ParametersLiteral is the unchecked description of the protocol;
// NewParameters validates it against a ring. Fields whose zero value has a
// default say so.
type ParametersLiteral struct {
	// LogBound is B: every entry of X (the sum of the two parties' input
	// shares over 2^F) satisfies |x| <= 2^B. Public.
	LogBound int
	// LogBoundOut is By: for every column c of W, 2^B·Σ_k |W[k,c]| <=
	// 2^By, so |Y| <= 2^By. Public; NewWeights checks it on the quantized
	// weights, so the masks cover every output whatever the input.
	LogBoundOut int
	// FracBits is F (0: DefaultFracBits).
	FracBits int
	// WeightFracBits is Fw, the fractional bits of the quantized weights
	// (0: the largest the ring allows; at least 8).
	WeightFracBits int
	// GuardBits is G (0: DefaultGuardBits).
	GuardBits int
	// Lambda is λ (0: DefaultLambda).
	Lambda int
	// LogMaxValues is log2 of the number of outputs one Server may mask
	// (0: DefaultLogMaxValues; at most 40). The mask width grows by one bit
	// for every two bits of it.
	LogMaxValues int
	// Chunk is the number of ciphertexts per message (0: DefaultChunk).
	Chunk int
}

// Parameters are validated, immutable protocol parameters with the widths
// they imply. All of them are public.
type Parameters struct {
	ring                              polymat.Parameters
	logBound, logBoundOut, fracBits   int
	weightFracBits, guardBits, lambda int
	logMaxValues, chunk               int
	valueBits, maskBits, compressBits int
	outWidth                          int
	fingerprint                       uint32
}

// NewParameters validates lit for the ring and derives the widths (see the
// package documentation, "Mask width").
func NewParameters(ring polymat.Parameters, lit ParametersLiteral) (Parameters, error) {
	p := Parameters{
		ring: ring, logBound: lit.LogBound, logBoundOut: lit.LogBoundOut,
		fracBits: orDefault(lit.FracBits, DefaultFracBits), guardBits: orDefault(lit.GuardBits, DefaultGuardBits),
		lambda: orDefault(lit.Lambda, DefaultLambda), logMaxValues: orDefault(lit.LogMaxValues, DefaultLogMaxValues),
		chunk: orDefault(lit.Chunk, DefaultChunk),
	}
	switch {
	case p.fracBits < 1 || p.fracBits > 40:
		return Parameters{}, fmt.Errorf("cannot NewParameters: FracBits %d not in [1, 40]", p.fracBits)
	case p.guardBits < 0 || p.guardBits > 30:
		return Parameters{}, fmt.Errorf("cannot NewParameters: GuardBits %d not in [0, 30]", p.guardBits)
	case p.lambda < MinLambda || p.lambda > 128:
		return Parameters{}, fmt.Errorf("cannot NewParameters: Lambda %d not in [%d, 128]", p.lambda, MinLambda)
	case p.logMaxValues < 1 || p.logMaxValues > 40:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogMaxValues %d not in [1, 40]", p.logMaxValues)
	case p.chunk < 1 || p.chunk > MaxChunk:
		return Parameters{}, fmt.Errorf("cannot NewParameters: Chunk %d not in [1, %d]", p.chunk, MaxChunk)
	case p.logBound < -p.fracBits || p.logBound > 40:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBound %d not in [-F, 40] = [%d, 40]", p.logBound, -p.fracBits)
	case p.logBoundOut < -p.fracBits || p.logBoundOut > 60:
		return Parameters{}, fmt.Errorf("cannot NewParameters: LogBoundOut %d not in [-F, 60] = [%d, 60]", p.logBoundOut, -p.fracBits)
	case ring.Limbs() < 1:
		return Parameters{}, fmt.Errorf("cannot NewParameters: empty ring")
	}
	if lit.WeightFracBits != 0 {
		p.weightFracBits = lit.WeightFracBits
		if p.weightFracBits < 8 || p.weightFracBits > 40 {
			return Parameters{}, fmt.Errorf("cannot NewParameters: WeightFracBits %d not in [8, 40]", p.weightFracBits)
		}
		if err := p.derive(); err != nil {
			return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
		}
	} else {
		var err error
		for fw := 40; fw >= 8; fw-- {
			p.weightFracBits = fw
			if err = p.derive(); err == nil {
				break
			}
		}
		if err != nil {
			return Parameters{}, fmt.Errorf("cannot NewParameters: no WeightFracBits >= 8 fits: %w", err)
		}
	}
	p.fingerprint = p.computeFingerprint()
	return p, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// derive computes the value, mask and compression widths and checks that
// the masked values fit the ring.
func (p *Parameters) derive() error {
	n := float64(p.ring.N())
	g, f, fw, b, by := p.guardBits, p.fracBits, p.weightFracBits, p.logBound, p.logBoundOut
	// |v + e| at a target, over the integers (package documentation).
	bound := math.Ldexp(1, g+f+fw+by) + noiseBound*n*math.Ldexp(1, fw+by-b) + noiseBound*(2*n+1)
	p.valueBits = int(math.Ceil(math.Log2(bound)))
	if p.valueBits > maxValueBits {
		return fmt.Errorf("values of %d bits", p.valueBits)
	}
	p.maskBits = p.lambda + (p.logMaxValues+1)/2 + p.valueBits + 1
	// Q must exceed 2^(maskBits+3): |p| < 3·2^β + 2^V + compression error
	// < 2^(β+2) <= Q/2.
	need := new(big.Int).Lsh(big.NewInt(1), uint(p.maskBits+3))
	if p.ring.Q().Cmp(need) <= 0 {
		return fmt.Errorf("the mask needs log2 Q > %d, the ring has %.2f: lower LogBoundOut, GuardBits or WeightFracBits", p.maskBits+3, p.ring.LogQ())
	}
	// The rounding of transmitted coefficients to multiples of 2^k adds an
	// error of standard deviation 2^(k-1)·sqrt(2N)/3 to the client's value:
	// at most 2^(G+Fw-6), 1/64 of the output's last unit.
	k := g + fw - 6 - int(math.Ceil(math.Log2(math.Sqrt(2*n)/3))) + 1
	p.compressBits = max(0, k)
	top := new(big.Int).Sub(p.ring.Q(), big.NewInt(1))
	if p.compressBits > 0 {
		top.Add(top, new(big.Int).Lsh(big.NewInt(1), uint(p.compressBits-1)))
		top.Rsh(top, uint(p.compressBits))
	}
	p.outWidth = top.BitLen()
	return nil
}

func (p Parameters) computeFingerprint() uint32 {
	h := fnv.New32a()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	put(uint64(p.ring.LogN()))
	for _, q := range p.ring.Moduli() {
		put(q)
	}
	for _, v := range []int{p.logBound, p.logBoundOut, p.fracBits, p.weightFracBits, p.guardBits, p.lambda, p.logMaxValues, p.chunk} {
		put(uint64(int64(v)))
	}
	return h.Sum32()
}

// Ring returns the ring of the products.
func (p Parameters) Ring() polymat.Parameters { return p.ring }

// Literal returns the literal of p with every default filled in.
func (p Parameters) Literal() ParametersLiteral {
	return ParametersLiteral{
		LogBound: p.logBound, LogBoundOut: p.logBoundOut, FracBits: p.fracBits,
		WeightFracBits: p.weightFracBits, GuardBits: p.guardBits, Lambda: p.lambda,
		LogMaxValues: p.logMaxValues, Chunk: p.chunk,
	}
}

// LogBound returns B.
func (p Parameters) LogBound() int { return p.logBound }

// LogBoundOut returns By.
func (p Parameters) LogBoundOut() int { return p.logBoundOut }

// FracBits returns F.
func (p Parameters) FracBits() int { return p.fracBits }

// WeightFracBits returns Fw.
func (p Parameters) WeightFracBits() int { return p.weightFracBits }

// GuardBits returns G.
func (p Parameters) GuardBits() int { return p.guardBits }

// Lambda returns λ.
func (p Parameters) Lambda() int { return p.lambda }

// LogMaxValues returns log2 of the outputs one session may mask.
func (p Parameters) LogMaxValues() int { return p.logMaxValues }

// ValueBits returns V: every masked value (the product at a target with
// its noise) is below 2^V in magnitude.
func (p Parameters) ValueBits() int { return p.valueBits }

// MaskBits returns β = λ + ceil(LogMaxValues/2) + V + 1: a mask is the sum
// of three integers uniform in [-2^β, 2^β).
func (p Parameters) MaskBits() int { return p.maskBits }

// CompressBits returns k: coefficients travel rounded to multiples of 2^k.
func (p Parameters) CompressBits() int { return p.compressBits }

// OutWidth returns the bits per transmitted output coefficient.
func (p Parameters) OutWidth() int { return p.outWidth }

// Shift returns G + Fw, the bits each party drops from its share.
func (p Parameters) Shift() int { return p.guardBits + p.weightFracBits }

// SessionBound returns the bound on the statistical distance of the
// client's view over a whole session (LogMaxValues outputs):
// sqrt(2^LogMaxValues · J)·2^V with J <= 1.15/2^(2β+2), at most
// 2^-(λ+1) (package documentation).
func (p Parameters) SessionBound() float64 {
	return math.Sqrt(math.Ldexp(1, p.logMaxValues)*ih3J) * math.Ldexp(1, p.valueBits-p.maskBits-1)
}

// CostModel returns the default cost model with this protocol's output
// width.
func (p Parameters) CostModel() polymat.CostModel {
	return polymat.CostModel{OutBits: float64(p.outWidth)}
}

// ChooseBlock returns the block of least modelled cost for d with the
// bytes of this protocol and pre-encoded weights (NewWeights) within
// maxWeightBytes (0: no bound).
func (p Parameters) ChooseBlock(d polymat.Dims, maxWeightBytes int64) (polymat.Cost, error) {
	if maxWeightBytes == 0 {
		maxWeightBytes = -1
	}
	return p.CostModel().ChooseBlockPreEncoded(p.ring, d, maxWeightBytes)
}

// PlanWeights returns how a server holds the weights of a model's matrices
// mats (each with the rows planned for) within budget bytes of pre-encoded
// plaintexts (0: none; negative: no bound), with the bytes of this
// protocol (polymat.CostModel.Plan): NewWeights for the matrices the plan
// pre-encodes, NewWeightsOnTheFly for the others, each with its block.
func (p Parameters) PlanWeights(mats []polymat.Dims, budget int64) (polymat.Plan, error) {
	return p.CostModel().Plan(p.ring, mats, budget)
}
