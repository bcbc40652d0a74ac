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
func (m *MaskSampler) Sample(out []share.Int128) { m.s.Sample(out) }

// Residue returns x mod q in [0, q) for a signed 128-bit x.
func Residue(x share.Int128, q uint64) uint64 { return residue(x, q) }

// ShiftRound returns round(x / 2^s) (halves rounded up) for s in [1, 126].
func ShiftRound(x share.Int128, s uint) share.Int128 { return shiftRound(x, s) }

// BitWriter appends values of up to 64 bits, least significant first,
// as the messages of this package pack residues of ceil(log2 q_i) bits.
type BitWriter struct{ w bitWriter }

// NewBitWriter returns a writer that appends to buf.
func NewBitWriter(buf []byte) *BitWriter { return &BitWriter{bitWriter{buf: buf}} }

// Write appends the low b bits of v (b <= 64, v < 2^b).
func (w *BitWriter) Write(v uint64, b uint) { w.w.write(v, b) }

// Flush writes the pending bits, padded with zeros to a byte, and returns
// the buffer.
func (w *BitWriter) Flush() []byte { return w.w.flush() }

// BitReader reads what a BitWriter wrote.
type BitReader struct{ r bitReader }

// NewBitReader returns a reader of buf.
func NewBitReader(buf []byte) *BitReader { return &BitReader{bitReader{buf: buf}} }

// Read returns the next b bits (b <= 64); reading past the end yields
// zero bits and makes End fail.
func (r *BitReader) Read(b uint) uint64 { return r.r.read(b) }

// End checks that exactly the buffer was read and that its padding bits
// are zero.
func (r *BitReader) End() error { return r.r.end() }
