package share

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	lckks "github.com/tuneinsight/lattigo/v5/schemes/ckks"
	"github.com/tuneinsight/lattigo/v5/utils/bignum"
)

// ddPrec is the working precision, in bits, of the double-double codec
// (106 bits of mantissa, a little lost to rounding).
const ddPrec = 104

// slotCodec turns integer polynomials into fixed-point slot shares and
// back: the special FFT of CKKS in double-double arithmetic, on the exact
// integer coefficients. Not safe for concurrent use.
//
// Both ring types of Lattigo's CKKS are supported, with Lattigo's slot
// order and conventions (schemes/ckks Encoder):
//
//   - ring.Standard, Z[X]/(X^N+1): N/2 complex slots (only the real parts
//     are used here). Slot values z give the coefficient pairs
//     (Re w_i, Im w_i) = (c_i, c_{N/2+i}) of w = IFFT(z).
//   - ring.ConjugateInvariant, Z[X+X^-1]/(X^2N+1) held as N coefficients:
//     N real slots. Encoding keeps c_i = Re w_i of w = IFFT(z) (N points,
//     4N-th roots of unity); decoding forms w_i = c_i - i·c_{N-i} (w_0 =
//     c_0) and takes the real parts of FFT(w).
type slotCodec struct {
	n, logN  int
	slots    int  // the ring's maximum slots: N/2, or N when ci
	ci       bool // conjugate-invariant ring
	fracBits int
	fft      *ddFFT
	vals     []ddComplex
}

func newSlotCodec(params hefloat.Parameters, p Parameters) *slotCodec {
	return &slotCodec{
		n:        params.N(),
		logN:     params.LogN(),
		slots:    params.MaxSlots(),
		ci:       params.RingType() == ring.ConjugateInvariant,
		fracBits: p.fracBits,
		fft:      newDDFFT(params),
		vals:     make([]ddComplex, params.MaxSlots()),
	}
}

// ckksRoots returns Lattigo's 128-bit roots of unity e^{2πij/m}, j <= m.
func ckksRoots(m int) []*bignum.Complex { return lckks.GetRootsBigComplex(m, 128) }

func bigToDD(f *big.Float) dd {
	hi, _ := f.Float64()
	rest := new(big.Float).SetPrec(f.Prec()).Sub(f, big.NewFloat(hi))
	lo, _ := rest.Float64()
	return dd{hi, lo}
}

// CodecBits returns the largest bit length of a share (in units of 2^-F)
// that the slot codec encodes and decodes in a ring of degree 2^logN with an
// error below 2^-8 units: ddPrec - bits.Len(logN) - 8, that is 92 bits for
// 2^8 <= N <= 2^15. Shares of more bits are refused (SharesToEnc, and the
// parameter checks of NewServer and NewClient).
func CodecBits(logN int) int { return ddPrec - bits.Len(uint(logN)) - 8 }

// checkCodecBits checks that values of up to bits bits (in units of 2^-F)
// keep a codec error below 2^-8 units: bits <= CodecBits(logN).
func checkCodecBits(logN, bits_ int) error {
	if bits_ > CodecBits(logN) {
		need := bits_ + bits.Len(uint(logN)) + 8
		return fmt.Errorf("shares of %d bits need %d bits of codec precision, more than %d: lower LogBound or FracBits", bits_, need, ddPrec)
	}
	return nil
}

// decodeShares writes round(2^F·Re(y_i)) into out, where y is the CKKS
// decoding at scale of the polynomial with integer coefficients coeffs (N
// of them) into len(out) slots (a power of two up to the ring's maximum:
// N/2, or N for a conjugate-invariant ring). maxBits bounds the bit length
// of every share (a larger one is an error).
func (c *slotCodec) decodeShares(coeffs []Int128, scale float64, out Vector, maxBits int) error {
	slots := len(out)
	if slots < 1 || slots > c.slots || slots&(slots-1) != 0 || len(coeffs) != c.n {
		return fmt.Errorf("cannot decodeShares: %d slots from %d coefficients", slots, len(coeffs))
	}
	gap := c.slots / slots
	vals := c.vals[:slots]
	if c.ci {
		for i := range vals {
			vals[i] = ddComplex{re: ddFromInt128(coeffs[i*gap])}
		}
		for i := 1; i < slots; i++ {
			vals[i].im = vals[slots-i].re.neg()
		}
	} else {
		for i := range vals {
			vals[i] = ddComplex{ddFromInt128(coeffs[i*gap]), ddFromInt128(coeffs[c.n/2+i*gap])}
		}
	}
	c.fft.fft(vals)
	factor := ddQuo(math.Ldexp(1, c.fracBits), scale)
	for i, v := range vals {
		r, ok := v.re.mul(factor).round()
		if !ok || r.BitLen() > maxBits {
			return fmt.Errorf("cannot decodeShares: slot %d exceeds the %d-bit bound", i, maxBits)
		}
		out[i] = r
	}
	return nil
}

// encodeShares writes into coeffs (N of them) the integer polynomial that
// encodes v/2^F, zero-padded to all the ring's slots, at scale: the
// coefficients round(scale·IDFT(v/2^F)).
func (c *slotCodec) encodeShares(v Vector, scale float64, coeffs []Int128) error {
	if len(v) > c.slots || len(coeffs) != c.n {
		return fmt.Errorf("cannot encodeShares: %d values into %d slots", len(v), c.slots)
	}
	vals := c.vals
	for i := range vals {
		if i < len(v) {
			vals[i] = ddComplex{re: ddFromInt128(v[i])}
		} else {
			vals[i] = ddComplex{}
		}
	}
	c.fft.ifft(vals)
	factor := dd{math.Ldexp(scale, -c.fracBits), 0} // exact
	if c.ci {
		// The imaginary parts are discarded, as Lattigo's encoder does.
		for i, x := range vals {
			re, ok := x.re.mul(factor).round()
			if !ok {
				return fmt.Errorf("cannot encodeShares: coefficient %d does not fit 128 bits", i)
			}
			coeffs[i] = re
		}
		return nil
	}
	half := c.n / 2
	for i, x := range vals {
		re, ok1 := x.re.mul(factor).round()
		im, ok2 := x.im.mul(factor).round()
		if !ok1 || !ok2 {
			return fmt.Errorf("cannot encodeShares: coefficient %d does not fit 128 bits", i)
		}
		coeffs[i], coeffs[half+i] = re, im
	}
	return nil
}

// slotTermsLog returns log2 of the bound on Σ|c_j| over the coefficients
// one decoded slot sums, in units of max|c_j|: N for the standard ring (N/2
// complex terms c_i + i·c_{N/2+i}), 2N for the conjugate-invariant one (N
// terms c_i - i·c_{N-i}).
func slotTermsLog(params hefloat.Parameters) int {
	if params.RingType() == ring.ConjugateInvariant {
		return params.LogN() + 1
	}
	return params.LogN()
}

// maxBitLen returns the largest bit length in v.
func maxBitLen(v Vector) int {
	m := 0
	for _, x := range v {
		if b := x.BitLen(); b > m {
			m = b
		}
	}
	return m
}

// slotPlaintext returns a plaintext at level holding poly (in the NTT
// domain when ntt is set), with the metadata of a slot-encoded plaintext.
func slotPlaintext(level, logSlots int, scale float64, poly ring.Poly, ntt bool) *rlwe.Plaintext {
	pt, err := rlwe.NewPlaintextAtLevelFromPoly(level, poly)
	if err != nil {
		panic(fmt.Errorf("share: slotPlaintext: %w", err)) // poly allocated at level by the caller
	}
	pt.IsNTT = ntt
	pt.IsBatched = true
	pt.Scale = rlwe.NewScale(scale)
	pt.LogDimensions = ring.Dimensions{Rows: 0, Cols: logSlots}
	return pt
}
