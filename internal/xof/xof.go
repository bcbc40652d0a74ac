// Package xof expands a public 32-byte seed into the uniform randomness of
// seeded keys and ciphertexts: the "a" halves of the client's evaluation
// keys (ckks) and the c1 halves of the bridge's seeded encryptions
// (mpcbridge/share). The sender draws them from the seed and sends only the
// seed; the receiver expands the same bytes.
//
// The stream is AES-256 in counter mode keyed by the seed, from the zero
// counter block (the seed is fresh for every key or ciphertext, so the
// counter never repeats under a key). It replaces Lattigo's
// sampling.KeyedPRNG (a blake2b XOF), which needs a blake2b compression per
// 64 output bytes: a key set at N = 2^14 draws about a gigabyte, and the
// XOF was a tenth of a whole inference's CPU time on each side. With the
// AES instructions the counter mode runs at memory speed. Modelling the
// expansion as a random function is the usual assumption for seeded RLWE
// samples whatever the XOF; AES-256-CTR is a standard pseudorandom
// generator for it.
package xof

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// SeedSize is the size of a seed.
const SeedSize = 32

// Stream is the byte stream of one seed; it implements io.Reader (and
// Lattigo's sampling.PRNG).
type Stream struct {
	ctr cipher.Stream
}

// New returns the stream of seed, which must be SeedSize bytes.
func New(seed []byte) (*Stream, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("cannot expand a seed of %d bytes, want %d", len(seed), SeedSize)
	}
	block, err := aes.NewCipher(seed)
	if err != nil {
		return nil, fmt.Errorf("cannot expand a seed: %w", err)
	}
	return &Stream{ctr: cipher.NewCTR(block, make([]byte, aes.BlockSize))}, nil
}

// Read fills p with the next bytes of the stream; it never fails.
func (s *Stream) Read(p []byte) (int, error) {
	clear(p)
	s.ctr.XORKeyStream(p, p)
	return len(p), nil
}
