package share

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
)

// Conn is the framed, ordered, reliable connection between the two
// parties. Send transmits one message of type typ; Recv returns the payload
// of the next message, which must be of type typ (an implementation returns
// an error for any other type). Both honour ctx. The transport of
// mpcbridge/wire implements it.
type Conn interface {
	Send(ctx context.Context, typ uint16, payload []byte) error
	Recv(ctx context.Context, typ uint16) ([]byte, error)
}

// Vector is one party's additive share of a slot vector: the integer slot
// values of the fixed-point encoding with Parameters.FracBits fractional
// bits. The two parties' Vectors sum, over the integers, to
// round(2^F·v) ± 1 for the shared real vector v.
type Vector []Int128

// Low64 returns the shares reduced modulo 2^64: ring shares, for protocols
// (comparisons in a garbled circuit) that work modulo 2^K. If a and b are
// integer shares of v, then a.Low64()[i] + b.Low64()[i] = v_i mod 2^64, and
// for shares from EncToShares each is statistically close to uniform. Keep the integer shares for
// SharesToEnc: ring shares cannot be turned back into a ciphertext without
// removing the wrap-around.
func (v Vector) Low64() []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x.Lo
	}
	return out
}

// Reconstruct returns (a_i + b_i)/2^F for the shares a and b of one vector
// (for tests and for a party that holds both, never in the protocol).
func Reconstruct(p Parameters, a, b Vector) ([]float64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("cannot Reconstruct: shares of lengths %d and %d", len(a), len(b))
	}
	out := make([]float64, len(a))
	scale := 1 / float64(uint64(1)<<p.fracBits)
	for i := range a {
		out[i] = a[i].Add(b[i]).Float64() * scale
	}
	return out, nil
}

// randReader returns rnd, or crypto/rand when rnd is nil.
func randReader(rnd io.Reader) io.Reader {
	if rnd == nil {
		return rand.Reader
	}
	return rnd
}

// maskSampler draws the server's masks from AES-256-CTR keyed from the
// party's random source (crypto/rand by default): 16 keystream bytes per
// coefficient.
type maskSampler struct {
	stream cipher.Stream
	buf    []byte
}

func newMaskSampler(rnd io.Reader, n int) (*maskSampler, error) {
	var key [32 + aes.BlockSize]byte
	if _, err := io.ReadFull(rnd, key[:]); err != nil {
		return nil, fmt.Errorf("cannot seed the mask sampler: %w", err)
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, fmt.Errorf("cannot seed the mask sampler: %w", err)
	}
	return &maskSampler{stream: cipher.NewCTR(block, key[32:]), buf: make([]byte, 16*n)}, nil
}

// sample fills out with i.i.d. integers uniform in [-2^b, 2^b), b <= 125.
func (s *maskSampler) sample(b int, out []Int128) {
	buf := s.buf[:16*len(out)]
	clear(buf)
	s.stream.XORKeyStream(buf, buf)
	// The b+1 low bits of 128 random bits, minus 2^b.
	var maskHi, maskLo uint64 = 0, ^uint64(0)
	if b+1 >= 64 {
		maskHi = uint64(1)<<(b+1-64) - 1
	} else {
		maskLo = uint64(1)<<(b+1) - 1
	}
	var off Int128
	if b >= 64 {
		off.Hi = 1 << (b - 64)
	} else {
		off.Lo = 1 << b
	}
	for i := range out {
		lo := leUint64(buf[16*i:])
		hi := leUint64(buf[16*i+8:])
		out[i] = Int128{Hi: hi & maskHi, Lo: lo & maskLo}.Sub(off)
	}
}

func leUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
