package kernels

import "fmt"

// Basis selects the RNS moduli of a polynomial: Q_0..Q_LevelQ followed by
// P_0..P_LevelP. LevelP = -1 means no P limbs.
type Basis struct {
	LevelQ, LevelP int
}

// Limbs returns the number of limbs of a polynomial in the basis.
func (b Basis) Limbs() int { return b.LevelQ + 1 + b.LevelP + 1 }

// String formats the basis as "Q<levelQ>P<levelP>".
func (b Basis) String() string { return fmt.Sprintf("Q%dP%d", b.LevelQ, b.LevelP) }

// Memory is one allocation owned by a Backend (host words for the CPU,
// device memory for CUDA). Buffers are views into a Memory.
type Memory interface {
	// Words returns the size of the allocation in 64-bit words.
	Words() int
}

// Layout locates the limbs of a Buffer inside its Memory: the j-th limb
// of the k-th polynomial starts at word QOffset + k*Stride + j*N for a Q
// limb and POffset + k*Stride + (j-LevelQ-1)*N for a P limb.
type Layout struct {
	N, Count         int
	LevelQ, LevelP   int
	QOffset, POffset int
	Stride           int
}

// Buffer is a batch of Count polynomials of degree N in one Basis, resident
// in a backend's memory. A Buffer is a view (a value that can be copied
// freely): AtLevel, Slice and Poly derive views that share its memory.
// Every operation of a Backend applies to every polynomial of its operands.
type Buffer struct {
	mem Memory
	lay Layout
}

// NewBuffer lays out count polynomials in basis b contiguously from word 0
// of mem, each one as its Q limbs then its P limbs (what Backend.Alloc
// returns). It fails if mem is too small.
func NewBuffer(mem Memory, n int, b Basis, count int) (Buffer, error) {
	stride := b.Limbs() * n
	if mem == nil || mem.Words() < stride*count {
		return Buffer{}, fmt.Errorf("cannot NewBuffer: memory too small for %d polynomials in %s", count, b)
	}
	return Buffer{mem: mem, lay: Layout{
		N: n, Count: count, LevelQ: b.LevelQ, LevelP: b.LevelP,
		QOffset: 0, POffset: (b.LevelQ + 1) * n, Stride: stride,
	}}, nil
}

// Memory returns the allocation the buffer is a view of.
func (b Buffer) Memory() Memory { return b.mem }

// Layout returns where the limbs of the buffer are.
func (b Buffer) Layout() Layout { return b.lay }

// Basis returns the moduli of the buffer's polynomials.
func (b Buffer) Basis() Basis { return Basis{b.lay.LevelQ, b.lay.LevelP} }

// Count returns the number of polynomials.
func (b Buffer) Count() int { return b.lay.Count }

// N returns the ring degree.
func (b Buffer) N() int { return b.lay.N }

// IsZero reports whether b is the zero Buffer (no memory).
func (b Buffer) IsZero() bool { return b.mem == nil }

// AtLevel returns the view of the first levelQ+1 Q limbs and levelP+1 P
// limbs of every polynomial (levelP = -1 drops the P limbs). It panics if
// the levels exceed the buffer's.
func (b Buffer) AtLevel(levelQ, levelP int) Buffer {
	if levelQ > b.lay.LevelQ || levelP > b.lay.LevelP || levelQ < -1 || levelP < -1 {
		panic(fmt.Errorf("cannot AtLevel: (%d, %d) exceeds %s", levelQ, levelP, b.Basis()))
	}
	b.lay.LevelQ, b.lay.LevelP = levelQ, levelP
	return b
}

// Q returns the view of the Q limbs only.
func (b Buffer) Q() Buffer { return b.AtLevel(b.lay.LevelQ, -1) }

// Slice returns the view of polynomials i..j-1. It panics if out of range.
func (b Buffer) Slice(i, j int) Buffer {
	if i < 0 || j > b.lay.Count || i > j {
		panic(fmt.Errorf("cannot Slice: [%d:%d] out of range [0:%d]", i, j, b.lay.Count))
	}
	b.lay.QOffset += i * b.lay.Stride
	b.lay.POffset += i * b.lay.Stride
	b.lay.Count = j - i
	return b
}

// Poly returns the view of the i-th polynomial.
func (b Buffer) Poly(i int) Buffer { return b.Slice(i, i+1) }

// LimbOffset returns the word offset of limb j (Q limbs first) of polynomial k.
func (l Layout) LimbOffset(k, j int) int {
	if j <= l.LevelQ {
		return l.QOffset + k*l.Stride + j*l.N
	}
	return l.POffset + k*l.Stride + (j-l.LevelQ-1)*l.N
}

// Limbs returns the number of limbs of each polynomial.
func (l Layout) Limbs() int { return l.LevelQ + 1 + l.LevelP + 1 }

// sameShape reports an error unless the buffers have the same degree,
// count and basis.
func sameShape(op string, bufs ...Buffer) error {
	for _, b := range bufs[1:] {
		if b.lay.N != bufs[0].lay.N || b.lay.Count != bufs[0].lay.Count || b.Basis() != bufs[0].Basis() {
			return fmt.Errorf("cannot %s: operand shapes differ (%d x %s vs %d x %s)",
				op, b.lay.Count, b.Basis(), bufs[0].lay.Count, bufs[0].Basis())
		}
	}
	return nil
}
