package kernels

import (
	"fmt"
	"math/big"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// MinLogN is the smallest ring degree the backends accept: Lattigo switches
// to a differently scheduled NTT below 2^4, which the kernels do not mirror.
const MinLogN = 4

// MaxModuli bounds len(Q) and len(P): Lattigo's basis extension keeps its
// per-coefficient residues in [32]uint64 arrays.
const MaxModuli = 32

// Modulus holds the constants of one RNS prime in Lattigo's conventions.
// The slices are shared and must not be modified.
type Modulus struct {
	// Q is the prime.
	Q uint64
	// MRed is ring.MRedConstant(Q): -Q^-1 mod 2^64 as Lattigo defines it.
	MRed uint64
	// BRed is ring.BRedConstant(Q): floor(2^128/Q) as {high, low} words.
	BRed [2]uint64
	// RootsForward and RootsBackward are Lattigo's NTT twiddles, powers of
	// the 2N-th root and of its inverse, in Montgomery form and bit-reversed
	// order.
	RootsForward, RootsBackward []uint64
	// NInv is N^-1 mod Q in Montgomery form.
	NInv uint64
}

// ModUpConstants are the constants of a fast exact basis extension from the
// moduli {s_i} to the moduli {d_j} (Lattigo's ring.ModUpConstants, whose
// fields are unexported and therefore regenerated here the same way).
type ModUpConstants struct {
	// SOverSiInvSi[i] is ((S/s_i)^-1 mod s_i) in Montgomery form.
	SOverSiInvSi []uint64
	// SOverSiModD[j][i] is (S/s_i mod d_j) in Montgomery form.
	SOverSiModD [][]uint64
	// VTimesSModD[j][v] is (-v*S mod d_j) for v = 0..len(s).
	VTimesSModD [][]uint64
}

// DigitConstants describe one digit of the RNS gadget decomposition: the
// group of Q moduli Start..Start+Size-1 and what extending it to the whole
// QP basis needs.
type DigitConstants struct {
	// Start and Size locate the group in the Q chain.
	Start, Size int
	// ModUp extends the group to Q ++ P (the whole chains); nil when Size is 1.
	ModUp *ModUpConstants
	// HalfModGroup[k] is floor(G/2) mod the k-th group modulus, G the group's product.
	HalfModGroup []uint64
	// HalfModQ and HalfModP are floor(G/2) mod every Q and P modulus.
	HalfModQ, HalfModP []uint64
}

// ModDownConstants are what dividing by P_0...P_levelP and rounding needs.
type ModDownConstants struct {
	// ModUp extends P_0..P_levelP to the whole Q chain.
	ModUp *ModUpConstants
	// HalfModP and HalfModQ are floor(P/2) mod each P_j (j <= levelP) and each Q_i.
	HalfModP, HalfModQ []uint64
	// PInvModQ[i] is P^-1 mod Q_i in Montgomery form; Lattigo multiplies by Q_i - PInvModQ[i].
	PInvModQ []uint64
}

// Params are the read-only constant tables every backend works from, built
// once from Lattigo parameters. A Params is safe for concurrent use.
type Params struct {
	logN    int
	nthRoot uint64
	q, p    []Modulus

	rescale [][]uint64 // ring.Ring.RescaleConstants
	qiOverF []int      // rlwe.Parameters.QiOverflowMargin(level) >> 1
	piOverF []int      // rlwe.Parameters.PiOverflowMargin(level) >> 1

	// digits[nbPi-1][group][size-1]
	digits  [][][]DigitConstants
	modDown []ModDownConstants // by levelP
}

// NewParams precomputes the tables for the standard ring of params. It
// fails for the conjugate-invariant ring, for N < 2^MinLogN, without P
// moduli or with more than MaxModuli moduli in Q or P.
func NewParams(params rlwe.Parameters) (*Params, error) {
	if params.RingType() != ring.Standard {
		return nil, fmt.Errorf("cannot NewParams: ring type %s is not supported", params.RingType())
	}
	if params.LogN() < MinLogN {
		return nil, fmt.Errorf("cannot NewParams: LogN=%d < %d", params.LogN(), MinLogN)
	}
	if params.PCount() == 0 {
		return nil, fmt.Errorf("cannot NewParams: parameters have no P moduli (key switching needs them)")
	}
	pr, err := newParams(params)
	if err != nil {
		return nil, fmt.Errorf("cannot NewParams: %w", err)
	}
	return pr, nil
}

// NewParamsQ is NewParams for a ring without key switching (no P moduli
// needed, as ckks/polymat's products): the same tables, with empty P
// tables if params has no P, so that every key-switching operation
// (UploadGadgetKey, DecomposeNTT, GadgetInnerProduct, ModDownNTT) refuses
// its operands.
func NewParamsQ(params rlwe.Parameters) (*Params, error) {
	if params.RingType() != ring.Standard {
		return nil, fmt.Errorf("cannot NewParamsQ: ring type %s is not supported", params.RingType())
	}
	if params.LogN() < MinLogN {
		return nil, fmt.Errorf("cannot NewParamsQ: LogN=%d < %d", params.LogN(), MinLogN)
	}
	pr, err := newParams(params)
	if err != nil {
		return nil, fmt.Errorf("cannot NewParamsQ: %w", err)
	}
	return pr, nil
}

func newParams(params rlwe.Parameters) (*Params, error) {
	if params.QCount() > MaxModuli || params.PCount() > MaxModuli {
		return nil, fmt.Errorf("more than %d moduli", MaxModuli)
	}

	pr := &Params{logN: params.LogN(), nthRoot: params.RingQ().NthRoot()}
	pr.q = moduliOf(params.RingQ())
	if params.PCount() > 0 {
		pr.p = moduliOf(params.RingP())
	}
	pr.rescale = params.RingQ().RescaleConstants

	pr.qiOverF = make([]int, params.QCount())
	for i := range pr.qiOverF {
		pr.qiOverF[i] = params.QiOverflowMargin(i) >> 1
	}
	pr.piOverF = make([]int, params.PCount())
	for i := range pr.piOverF {
		pr.piOverF[i] = params.PiOverflowMargin(i) >> 1
	}

	Q, P := params.Q(), params.P()
	QP := append(append([]uint64{}, Q...), P...)

	pr.digits = make([][][]DigitConstants, len(P))
	for nbPi := 1; nbPi <= len(P); nbPi++ {
		groups := (len(Q) + nbPi - 1) / nbPi
		pr.digits[nbPi-1] = make([][]DigitConstants, groups)
		for g := 0; g < groups; g++ {
			start := g * nbPi
			maxSize := min(nbPi, len(Q)-start)
			pr.digits[nbPi-1][g] = make([]DigitConstants, maxSize)
			for size := 1; size <= maxSize; size++ {
				d := DigitConstants{Start: start, Size: size}
				group := Q[start : start+size]
				half := product(group)
				half.Rsh(half, 1)
				d.HalfModGroup = residues(half, group)
				d.HalfModQ = residues(half, Q)
				d.HalfModP = residues(half, P)
				if size > 1 {
					muc := genModUpConstants(group, QP)
					d.ModUp = &muc
				}
				pr.digits[nbPi-1][g][size-1] = d
			}
		}
	}

	pr.modDown = make([]ModDownConstants, len(P))
	for levelP := range P {
		Pl := P[:levelP+1]
		muc := genModUpConstants(Pl, Q)
		half := product(Pl)
		half.Rsh(half, 1)
		pr.modDown[levelP] = ModDownConstants{
			ModUp:    &muc,
			HalfModP: residues(half, Pl),
			HalfModQ: residues(half, Q),
			PInvModQ: modDownConstants(pr.q, Pl),
		}
	}
	return pr, nil
}

func moduliOf(r *ring.Ring) []Modulus {
	m := make([]Modulus, len(r.SubRings))
	for i, s := range r.SubRings {
		m[i] = Modulus{
			Q:             s.Modulus,
			MRed:          s.MRedConstant,
			BRed:          [2]uint64{s.BRedConstant[0], s.BRedConstant[1]},
			RootsForward:  s.RootsForward,
			RootsBackward: s.RootsBackward,
			NInv:          s.NInv,
		}
	}
	return m
}

func product(moduli []uint64) *big.Int {
	p := big.NewInt(1)
	for _, m := range moduli {
		p.Mul(p, new(big.Int).SetUint64(m))
	}
	return p
}

func residues(x *big.Int, moduli []uint64) []uint64 {
	r := make([]uint64, len(moduli))
	t := new(big.Int)
	for i, m := range moduli {
		r[i] = t.Mod(x, new(big.Int).SetUint64(m)).Uint64()
	}
	return r
}

// genModUpConstants restates ring.GenModUpConstants.
func genModUpConstants(S, D []uint64) ModUpConstants {
	bredS, mredS := make([][]uint64, len(S)), make([]uint64, len(S))
	for i, s := range S {
		bredS[i], mredS[i] = ring.BRedConstant(s), ring.MRedConstant(s)
	}
	bredD, mredD := make([][]uint64, len(D)), make([]uint64, len(D))
	for j, d := range D {
		bredD[j], mredD[j] = ring.BRedConstant(d), ring.MRedConstant(d)
	}

	c := ModUpConstants{
		SOverSiInvSi: make([]uint64, len(S)),
		SOverSiModD:  make([][]uint64, len(D)),
		VTimesSModD:  make([][]uint64, len(D)),
	}
	for j := range D {
		c.SOverSiModD[j] = make([]uint64, len(S))
	}

	for i, si := range S {
		star := ring.MForm(1, si, bredS[i])
		for k, sk := range S {
			if k != i {
				star = ring.MRed(star, ring.MForm(sk, si, bredS[i]), si, mredS[i])
			}
		}
		c.SOverSiInvSi[i] = ring.ModexpMontgomery(star, int(si-2), si, mredS[i], bredS[i])

		for j, dj := range D {
			star = 1
			for k, sk := range S {
				if k != i {
					star = ring.MRed(star, ring.MForm(sk, dj, bredD[j]), dj, mredD[j])
				}
			}
			c.SOverSiModD[j][i] = ring.MForm(star, dj, bredD[j])
		}
	}

	for j, dj := range D {
		c.VTimesSModD[j] = make([]uint64, len(S)+1)
		smod := uint64(1)
		for _, si := range S {
			smod = ring.MRed(smod, ring.MForm(si, dj, bredD[j]), dj, mredD[j])
		}
		v := dj - smod
		for k := 1; k <= len(S); k++ {
			c.VTimesSModD[j][k] = ring.CRed(c.VTimesSModD[j][k-1]+v, dj)
		}
	}
	return c
}

// modDownConstants restates the P-to-Q half of Lattigo's genmodDownConstants:
// prod(P)^-1 mod q_i in Montgomery form, built by the same chain of MRed.
func modDownConstants(q []Modulus, P []uint64) []uint64 {
	c := make([]uint64, len(q))
	for i, qi := range q {
		bred := qi.BRed[:]
		var acc uint64
		for j, pj := range P {
			x := ring.MForm(ring.ModExp(pj, qi.Q-2, qi.Q), qi.Q, bred)
			if j > 0 {
				x = ring.MRed(x, acc, qi.Q, qi.MRed)
			}
			acc = x
		}
		c[i] = acc
	}
	return c
}

// N returns the ring degree.
func (p *Params) N() int { return 1 << p.logN }

// LogN returns log2 of the ring degree.
func (p *Params) LogN() int { return p.logN }

// NthRoot returns 2N, the order of the roots of unity of the NTT.
func (p *Params) NthRoot() uint64 { return p.nthRoot }

// Q returns the constants of the Q chain (read-only).
func (p *Params) Q() []Modulus { return p.q }

// P returns the constants of the P chain (read-only).
func (p *Params) P() []Modulus { return p.p }

// MaxLevelQ returns len(Q)-1.
func (p *Params) MaxLevelQ() int { return len(p.q) - 1 }

// MaxLevelP returns len(P)-1.
func (p *Params) MaxLevelP() int { return len(p.p) - 1 }

// Modulus returns the constants of the limb-th modulus of basis b (Q limbs first).
func (p *Params) Modulus(b Basis, limb int) *Modulus {
	if limb <= b.LevelQ {
		return &p.q[limb]
	}
	return &p.p[limb-b.LevelQ-1]
}

// RescaleConstants returns Lattigo's constants for dividing by Q_level:
// (-Q_level^-1 mod Q_i) in Montgomery form for i < level.
func (p *Params) RescaleConstants(level int) []uint64 { return p.rescale[level-1] }

// QiOverflow returns how many lazy products below 2Q_i can be summed at
// levelQ before a reduction (QiOverflowMargin >> 1 in Lattigo).
func (p *Params) QiOverflow(levelQ int) int { return p.qiOverF[levelQ] }

// PiOverflow is QiOverflow for the P chain.
func (p *Params) PiOverflow(levelP int) int { return p.piOverF[levelP] }

// DigitCount returns the number of digits of the RNS gadget decomposition
// of a polynomial at levelQ for a key with levelP (BaseRNSDecompositionVectorSize).
func (p *Params) DigitCount(levelQ, levelP int) int {
	return (levelQ + levelP + 1) / (levelP + 1)
}

// Digit returns the constants of the i-th digit at levelQ for a key with levelP.
func (p *Params) Digit(levelQ, levelP, i int) *DigitConstants {
	nbPi := levelP + 1
	start := i * nbPi
	size := min(nbPi, levelQ+1-start)
	return &p.digits[nbPi-1][i][size-1]
}

// ModDown returns the constants of the division by P_0...P_levelP.
func (p *Params) ModDown(levelP int) *ModDownConstants { return &p.modDown[levelP] }

// checkLevels reports whether the levels are within the chains.
func (p *Params) checkLevels(levelQ, levelP int) error {
	if levelQ < 0 || levelQ > p.MaxLevelQ() || levelP < -1 || levelP > p.MaxLevelP() {
		return fmt.Errorf("levels (%d, %d) outside (%d, %d)", levelQ, levelP, p.MaxLevelQ(), p.MaxLevelP())
	}
	return nil
}
