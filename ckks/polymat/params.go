package polymat

import (
	"fmt"
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/kernels"
)

// heStandardMaxLogQP is the largest log2(QP) that the homomorphic
// encryption security standard (Albrecht et al., 2018, Table 1) gives 128
// bits of classical security for a uniform ternary secret and an error of
// standard deviation about 3.2, by ring degree log2(N).
var heStandardMaxLogQP = map[int]int{10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881}

// MaxLimbs bounds the primes of a ring: the bridge reconstructs
// coefficients modulo Q in 128-bit arithmetic.
const MaxLimbs = 4

// ParametersLiteral is the unchecked description of the ring of the
// polynomial products; NewParametersFromLiteral validates it. Exactly one of
// LogQ and Q is set. The ring has no special modulus P: the products need
// no key switching.
type ParametersLiteral struct {
	// LogN is log2 of the ring degree N.
	LogN int
	// LogQ are the bit sizes of the NTT-friendly primes to generate.
	LogQ []int `json:",omitempty"`
	// Q are explicit primes (q = 1 mod 2N).
	Q []uint64 `json:",omitempty"`
}

// The rings measured for the linear layers (package documentation,
// "Choice of the ring"). N12 is the default: the products cost the same
// multiply-adds per weight at every N, and the smaller ring needs half the
// pre-encoded weight memory for the same bytes on the wire.
var (
	// N12 is N = 2^12 with the largest NTT-friendly primes (1 mod 2^14)
	// below 2^54 and 2^55: log2 Q = 108.99999 < 109, the standard's bound
	// for 128-bit security.
	N12 = ParametersLiteral{LogN: 12, Q: []uint64{18014398508400641, 36028797018652673}}
	// N13 is N = 2^13 with the two largest such primes below 2^58:
	// log2 Q < 116, of 218 allowed.
	N13 = ParametersLiteral{LogN: 13, Q: []uint64{288230376150876161, 288230376150712321}}
)

// Parameters are validated, immutable ring parameters.
type Parameters struct {
	rlwe    rlwe.Parameters
	lit     ParametersLiteral
	moduli  []uint64
	widths  []int
	kernels *kernels.Params
}

// NewParametersFromLiteral validates lit: the degree, at most MaxLimbs
// primes of at most 60 bits, and log2(Q) within the HE standard's bound for
// 128-bit security at that degree.
func NewParametersFromLiteral(lit ParametersLiteral) (Parameters, error) {
	maxLogQ, ok := heStandardMaxLogQP[lit.LogN]
	if !ok {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: LogN %d not in [10, 15]", lit.LogN)
	}
	if (len(lit.LogQ) == 0) == (len(lit.Q) == 0) {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: set exactly one of LogQ and Q")
	}
	if n := max(len(lit.LogQ), len(lit.Q)); n > MaxLimbs {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: %d primes, at most %d", n, MaxLimbs)
	}
	rl, err := rlwe.NewParametersFromLiteral(rlwe.ParametersLiteral{
		LogN:    lit.LogN,
		LogQ:    lit.LogQ,
		Q:       lit.Q,
		Xs:      rlwe.DefaultXs,
		Xe:      rlwe.DefaultXe,
		NTTFlag: true,
	})
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: %w", err)
	}
	moduli := rl.Q()
	for i, q := range moduli {
		if q%(2*uint64(rl.N())) != 1 {
			return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: prime %d (%d) is not 1 mod 2N", i, q)
		}
	}
	if logQ := rl.LogQ(); logQ > float64(maxLogQ) {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: log2(Q) = %.2f exceeds %d, the HE standard's bound for 128-bit security at N = 2^%d", logQ, maxLogQ, lit.LogN)
	}
	p := Parameters{rlwe: rl, moduli: moduli}
	p.lit = ParametersLiteral{LogN: lit.LogN, Q: append([]uint64(nil), moduli...)}
	for _, q := range moduli {
		p.widths = append(p.widths, bits.Len64(q-1))
	}
	if p.kernels, err = kernels.NewParamsQ(rl); err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParametersFromLiteral: %w", err)
	}
	return p, nil
}

// Literal returns the literal of p with the primes made explicit.
func (p Parameters) Literal() ParametersLiteral {
	return ParametersLiteral{LogN: p.lit.LogN, Q: append([]uint64(nil), p.lit.Q...)}
}

// RLWE returns the underlying RLWE parameters (keys, encryptors).
func (p Parameters) RLWE() rlwe.Parameters { return p.rlwe }

// N returns the ring degree.
func (p Parameters) N() int { return p.rlwe.N() }

// LogN returns log2 of the ring degree.
func (p Parameters) LogN() int { return p.rlwe.LogN() }

// Limbs returns the number of primes L of Q.
func (p Parameters) Limbs() int { return len(p.moduli) }

// Moduli returns the primes of Q.
func (p Parameters) Moduli() []uint64 { return append([]uint64(nil), p.moduli...) }

// Widths returns the bit width of every prime (ceil(log2 q)).
func (p Parameters) Widths() []int { return append([]int(nil), p.widths...) }

// LogQ returns log2(Q).
func (p Parameters) LogQ() float64 { return p.rlwe.LogQ() }

// Q returns the modulus Q as a big integer.
func (p Parameters) Q() *big.Int { return p.rlwe.QBigInt() }

// RingQ returns the RNS ring modulo Q.
func (p Parameters) RingQ() *ring.Ring { return p.rlwe.RingQ() }

// KernelParams returns the constants of the ring for package kernels, to
// open a backend for NewEvaluatorWithBackend.
func (p Parameters) KernelParams() *kernels.Params { return p.kernels }

// PolyBytes returns the size of one polynomial modulo Q, packed with
// ceil(log2 q_i) bits per coefficient of limb i.
func (p Parameters) PolyBytes() int {
	w := 0
	for _, x := range p.widths {
		w += x
	}
	return (p.N()*w + 7) / 8
}

// Equal reports whether p and o describe the same ring.
func (p Parameters) Equal(o Parameters) bool {
	if p.LogN() != o.LogN() || len(p.moduli) != len(o.moduli) {
		return false
	}
	for i := range p.moduli {
		if p.moduli[i] != o.moduli[i] {
			return false
		}
	}
	return true
}

// String names the ring, e.g. "N=2^12 Q=54+55 bits".
func (p Parameters) String() string {
	s := fmt.Sprintf("N=2^%d Q=", p.LogN())
	for i, w := range p.widths {
		if i > 0 {
			s += "+"
		}
		s += fmt.Sprint(w)
	}
	return s + " bits"
}
