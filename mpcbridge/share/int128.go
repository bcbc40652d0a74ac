package share

import (
	"math"
	"math/big"
	"math/bits"
)

// Int128 is a signed 128-bit integer in two's complement: the value is
// Hi·2^64 + Lo, with Hi read as signed. Arithmetic wraps modulo 2^128, so a
// pair of shares may also be read as shares in Z_{2^128}; the conversions
// in this package need the sums over Z, which hold as long as every share
// and every sum stays below 2^127 in magnitude (see SharesToEnc).
type Int128 struct {
	Hi uint64
	Lo uint64
}

// Int128FromInt64 returns v as an Int128.
func Int128FromInt64(v int64) Int128 {
	return Int128{Hi: uint64(v >> 63), Lo: uint64(v)}
}

// Int128FromBig returns v as an Int128, and false if v does not fit
// (v < -2^127 or v >= 2^127).
func Int128FromBig(v *big.Int) (Int128, bool) {
	if v.BitLen() > 128 {
		return Int128{}, false
	}
	var mag Int128
	words := v.Bits()
	switch bits.UintSize {
	case 64:
		if len(words) > 0 {
			mag.Lo = uint64(words[0])
		}
		if len(words) > 1 {
			mag.Hi = uint64(words[1])
		}
	default:
		var w [4]uint64
		for i, x := range words {
			w[i] = uint64(x)
		}
		mag = Int128{Hi: w[3]<<32 | w[2], Lo: w[1]<<32 | w[0]}
	}
	if v.Sign() >= 0 {
		if mag.Hi>>63 != 0 {
			return Int128{}, false
		}
		return mag, true
	}
	if mag.Hi>>63 != 0 && (mag.Hi != 1<<63 || mag.Lo != 0) {
		return Int128{}, false
	}
	return mag.Neg(), true
}

// Add returns x + y modulo 2^128.
func (x Int128) Add(y Int128) Int128 {
	lo, c := bits.Add64(x.Lo, y.Lo, 0)
	hi, _ := bits.Add64(x.Hi, y.Hi, c)
	return Int128{Hi: hi, Lo: lo}
}

// Sub returns x - y modulo 2^128.
func (x Int128) Sub(y Int128) Int128 {
	lo, b := bits.Sub64(x.Lo, y.Lo, 0)
	hi, _ := bits.Sub64(x.Hi, y.Hi, b)
	return Int128{Hi: hi, Lo: lo}
}

// Neg returns -x modulo 2^128.
func (x Int128) Neg() Int128 {
	return Int128{}.Sub(x)
}

// Sign returns -1, 0 or +1.
func (x Int128) Sign() int {
	switch {
	case int64(x.Hi) < 0:
		return -1
	case x.Hi == 0 && x.Lo == 0:
		return 0
	default:
		return 1
	}
}

// Cmp compares x and y as signed integers: -1 if x < y, 0 if equal, +1 if
// x > y.
func (x Int128) Cmp(y Int128) int {
	if x.Hi != y.Hi {
		if int64(x.Hi) < int64(y.Hi) {
			return -1
		}
		return 1
	}
	switch {
	case x.Lo < y.Lo:
		return -1
	case x.Lo > y.Lo:
		return 1
	}
	return 0
}

// abs returns |x| as an unsigned 128-bit magnitude and whether x < 0
// (|-2^127| = 2^127 is representable unsigned).
func (x Int128) abs() (hi, lo uint64, neg bool) {
	if int64(x.Hi) < 0 {
		n := x.Neg()
		return n.Hi, n.Lo, true
	}
	return x.Hi, x.Lo, false
}

// BitLen returns the bit length of |x| (0 for 0, 128 for -2^127).
func (x Int128) BitLen() int {
	hi, lo, _ := x.abs()
	if hi != 0 {
		return 64 + bits.Len64(hi)
	}
	return bits.Len64(lo)
}

// Big sets z to x and returns z; a nil z is allocated.
func (x Int128) Big(z *big.Int) *big.Int {
	if z == nil {
		z = new(big.Int)
	}
	hi, lo, neg := x.abs()
	if bits.UintSize == 64 {
		z.SetBits([]big.Word{big.Word(lo), big.Word(hi)})
	} else {
		z.SetUint64(hi)
		z.Lsh(z, 64)
		z.Or(z, new(big.Int).SetUint64(lo))
	}
	if neg {
		z.Neg(z)
	}
	return z
}

// Float64 returns the nearest float64 to x (rounded once, to nearest).
func (x Int128) Float64() float64 {
	hi, lo, neg := x.abs()
	var f float64
	if hi == 0 {
		f = float64(lo)
	} else {
		// Keep the top 64 significant bits and a sticky bit, then let one
		// uint64 -> float64 conversion round.
		s := uint(64 - bits.LeadingZeros64(hi))
		top := hi<<(64-s) | lo>>s
		if lo<<(64-s) != 0 {
			top |= 1
		}
		f = math.Ldexp(float64(top), int(s))
	}
	if neg {
		return -f
	}
	return f
}

// String returns x in decimal.
func (x Int128) String() string {
	return x.Big(nil).String()
}

// mod returns x mod q in [0, q).
func (x Int128) mod(q uint64) uint64 {
	hi, lo, neg := x.abs()
	r := bits.Rem64(hi%q, lo, q)
	if neg && r != 0 {
		r = q - r
	}
	return r
}

// mulU64 returns x·y modulo 2^128 for an unsigned 64-bit y.
func (x Int128) mulU64(y uint64) Int128 {
	hi, lo := bits.Mul64(x.Lo, y)
	return Int128{Hi: hi + x.Hi*y, Lo: lo}
}
