package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// ringInfo holds what the conversions need to know about the RNS ring Q:
// the bit width of every prime (for packed polynomials), a fingerprint of
// the parameters (to reject messages built for others), and CRT tables for
// the exact reconstruction of centred coefficients into Int128.
type ringInfo struct {
	logN        int
	logMaxSlots int
	n           int
	maxLvl      int
	moduli      []uint64
	widths      []uint
	id          uint32
	crt         []crtLevel // by level
}

// crtLevel reconstructs x in (-Q_l/2, Q_l/2) from its residues: with
// y_i = x_i·(Q/q_i)^-1 mod q_i, x = Σ y_i·Q/q_i − k·Q where
// k = round(Σ y_i/q_i). The sum is computed modulo 2^128 (exact when
// |x| < 2^127) and k in float64 (exact when x/Q is not near ±1/2).
type crtLevel struct {
	qStarInv []uint64 // (Q/q_i)^-1 mod q_i
	qStar    []Int128 // Q/q_i mod 2^128
	invQ     []float64
	qMod     Int128 // Q mod 2^128
}

// low128 returns v mod 2^128 as an Int128 (two's complement bits).
func low128(v *big.Int) Int128 {
	m := new(big.Int).Lsh(big.NewInt(1), 128)
	r := new(big.Int).Mod(v, m)
	lo := new(big.Int).And(r, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
	hi := new(big.Int).Rsh(r, 64).Uint64()
	return Int128{Hi: hi, Lo: lo}
}

func newRingInfo(params hefloat.Parameters) *ringInfo {
	ringQ := params.RingQ()
	ri := &ringInfo{
		logN:        params.LogN(),
		logMaxSlots: params.LogMaxSlots(),
		n:           params.N(),
		maxLvl:      params.MaxLevel(),
		moduli:      ringQ.ModuliChain(),
	}
	h := fnv.New32a()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	put(uint64(params.LogN()))
	put(uint64(params.RingType()))
	for _, q := range ri.moduli {
		put(q)
	}
	put(0)
	for _, p := range params.RingP().ModuliChain() {
		put(p)
	}
	ri.id = h.Sum32()
	ri.widths = make([]uint, len(ri.moduli))
	for i, q := range ri.moduli {
		ri.widths[i] = uint(bits.Len64(q - 1))
	}
	ri.crt = make([]crtLevel, len(ri.moduli))
	for l := range ri.moduli {
		Q := ringQ.AtLevel(l).Modulus()
		c := crtLevel{qMod: low128(Q)}
		for i := 0; i <= l; i++ {
			qi := new(big.Int).SetUint64(ri.moduli[i])
			qs := new(big.Int).Quo(Q, qi)
			inv := new(big.Int).ModInverse(new(big.Int).Mod(qs, qi), qi)
			c.qStarInv = append(c.qStarInv, inv.Uint64())
			c.qStar = append(c.qStar, low128(qs))
			c.invQ = append(c.invQ, 1/float64(ri.moduli[i]))
		}
		ri.crt[l] = c
	}
	return ri
}

var errNearHalf = errors.New("coefficient too close to ±Q/2")

// nearHalf is the margin below Q/2 that toInt128 needs: 2^-20 of Q.
const nearHalf = 0x1p-20

// toInt128 writes the centred representatives of the coefficients of p (in
// coefficient form, at level) into out. It fails if a coefficient lies
// within nearHalf·Q of ±Q/2, where the float64 estimate of k could be
// wrong (its error is below (level+1)·2^-51, far below nearHalf); the
// masked polynomials of this package stay below Q/2 - nearHalf·Q
// (Parameters.MaskLevel).
func (ri *ringInfo) toInt128(level int, p ring.Poly, out []Int128) error {
	c := &ri.crt[level]
	moduli := ri.moduli[:level+1]
	for j := 0; j < ri.n; j++ {
		var sum Int128
		var kf float64
		for i, q := range moduli {
			hi, lo := bits.Mul64(p.Coeffs[i][j], c.qStarInv[i])
			y := bits.Rem64(hi, lo, q)
			sum = sum.Add(c.qStar[i].mulU64(y))
			kf += float64(y) * c.invQ[i]
		}
		k := math.Floor(kf + 0.5)
		if d := kf - math.Floor(kf); d > 0.5-nearHalf && d < 0.5+nearHalf {
			return fmt.Errorf("coefficient %d: %w", j, errNearHalf)
		}
		out[j] = sum.Sub(c.qMod.mulU64(uint64(k)))
	}
	return nil
}

// lift writes v (len N) into p at level, reduced modulo every prime.
func (ri *ringInfo) lift(level int, v []Int128, p ring.Poly) {
	for i, q := range ri.moduli[:level+1] {
		coeffs := p.Coeffs[i]
		for j, x := range v {
			coeffs[j] = x.mod(q)
		}
	}
}

// polyBytes is the size of a packed polynomial at level: limb i takes
// widths[i] bits per coefficient, the whole is padded to a byte.
func (ri *ringInfo) polyBytes(level int) int {
	var w uint
	for _, x := range ri.widths[:level+1] {
		w += x
	}
	return (ri.n*int(w) + 7) / 8
}

// appendPoly appends p (at level, coefficients reduced) packed.
func (ri *ringInfo) appendPoly(dst []byte, level int, p ring.Poly) []byte {
	size := ri.polyBytes(level)
	buf := make([]byte, size+16)
	off := 0
	for i := 0; i <= level; i++ {
		w := ri.widths[i]
		for _, v := range p.Coeffs[i][:ri.n] {
			b, sh := off>>3, uint(off&7)
			x := binary.LittleEndian.Uint64(buf[b:])
			binary.LittleEndian.PutUint64(buf[b:], x|v<<sh)
			if sh+w > 64 {
				buf[b+8] |= byte(v >> (64 - sh))
			}
			off += int(w)
		}
	}
	return append(dst, buf[:size]...)
}

// readPoly unpacks a polynomial at level from src (exactly polyBytes(level)
// bytes) into p, checking that every coefficient is reduced.
func (ri *ringInfo) readPoly(src []byte, level int, p ring.Poly) error {
	size := ri.polyBytes(level)
	if len(src) != size {
		return fmt.Errorf("packed polynomial has %d bytes, want %d", len(src), size)
	}
	buf := make([]byte, size+16)
	copy(buf, src)
	off := 0
	for i := 0; i <= level; i++ {
		w := ri.widths[i]
		q := ri.moduli[i]
		mask := uint64(1)<<w - 1
		coeffs := p.Coeffs[i]
		for j := 0; j < ri.n; j++ {
			b, sh := off>>3, uint(off&7)
			v := binary.LittleEndian.Uint64(buf[b:]) >> sh
			if sh+w > 64 {
				v |= uint64(buf[b+8]) << (64 - sh)
			}
			v &= mask
			if v >= q {
				return fmt.Errorf("coefficient %d of limb %d is %d, not below the modulus %d", j, i, v, q)
			}
			coeffs[j] = v
			off += int(w)
		}
	}
	// The padding bits must be zero (one encoding per polynomial).
	if rem := off & 7; rem != 0 && buf[off>>3]>>uint(rem) != 0 {
		return errors.New("packed polynomial has non-zero padding bits")
	}
	return nil
}
