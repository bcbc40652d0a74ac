package share

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"

	statmask "github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
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

// maskSampler draws the server's masks, each the sum of three integers
// uniform in [-2^β, 2^β), from AES-256-CTR keyed from the party's random
// source (mpcbridge/internal/mask, shared with mpcbridge/matmul).
type maskSampler = statmask.Sampler[Int128]

// lockedReader serializes the reads of a random source shared by a Server
// and its ShallowCopy copies (a deterministic test reader is not safe for
// concurrent use; crypto/rand is).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
