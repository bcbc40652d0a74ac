package matmul

import (
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// u128 is an unsigned 128-bit integer hi·2^64 + lo.
type u128 struct{ hi, lo uint64 }

func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	return u128{x.hi + y.hi + c, lo}
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	return u128{x.hi - y.hi - b, lo}
}

func (x u128) less(y u128) bool { return x.hi < y.hi || (x.hi == y.hi && x.lo < y.lo) }

// shr returns x >> s for s in [0, 127].
func (x u128) shr(s uint) u128 {
	switch {
	case s == 0:
		return x
	case s < 64:
		return u128{x.hi >> s, x.lo>>s | x.hi<<(64-s)}
	default:
		return u128{0, x.hi >> (s - 64)}
	}
}

func u128FromBig(v *big.Int) u128 {
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
	return u128{new(big.Int).Rsh(v, 64).Uint64(), lo}
}

// ringInfo is the RNS arithmetic of the bridge: residues of 128-bit
// integers, the exact reconstruction of coefficients modulo Q (Garner's
// mixed radix, Q < 2^121), and the rounding of transmitted coefficients to
// multiples of 2^k.
type ringInfo struct {
	n      int
	moduli []uint64
	widths []int
	subs   []*ring.SubRing
	q      u128 // Q
	half   u128 // (Q-1)/2
	// garner[i][j] = (q_j)^-1 mod q_i in Montgomery form, j < i.
	garner [][]uint64
	// r128[i] = 2^128 mod q_i; pow2k[i] = 2^(k+64) mod q_i (Montgomery
	// form of 2^k).
	r128, pow2k []uint64
	k           uint
	width       uint // bits of a transmitted coefficient
	top         u128 // largest transmitted value
}

func newRingInfo(p Parameters) *ringInfo {
	rq := p.ring.RingQ()
	ri := &ringInfo{
		n:      p.ring.N(),
		moduli: p.ring.Moduli(),
		widths: p.ring.Widths(),
		subs:   rq.SubRings,
		k:      uint(p.compressBits),
		width:  uint(p.outWidth),
	}
	Q := p.ring.Q()
	ri.q = u128FromBig(Q)
	ri.half = u128FromBig(new(big.Int).Rsh(new(big.Int).Sub(Q, big.NewInt(1)), 1))
	top := new(big.Int).Sub(Q, big.NewInt(1))
	if ri.k > 0 {
		top.Add(top, new(big.Int).Lsh(big.NewInt(1), ri.k-1))
		top.Rsh(top, ri.k)
	}
	ri.top = u128FromBig(top)
	ri.garner = make([][]uint64, len(ri.moduli))
	for i, qi := range ri.moduli {
		bq := new(big.Int).SetUint64(qi)
		for _, qj := range ri.moduli[:i] {
			inv := new(big.Int).ModInverse(new(big.Int).SetUint64(qj%qi), bq)
			inv.Lsh(inv, 64).Mod(inv, bq)
			ri.garner[i] = append(ri.garner[i], inv.Uint64())
		}
		r := new(big.Int).Lsh(big.NewInt(1), 128)
		ri.r128 = append(ri.r128, r.Mod(r, bq).Uint64())
		t := new(big.Int).Lsh(big.NewInt(1), ri.k+64)
		ri.pow2k = append(ri.pow2k, t.Mod(t, bq).Uint64())
	}
	return ri
}

// reconstruct returns the integer in [0, Q) with residues res[i] (each
// below q_i).
func (ri *ringInfo) reconstruct(res []uint64) u128 {
	var digits [8]uint64
	for i, qi := range ri.moduli {
		s := ri.subs[i]
		t := res[i]
		for j := 0; j < i; j++ {
			aj := ring.BRedAdd(digits[j], qi, s.BRedConstant)
			t = ring.MRed(t+qi-aj, ri.garner[i][j], qi, s.MRedConstant)
		}
		digits[i] = t
	}
	// Horner: v = a_0 + q_0·(a_1 + q_1·(a_2 + ...)).
	last := len(ri.moduli) - 1
	v := u128{0, digits[last]}
	for i := last - 1; i >= 0; i-- {
		hi, lo := bits.Mul64(v.lo, ri.moduli[i])
		v = u128{hi + v.hi*ri.moduli[i], lo}.add(u128{0, digits[i]})
	}
	return v
}

// centred returns the representative of v in (-Q/2, Q/2] as an Int128.
func (ri *ringInfo) centred(v u128) share.Int128 {
	if ri.half.less(v) {
		d := ri.q.sub(v) // Q - v, then negate
		return share.Int128{Hi: d.hi, Lo: d.lo}.Neg()
	}
	return share.Int128{Hi: v.hi, Lo: v.lo}
}

// compress returns round(v / 2^k) for v in [0, Q).
func (ri *ringInfo) compress(v u128) u128 {
	if ri.k == 0 {
		return v
	}
	return v.add(u128{0, 1 << (ri.k - 1)}).shr(ri.k)
}

// expand writes the residues of y·2^k (an approximation of the
// compressed value, within 2^(k-1) modulo Q) into res[i] at index j.
func (ri *ringInfo) expand(y u128, limbs [][]uint64, j int) {
	for i, qi := range ri.moduli {
		s := ri.subs[i]
		r := ring.BRedAdd(y.lo, qi, s.BRedConstant)
		h := ring.BRedAdd(y.hi, qi, s.BRedConstant)
		r += ring.MRed(h, ri.r128[i], qi, s.MRedConstant)
		if r >= qi {
			r -= qi
		}
		limbs[i][j] = ring.MRed(r, ri.pow2k[i], qi, s.MRedConstant)
	}
}

// residue returns x mod q for a signed 128-bit x.
func residue(x share.Int128, q uint64) uint64 {
	neg := x.Hi>>63 != 0
	if neg {
		x = x.Neg()
	}
	r := bits.Rem64(x.Hi%q, x.Lo, q)
	if neg && r != 0 {
		r = q - r
	}
	return r
}

// shiftRound returns round(x / 2^s) (halves rounded up) for s in [1, 126].
func shiftRound(x share.Int128, s uint) share.Int128 {
	var half share.Int128
	if s-1 >= 64 {
		half.Hi = 1 << (s - 1 - 64)
	} else {
		half.Lo = 1 << (s - 1)
	}
	y := x.Add(half)
	// Arithmetic shift right by s.
	hi := int64(y.Hi)
	if s >= 64 {
		return share.Int128{Hi: uint64(hi >> 63), Lo: uint64(hi >> (s - 64))}
	}
	return share.Int128{Hi: uint64(hi >> s), Lo: y.Lo>>s | y.Hi<<(64-s)}
}
