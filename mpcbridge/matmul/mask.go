package matmul

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cipherprune/cipherprune/internal/xof"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// ih3J bounds w²·J for the sum of three independent integers uniform on w
// consecutive values, where J = Σ_x (sqrt(f(x+1)) - sqrt(f(x)))² for its
// probability function f: the discrete counterpart of a quarter of the
// Fisher information of the continuous sum, I = 2·sqrt(3)·ln(2+sqrt(3)) =
// 4.56208 for w = 1, so w²·J -> I/4 = 1.14052. TestIH3Constant computes J for
// widths 2^4..2^16: the excess over the limit is below 1/w, and w²·J <=
// 1.15 from w = 2^7 on; the masks have w >= 2^50.
const ih3J = 1.15

// stream returns an AES-256-CTR stream keyed by 32 fresh bytes of rnd.
func stream(rnd io.Reader) (*xof.Stream, error) {
	var seed [xof.SeedSize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("cannot draw a seed: %w", err)
	}
	return xof.New(seed[:])
}

// maskSampler draws masks M = U1 + U2 + U3 with the U_i independent and
// uniform in [-2^β, 2^β) (β <= 123), from an AES-256-CTR stream.
type maskSampler struct {
	src  io.Reader
	bits int
	buf  []byte
}

func newMaskSampler(rnd io.Reader, bits int) (*maskSampler, error) {
	if bits < 1 || bits > 123 {
		return nil, fmt.Errorf("mask width %d not in [1, 123]", bits)
	}
	s, err := stream(rnd)
	if err != nil {
		return nil, err
	}
	return &maskSampler{src: s, bits: bits}, nil
}

// sample fills out with independent masks.
func (s *maskSampler) sample(out []share.Int128) {
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
	off := share.Int128{}
	if s.bits >= 64 {
		off.Hi = 1 << (s.bits - 64)
	} else {
		off.Lo = 1 << s.bits
	}
	off3 := off.Add(off).Add(off)
	for i := range out {
		var sum share.Int128
		for u := 0; u < 3; u++ {
			p := buf[48*i+16*u:]
			lo := binary.LittleEndian.Uint64(p) & maskLo
			hi := binary.LittleEndian.Uint64(p[8:]) & maskHi
			sum = sum.Add(share.Int128{Hi: hi, Lo: lo})
		}
		out[i] = sum.Sub(off3)
	}
}

// budget counts the outputs a Server has masked in its session.
type budget struct {
	used, limit int64
}

// take reserves n more outputs, or fails without reserving.
func (b *budget) take(n int) error {
	if int64(n) > b.limit-b.used {
		return fmt.Errorf("%d more outputs would exceed the session's %d masked outputs (%d used): the masks' statistical bound covers no more; start a new session", n, b.limit, b.used)
	}
	b.used += int64(n)
	return nil
}
