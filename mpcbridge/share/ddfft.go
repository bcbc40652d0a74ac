package share

import (
	"math"
	"math/bits"
	"sync"

	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// The slot codec needs about 100 bits of precision (shares of 75-95 bits,
// decoded to well below one unit): double-double arithmetic (106 bits)
// gives it at a tenth of the cost of big.Float. The transforms below are
// Lattigo's special FFT (schemes/ckks SpecialFFTArbitrary and
// SpecialIFFTArbitrary: same slot order, same roots), in double-double;
// tests check them against Lattigo's big-float encoder.

// dd is an unevaluated sum hi + lo with |lo| <= ulp(hi)/2.
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return
}

func quickTwoSum(a, b float64) (s, e float64) {
	s = a + b
	e = b - (s - a)
	return
}

func (x dd) add(y dd) dd {
	s, e := twoSum(x.hi, y.hi)
	t, f := twoSum(x.lo, y.lo)
	e += t
	s, e = quickTwoSum(s, e)
	e += f
	s, e = quickTwoSum(s, e)
	return dd{s, e}
}

func (x dd) neg() dd { return dd{-x.hi, -x.lo} }

func (x dd) sub(y dd) dd { return x.add(y.neg()) }

func (x dd) mul(y dd) dd {
	p := x.hi * y.hi
	e := math.FMA(x.hi, y.hi, -p)
	e += x.hi*y.lo + x.lo*y.hi
	s, e := quickTwoSum(p, e)
	return dd{s, e}
}

// ddQuo returns a/b for float64 a, b, to double-double precision.
func ddQuo(a, b float64) dd {
	q1 := a / b
	r := math.FMA(-q1, b, a)
	q2 := r / b
	s, e := quickTwoSum(q1, q2)
	return dd{s, e}
}

// ddFromInt128 returns x to double-double precision: the four 32-bit
// pieces are exact doubles, summed exactly but for the final rounding.
func ddFromInt128(x Int128) dd {
	h1 := float64(int32(x.Hi >> 32))
	h0 := float64(uint32(x.Hi))
	u1 := float64(uint32(x.Lo >> 32))
	u0 := float64(uint32(x.Lo))
	v := dd{math.Ldexp(h1, 96), 0}.add(dd{math.Ldexp(h0, 64), 0})
	return v.add(dd{math.Ldexp(u1, 32), 0}).add(dd{u0, 0})
}

// int128FromIntegral converts an integral float64 to Int128, false if it
// does not fit.
func int128FromIntegral(f float64) (Int128, bool) {
	if math.Abs(f) < 1<<63 {
		return Int128FromInt64(int64(f)), true
	}
	if math.IsNaN(f) || math.Abs(f) >= math.Ldexp(1, 127) {
		return Int128{}, false
	}
	frac, exp := math.Frexp(math.Abs(f)) // |f| = frac·2^exp, exp in [64, 127]
	mant := uint64(math.Ldexp(frac, 53))
	sh := uint(exp - 53)
	v := Int128{Hi: mant >> (64 - sh), Lo: mant << sh}
	if f < 0 {
		v = v.Neg()
	}
	return v, true
}

// round returns the integer nearest to x, false if it does not fit Int128.
func (x dd) round() (Int128, bool) {
	a := math.Round(x.hi)
	b := math.Round((x.hi - a) + x.lo)
	ia, ok := int128FromIntegral(a)
	if !ok {
		return Int128{}, false
	}
	ib, ok := int128FromIntegral(b)
	if !ok {
		return Int128{}, false
	}
	s := ia.Add(ib)
	// A sum near ±2^127 could have wrapped.
	if (ia.Sign() > 0 && ib.Sign() > 0 && s.Sign() < 0) || (ia.Sign() < 0 && ib.Sign() < 0 && s.Sign() >= 0) {
		return Int128{}, false
	}
	return s, true
}

type ddComplex struct{ re, im dd }

func (x ddComplex) add(y ddComplex) ddComplex { return ddComplex{x.re.add(y.re), x.im.add(y.im)} }
func (x ddComplex) sub(y ddComplex) ddComplex { return ddComplex{x.re.sub(y.re), x.im.sub(y.im)} }
func (x ddComplex) mul(y ddComplex) ddComplex {
	return ddComplex{x.re.mul(y.re).sub(x.im.mul(y.im)), x.re.mul(y.im).add(x.im.mul(y.re))}
}

// ddFFT holds the roots and the rotation group of the special FFT of a
// ring of degree N (M = 2N).
type ddFFT struct {
	m        int
	rotGroup []int
	roots    []ddComplex
}

// ddFFTs caches the transforms by M: their tables are read-only once
// built, and building them (M+1 roots at 128 bits) takes a fifth of a
// second at M = 2^16, for every conversion party and worker otherwise.
var ddFFTs sync.Map // int -> *ddFFT

func newDDFFT(params hefloat.Parameters) *ddFFT {
	m := int(params.RingQ().NthRoot())
	if f, ok := ddFFTs.Load(m); ok {
		return f.(*ddFFT)
	}
	f := &ddFFT{m: m, rotGroup: make([]int, m>>2), roots: make([]ddComplex, m+1)}
	five := 1
	for i := range f.rotGroup {
		f.rotGroup[i] = five
		five = five * int(ring.GaloisGen) & (m - 1)
	}
	// e^{2πij/M} from 128-bit roots, rounded to double-double.
	for j, r := range ckksRoots(m) {
		f.roots[j] = ddComplex{bigToDD(r[0]), bigToDD(r[1])}
	}
	got, _ := ddFFTs.LoadOrStore(m, f)
	return got.(*ddFFT)
}

// fft is SpecialFFTArbitrary on n = len(values) slots: coefficient pairs
// to slot values.
func (f *ddFFT) fft(values []ddComplex) {
	n := len(values)
	bitReverse(values)
	logN := bits.Len(uint(n)) - 1
	logM := bits.Len(uint(f.m)) - 1
	for loglen := 1; loglen <= logN; loglen++ {
		length := 1 << loglen
		lenh := length >> 1
		lenq := length << 2
		logGap := logM - 2 - loglen
		mask := lenq - 1
		for i := 0; i < n; i += length {
			for j := 0; j < lenh; j++ {
				u := values[i+j]
				v := values[i+j+lenh].mul(f.roots[(f.rotGroup[j]&mask)<<logGap])
				values[i+j] = u.add(v)
				values[i+j+lenh] = u.sub(v)
			}
		}
	}
}

// ifft is SpecialIFFTArbitrary on n = len(values) slots, the division by n
// included: slot values to coefficient pairs.
func (f *ddFFT) ifft(values []ddComplex) {
	n := len(values)
	logN := bits.Len(uint(n)) - 1
	logM := bits.Len(uint(f.m)) - 1
	for loglen := logN; loglen > 0; loglen-- {
		length := 1 << loglen
		lenh := length >> 1
		lenq := length << 2
		logGap := logM - 2 - loglen
		mask := lenq - 1
		for i := 0; i < n; i += length {
			for j := 0; j < lenh; j++ {
				a, b := values[i+j], values[i+j+lenh]
				values[i+j] = a.add(b)
				values[i+j+lenh] = a.sub(b).mul(f.roots[(lenq-(f.rotGroup[j]&mask))<<logGap])
			}
		}
	}
	inv := dd{1 / float64(n), 0} // n is a power of two: exact
	for i := range values {
		values[i] = ddComplex{values[i].re.mul(inv), values[i].im.mul(inv)}
	}
	bitReverse(values)
}

func bitReverse(s []ddComplex) {
	n := len(s)
	j := 0
	for i := 1; i < n; i++ {
		bit := n >> 1
		for j >= bit {
			j -= bit
			bit >>= 1
		}
		j += bit
		if i < j {
			s[i], s[j] = s[j], s[i]
		}
	}
}
