package sharedmul

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// rounder turns output coefficients, residues modulo the primes of Q,
// into y = min(round(c/2^k), floor((Q-1)/2^k)) for c in [0, Q) (Garner's
// mixed radix, exact), and back into the residues of y·2^k <= Q-1, within
// 2^(k-1) of c (2^k for the c within 2^(k-1) of Q, clamped so that the
// message has one reading). Read-only once built.
type rounder struct {
	moduli []uint64
	// inv[i][j] = q_j^-1 mod q_i, j < i.
	inv [][]uint64
	// pow2k[i] = 2^k mod q_i, r64[i] = 2^64 mod q_i, brc[i] the Barrett
	// constant of q_i.
	pow2k, r64 []uint64
	brc        [][]uint64
	k          uint
	width      uint      // bits of a transmitted coefficient
	top        [2]uint64 // floor((Q-1)/2^k), hi and lo words
}

// newRounder returns the rounding to multiples of 2^k on the ring of rp
// (Q < 2^127).
func newRounder(rp polymat.Parameters, k int) (*rounder, error) {
	q := rp.Q()
	if q.BitLen() > 127 {
		return nil, fmt.Errorf("Q of %d bits, over the 127 of the output codec", q.BitLen())
	}
	if k < 0 || k >= q.BitLen()-1 {
		return nil, fmt.Errorf("rounding of %d bits for Q of %d", k, q.BitLen())
	}
	r := &rounder{moduli: rp.Moduli(), k: uint(k)}
	for i, qi := range r.moduli {
		bq := new(big.Int).SetUint64(qi)
		r.inv = append(r.inv, nil)
		for _, qj := range r.moduli[:i] {
			inv := new(big.Int).ModInverse(new(big.Int).SetUint64(qj%qi), bq)
			if inv == nil {
				return nil, errors.New("primes of Q not coprime")
			}
			r.inv[i] = append(r.inv[i], inv.Uint64())
		}
		r.pow2k = append(r.pow2k, new(big.Int).Mod(new(big.Int).Lsh(big.NewInt(1), uint(k)), bq).Uint64())
		r.r64 = append(r.r64, new(big.Int).Mod(new(big.Int).Lsh(big.NewInt(1), 64), bq).Uint64())
		r.brc = append(r.brc, ring.BRedConstant(qi))
	}
	top := new(big.Int).Sub(q, big.NewInt(1))
	top.Rsh(top, uint(k))
	r.width = uint(top.BitLen())
	r.top = [2]uint64{new(big.Int).Rsh(top, 64).Uint64(), top.Uint64()}
	return r, nil
}

// round returns min(round(c/2^k), floor((Q-1)/2^k)), hi and lo words,
// for the c in [0, Q) with residues res (each below its prime).
func (r *rounder) round(res []uint64) (hi, lo uint64) {
	var digits [8]uint64
	for i, qi := range r.moduli {
		u := r.brc[i]
		t := res[i]
		for j := 0; j < i; j++ {
			d := ring.BRedAdd(digits[j], qi, u)
			if t < d {
				t += qi
			}
			t = ring.BRed(t-d, r.inv[i][j], qi, u)
		}
		digits[i] = t
	}
	// Horner: c = d_0 + q_0·(d_1 + q_1·(d_2 + ...)), below Q < 2^127.
	last := len(r.moduli) - 1
	hi, lo = 0, digits[last]
	for i := last - 1; i >= 0; i-- {
		h, l := bits.Mul64(lo, r.moduli[i])
		hi = h + hi*r.moduli[i]
		var c uint64
		lo, c = bits.Add64(l, digits[i], 0)
		hi += c
	}
	if r.k == 0 {
		return hi, lo
	}
	if r.k-1 >= 64 {
		hi += 1 << (r.k - 1 - 64)
	} else {
		var c uint64
		lo, c = bits.Add64(lo, 1<<(r.k-1), 0)
		hi += c
	}
	if r.k >= 64 {
		hi, lo = 0, hi>>(r.k-64)
	} else {
		hi, lo = hi>>r.k, lo>>r.k|hi<<(64-r.k)
	}
	if !r.valid(hi, lo) {
		return r.top[0], r.top[1]
	}
	return hi, lo
}

// valid reports whether (hi, lo) is at most floor((Q-1)/2^k), the
// largest value round sends.
func (r *rounder) valid(hi, lo uint64) bool {
	return hi < r.top[0] || (hi == r.top[0] && lo <= r.top[1])
}

// expand writes into dst[i][at] the residues of y·2^k, y = hi·2^64 + lo.
func (r *rounder) expand(hi, lo uint64, dst [][]uint64, at int) {
	for i, qi := range r.moduli {
		u := r.brc[i]
		v := ring.BRedAdd(lo, qi, u) + ring.BRed(ring.BRedAdd(hi, qi, u), r.r64[i], qi, u)
		if v >= qi {
			v -= qi
		}
		dst[i][at] = ring.BRed(v, r.pow2k[i], qi, u)
	}
}

// write appends the rounded value (hi, lo) to w, width bits, low word
// first.
func (r *rounder) write(w interface{ Write(uint64, uint) }, hi, lo uint64) {
	if r.width <= 64 {
		w.Write(lo, r.width)
		return
	}
	w.Write(lo, 64)
	w.Write(hi, r.width-64)
}

// read reads one value written by write.
func (r *rounder) read(rd interface{ Read(uint) uint64 }) (hi, lo uint64) {
	if r.width <= 64 {
		return 0, rd.Read(r.width)
	}
	lo = rd.Read(64)
	return rd.Read(r.width - 64), lo
}
