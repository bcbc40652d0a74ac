package matmul

import (
	"io"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// This file exports the small pieces of the sanitization that
// mpcbridge/sharedmul reuses: the summed-uniform masks, their Hellinger
// constant, and the 128-bit residues and roundings of the shares.

// IH3J bounds w²·J for the sum of three independent integers uniform on w
// consecutive values (package documentation, "Mask width"): 1.15.
const IH3J = ih3J

// MaskSampler draws masks M = U1 + U2 + U3, the U_i independent and uniform
// in [-2^β, 2^β), from an AES-256-CTR stream keyed by 32 bytes of the
// reader it was made with. It is not safe for concurrent use.
type MaskSampler struct{ s *maskSampler }

// NewMaskSampler returns a sampler of width β = bits (in [1, 123]) keyed
// by 32 fresh bytes of rnd.
func NewMaskSampler(rnd io.Reader, bits int) (*MaskSampler, error) {
	s, err := newMaskSampler(rnd, bits)
	if err != nil {
		return nil, err
	}
	return &MaskSampler{s}, nil
}

// Sample fills out with independent masks.
func (m *MaskSampler) Sample(out []share.Int128) { m.s.sample(out) }

// Residue returns x mod q in [0, q) for a signed 128-bit x.
func Residue(x share.Int128, q uint64) uint64 { return residue(x, q) }

// ShiftRound returns round(x / 2^s) (halves rounded up) for s in [1, 126].
func ShiftRound(x share.Int128, s uint) share.Int128 { return shiftRound(x, s) }
