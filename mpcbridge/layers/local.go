package layers

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// The local steps: what each party computes on its own share, with no
// message. Integer shares a + b = v hold over Z (not modulo 2^128), so sums
// and differences of shares are shares of the sums and differences, and a
// party may divide its own share: round(a/d) + round(b/d) = v/d + ε with
// |ε| <= 1 (two roundings of at most 1/2 each).

// divRound returns round(x/d), halves away from zero, for d >= 1.
func divRound(x share.Int128, d uint64) share.Int128 {
	neg := x.Sign() < 0
	if neg {
		x = x.Neg()
	}
	qHi, rHi := x.Hi/d, x.Hi%d
	qLo, r := bits.Div64(rHi, x.Lo, d)
	q := share.Int128{Hi: qHi, Lo: qLo}
	if r >= d-r { // 2r >= d without overflow
		q = q.Add(share.Int128{Lo: 1})
	}
	if neg {
		q = q.Neg()
	}
	return q
}

// rowMeans returns round(Σ_j x[i,j] / cols) for every row of x (rows x
// cols, row-major): a party's share of the row means, within one unit of
// the exact mean once both are added. The sums need log2(cols) bits above
// the shares' (below 100 bits for shares of 90 and cols up to 1024).
func rowMeans(x share.Vector, cols int) share.Vector {
	rows := len(x) / cols
	out := make(share.Vector, rows)
	for i := range out {
		var s share.Int128
		for _, v := range x[i*cols : (i+1)*cols] {
			s = s.Add(v)
		}
		out[i] = divRound(s, uint64(cols))
	}
	return out
}

// shiftDown returns round(x/2^k), each value (x itself for k = 0).
func shiftDown(x share.Vector, k int) share.Vector {
	if k == 0 {
		return x
	}
	out := make(share.Vector, len(x))
	for i, v := range x {
		out[i] = divRound(v, 1<<k)
	}
	return out
}

// shiftUp returns x·2^k, exactly.
func shiftUp(x share.Vector, k int) share.Vector {
	if k == 0 {
		return x
	}
	out := make(share.Vector, len(x))
	for i, v := range x {
		for range k {
			v = v.Add(v)
		}
		out[i] = v
	}
	return out
}

// centre returns x[i,j] - m[i].
func centre(x, m share.Vector, cols int) share.Vector {
	out := make(share.Vector, len(x))
	for k, v := range x {
		out[k] = v.Sub(m[k/cols])
	}
	return out
}

// repeat returns v[i] repeated cols times per row: a row's value laid out
// over its columns, free in the shares.
func repeat(v share.Vector, cols int) share.Vector {
	out := make(share.Vector, len(v)*cols)
	for k := range out {
		out[k] = v[k/cols]
	}
	return out
}

// addVec returns x + y.
func addVec(x, y share.Vector) share.Vector {
	out := make(share.Vector, len(x))
	for k := range x {
		out[k] = x[k].Add(y[k])
	}
	return out
}

// fixed returns round(2^F·v), refusing values beyond 2^62 units.
func fixed(v float64, f int) (share.Int128, error) {
	x := math.Round(math.Ldexp(v, f))
	if !(math.Abs(x) < 1<<62) {
		return share.Int128{}, fmt.Errorf("constant %v does not fit the fixed point 2^%d", v, f)
	}
	return share.Int128FromInt64(int64(x)), nil
}

// addConst adds round(2^F·c[k % len(c)]) to the server's share x in place:
// a public or server-held constant (LayerNorm's β repeated over the rows,
// ε) enters one share only.
func addConst(x share.Vector, c []float64, f int) error {
	if len(c) == 0 {
		return nil
	}
	q := make([]share.Int128, len(c))
	for j, v := range c {
		var err error
		if q[j], err = fixed(v, f); err != nil {
			return err
		}
	}
	for k := range x {
		x[k] = x[k].Add(q[k%len(q)])
	}
	return nil
}

// maxBits returns the largest bit length of the entries of x.
func maxBits(x share.Vector) int {
	m := 0
	for _, v := range x {
		m = max(m, v.BitLen())
	}
	return m
}
