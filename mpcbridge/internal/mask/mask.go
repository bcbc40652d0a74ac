// Package mask draws the statistical masks of mpcbridge's conversions to
// shares: every mask is the sum of three independent integers uniform in
// [-2^β, 2^β), whose Hellinger distances compose over a whole session
// (mpcbridge/matmul's documentation, "Mask width"). mpcbridge/matmul,
// mpcbridge/sharedmul and mpcbridge/share draw their masks here.
package mask

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/cipherprune/cipherprune/internal/xof"
)

// IH3J bounds w²·J for the sum of three independent integers uniform on w
// consecutive values, where J = Σ_x (sqrt(f(x+1)) - sqrt(f(x)))² for its
// probability function f: the discrete counterpart of a quarter of the
// Fisher information of the continuous sum, I = 2·sqrt(3)·ln(2+sqrt(3)) =
// 4.56208 for w = 1, so w²·J -> I/4 = 1.14052. mpcbridge/matmul's
// TestIH3Constant computes J for widths 2^4..2^16: the excess over the
// limit is below 1/w, and w²·J <= 1.15 from w = 2^7 on. A value v added to
// such a mask is then within Hellinger distance H² <= v²·J/2 of the mask
// alone, and K independent masked values within H² <= Σ v²·J/2.
const IH3J = 1.15

// MaxBits bounds β: three uniforms of β+1 bits and their sum stay well
// inside 128 bits.
const MaxBits = 123

// Int128 is the constraint of the 128-bit integers the masks are written
// as: two's complement, high and low words (share.Int128).
type Int128 interface {
	~struct{ Hi, Lo uint64 }
}

// Sampler draws masks M = U1 + U2 + U3, the U_i independent and uniform in
// [-2^β, 2^β), from an AES-256-CTR stream (internal/xof) keyed by 32 bytes
// of the reader it was made with: 48 keystream bytes per mask. It is not
// safe for concurrent use.
type Sampler[T Int128] struct {
	src  io.Reader
	bits int
	buf  []byte
}

// NewSampler returns a sampler of width β = bits (in [1, MaxBits]) keyed by
// 32 fresh bytes of rnd.
func NewSampler[T Int128](rnd io.Reader, bits int) (*Sampler[T], error) {
	if bits < 1 || bits > MaxBits {
		return nil, fmt.Errorf("mask width %d not in [1, %d]", bits, MaxBits)
	}
	var seed [xof.SeedSize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("cannot draw a seed: %w", err)
	}
	s, err := xof.New(seed[:])
	if err != nil {
		return nil, fmt.Errorf("cannot draw a seed: %w", err)
	}
	return &Sampler[T]{src: s, bits: bits}, nil
}

// Bits returns β.
func (s *Sampler[T]) Bits() int { return s.bits }

// Sample fills out with independent masks.
func (s *Sampler[T]) Sample(out []T) {
	need := 48 * len(out)
	if cap(s.buf) < need {
		s.buf = make([]byte, need)
	}
	buf := s.buf[:need]
	s.src.Read(buf) // an xof.Stream never fails
	b := s.bits + 1 // bits of one uniform before centring
	var maskHi, maskLo uint64 = 0, ^uint64(0)
	if b >= 64 {
		maskHi = uint64(1)<<(b-64) - 1
	} else {
		maskLo = uint64(1)<<b - 1
	}
	// Three times 2^β, subtracted once for the three centrings.
	var offHi, offLo uint64
	if s.bits >= 64 {
		offHi = 3 << (s.bits - 64)
	} else {
		offHi, offLo = bits.Mul64(3, uint64(1)<<s.bits)
	}
	for i := range out {
		var hi, lo uint64
		for u := 0; u < 3; u++ {
			p := buf[48*i+16*u:]
			var c uint64
			lo, c = bits.Add64(lo, binary.LittleEndian.Uint64(p)&maskLo, 0)
			hi, _ = bits.Add64(hi, binary.LittleEndian.Uint64(p[8:])&maskHi, c)
		}
		var c uint64
		lo, c = bits.Sub64(lo, offLo, 0)
		hi, _ = bits.Sub64(hi, offHi, c)
		out[i] = T(struct{ Hi, Lo uint64 }{hi, lo})
	}
}
