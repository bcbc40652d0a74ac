package shuffle

import (
	"fmt"
	"math/bits"
)

// Ring is the modulus of the shares a call permutes. Both parties must use
// the same; a mismatch fails on both sides with ErrMismatch.
type Ring uint8

const (
	// Ring64: every word of a row is one value modulo 2^64.
	Ring64 Ring = iota
	// Ring128: every pair of words (2k, 2k+1) of a row is one value modulo
	// 2^128, low word first; rows have an even width. It costs twice the
	// words of Ring64 per value and is what a caller needs whose shares must
	// later become integer shares with masks wider than 64 bits
	// (mpcbridge/prunestep's statistical conversion).
	Ring128
)

// String returns the ring's name.
func (r Ring) String() string {
	switch r {
	case Ring64:
		return "Ring64"
	case Ring128:
		return "Ring128"
	}
	return fmt.Sprintf("Ring(%d)", uint8(r))
}

// checkWidth checks that width words form whole values of r.
func (r Ring) checkWidth(width int) error {
	switch r {
	case Ring64:
		return nil
	case Ring128:
		if width%2 != 0 {
			return fmt.Errorf("width %d is odd: Ring128 rows hold pairs of words", width)
		}
		return nil
	}
	return fmt.Errorf("invalid ring %v", r)
}

// add sets dst = x + y value by value (dst may alias x or y).
func (r Ring) add(dst, x, y []uint64) {
	if r == Ring64 {
		for k := range dst {
			dst[k] = x[k] + y[k]
		}
		return
	}
	for k := 0; k < len(dst); k += 2 {
		lo, c := bits.Add64(x[k], y[k], 0)
		dst[k+1], _ = bits.Add64(x[k+1], y[k+1], c)
		dst[k] = lo
	}
}

// sub sets dst = x - y value by value (dst may alias x or y).
func (r Ring) sub(dst, x, y []uint64) {
	if r == Ring64 {
		for k := range dst {
			dst[k] = x[k] - y[k]
		}
		return
	}
	for k := 0; k < len(dst); k += 2 {
		lo, b := bits.Sub64(x[k], y[k], 0)
		dst[k+1], _ = bits.Sub64(x[k+1], y[k+1], b)
		dst[k] = lo
	}
}

// neg negates v value by value.
func (r Ring) neg(v []uint64) {
	if r == Ring64 {
		for k := range v {
			v[k] = -v[k]
		}
		return
	}
	for k := 0; k < len(v); k += 2 {
		lo, b := bits.Sub64(0, v[k], 0)
		v[k+1], _ = bits.Sub64(0, v[k+1], b)
		v[k] = lo
	}
}

// permuterSwitch is P's side of one switch (see evalPermuter), in place on
// the slots ma and mb: with sel all ones for bit 1 and zero for bit 0,
// c = m_a + K + [s](m_b - m_a + e) and d = m_a + m_b - c. There is no branch
// on the bit.
func (r Ring) permuterSwitch(ma, mb, k, e []uint64, sel uint64) {
	if r == Ring64 {
		for x := range ma {
			a, b := ma[x], mb[x]
			c := a + k[x] + sel&(b-a+e[x])
			ma[x], mb[x] = c, a+b-c
		}
		return
	}
	for x := 0; x < len(ma); x += 2 {
		aLo, aHi, bLo, bHi := ma[x], ma[x+1], mb[x], mb[x+1]
		// t = (b - a + e) & sel
		tLo, br := bits.Sub64(bLo, aLo, 0)
		tHi, _ := bits.Sub64(bHi, aHi, br)
		tLo, cy := bits.Add64(tLo, e[x], 0)
		tHi, _ = bits.Add64(tHi, e[x+1], cy)
		tLo, tHi = tLo&sel, tHi&sel
		// c = a + K + t
		cLo, cy := bits.Add64(aLo, k[x], 0)
		cHi, _ := bits.Add64(aHi, k[x+1], cy)
		cLo, cy = bits.Add64(cLo, tLo, 0)
		cHi, _ = bits.Add64(cHi, tHi, cy)
		// d = a + b - c
		sLo, cy := bits.Add64(aLo, bLo, 0)
		sHi, _ := bits.Add64(aHi, bHi, cy)
		dLo, br := bits.Sub64(sLo, cLo, 0)
		dHi, _ := bits.Sub64(sHi, cHi, br)
		ma[x], ma[x+1], mb[x], mb[x+1] = cLo, cHi, dLo, dHi
	}
}

// assistantSwitch is Q's side of one switch (see evalAssistant), in place on
// the masks ra and rb, writing the correction to e:
// e = r_a + K_0 - r_b - K_1, r_a = r_a + K_0, r_b = r_b - K_0.
func (r Ring) assistantSwitch(ra, rb, k0, k1, e []uint64) {
	if r == Ring64 {
		for x := range ra {
			c := ra[x] + k0[x]
			e[x] = c - rb[x] - k1[x]
			ra[x], rb[x] = c, rb[x]-k0[x]
		}
		return
	}
	r.add(ra, ra, k0)
	r.sub(e, ra, rb)
	r.sub(e, e, k1)
	r.sub(rb, rb, k0)
}
