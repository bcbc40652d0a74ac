package sharedmul

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of this package, in the block 0x0800-0x08ff.
const (
	// MsgInput (client -> server) carries one seeded encryption of an
	// operand block: the left operand's Inputs() blocks first, then the
	// right operand's Weights() blocks (those of Layout that hold
	// diagonal entries), one message each.
	MsgInput wire.Type = 0x0801
	// MsgOutput (server -> client) carries one sanitized output block
	// (c0 at the targets, c1 whole, every coefficient rounded to a
	// multiple of 2^k; c2 the client computes), in OutputIndex order, one
	// message each.
	MsgOutput wire.Type = 0x0802
)

func init() {
	wire.RegisterType(MsgInput, "sharedmul.Input")
	wire.RegisterType(MsgOutput, "sharedmul.Output")
}

// Conn is the connection between the parties: *wire.Conn implements it.
type Conn interface {
	Send(ctx context.Context, t wire.Type, payload []byte) error
	Recv(ctx context.Context, t wire.Type) ([]byte, error)
}

// headerSize is the bytes of a message header: the packed product's
// Rows, In, Out, the block's D0, D1, D2, the Count of products and the
// sequence number, uint32 big-endian each.
const headerSize = 8 * 4

func putHeader(dst []byte, lay Layout, seq int) []byte {
	for _, v := range []int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2, lay.Count, seq} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return dst
}

// checkHeader checks that b starts with the header of lay and seq.
func checkHeader(b []byte, lay Layout, seq int) error {
	if len(b) < headerSize {
		return fmt.Errorf("message of %d bytes, shorter than its %d-byte header", len(b), headerSize)
	}
	names := []string{"Rows", "In", "Out", "D0", "D1", "D2", "Count", "sequence number"}
	for k, want := range []int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2, lay.Count, seq} {
		if got := binary.BigEndian.Uint32(b[4*k:]); uint64(got) != uint64(want) {
			return fmt.Errorf("header field %s is %d, want %d", names[k], got, want)
		}
	}
	return nil
}

// appendPoly appends every limb of p to w, ceil(log2 q_i) bits per residue
// of limb i.
func appendPoly(w *matmul.BitWriter, p ring.Poly, widths []int) {
	for l, limb := range p.Coeffs {
		for _, c := range limb {
			w.Write(c, uint(widths[l]))
		}
	}
}

// readResidues fills dst with residues of limb l read from r, checking
// each against its prime.
func readResidues(r *matmul.BitReader, dst []uint64, l int, q uint64, width int, what string) error {
	for k := range dst {
		c := r.Read(uint(width))
		if c >= q {
			return fmt.Errorf("%s: limb %d coefficient %d is %d, not below the prime %d", what, l, k, c, q)
		}
		dst[k] = c
	}
	return nil
}

// inputBytes is the size of an input message.
func inputBytes(rp polymat.Parameters) int {
	return headerSize + polymat.SeedSize + rp.PolyBytes()
}

// encodeInput returns the input message of block seq: header, seed, c0
// (packed residues).
func encodeInput(rp polymat.Parameters, lay Layout, seq int, seed []byte, c0 ring.Poly) []byte {
	b := make([]byte, 0, inputBytes(rp))
	b = putHeader(b, lay, seq)
	b = append(b, seed...)
	w := matmul.NewBitWriter(b)
	appendPoly(w, c0, rp.Widths())
	return w.Flush()
}

// decodeInput checks an input message of block seq and writes its c0
// into c0; it returns the seed.
func decodeInput(rp polymat.Parameters, lay Layout, seq int, b []byte, c0 ring.Poly) ([]byte, error) {
	if len(b) != inputBytes(rp) {
		return nil, fmt.Errorf("cannot decode input %d: %d bytes, want %d", seq, len(b), inputBytes(rp))
	}
	if err := checkHeader(b, lay, seq); err != nil {
		return nil, fmt.Errorf("cannot decode input %d: %w", seq, err)
	}
	seed := append([]byte(nil), b[headerSize:headerSize+polymat.SeedSize]...)
	r := matmul.NewBitReader(b[headerSize+polymat.SeedSize:])
	widths := rp.Widths()
	for l, q := range rp.Moduli() {
		if err := readResidues(r, c0.Coeffs[l], l, q, widths[l], "c0"); err != nil {
			return nil, fmt.Errorf("cannot decode input %d: %w", seq, err)
		}
	}
	if err := r.End(); err != nil {
		return nil, fmt.Errorf("cannot decode input %d: %w", seq, err)
	}
	return seed, nil
}

// outputBytes is the size of the message of output o: the header, then
// the targets of c0 and all of c1, OutputWidth bits each.
func (p Parameters) outputBytes(lay Layout, o int) int {
	return headerSize + ((lay.Targets(o)+p.ring.N())*int(p.rnd.width)+7)/8
}

// encodeOutput returns the message of output o: header, then c0 at the
// targets (in AppendTargets order) and c1 whole (coefficient domain),
// every coefficient c in [0, Q) as round(c/2^k) (at most
// floor((Q-1)/2^k)), OutputWidth bits.
func (p Parameters) encodeOutput(lay Layout, o int, targets []int, c0, c1 ring.Poly) []byte {
	b := make([]byte, 0, p.outputBytes(lay, o))
	b = putHeader(b, lay, o)
	w := matmul.NewBitWriter(b)
	res := make([]uint64, len(c0.Coeffs))
	put := func(c ring.Poly, t int) {
		for l := range res {
			res[l] = c.Coeffs[l][t]
		}
		hi, lo := p.rnd.round(res)
		p.rnd.write(w, hi, lo)
	}
	for _, t := range targets {
		put(c0, t)
	}
	for t := 0; t < p.ring.N(); t++ {
		put(c1, t)
	}
	return w.Flush()
}

// decodeOutput checks the message of output o and returns c0 at the
// targets (limb-major: [l][k]) and writes c1 into the given polynomial,
// both as the residues of the rounded values times 2^k.
func (p Parameters) decodeOutput(lay Layout, o int, b []byte, c1 ring.Poly) ([][]uint64, error) {
	if len(b) != p.outputBytes(lay, o) {
		return nil, fmt.Errorf("cannot decode output %d: %d bytes, want %d", o, len(b), p.outputBytes(lay, o))
	}
	if err := checkHeader(b, lay, o); err != nil {
		return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
	}
	r := matmul.NewBitReader(b[headerSize:])
	c0 := make([][]uint64, p.ring.Limbs())
	for l := range c0 {
		c0[l] = make([]uint64, lay.Targets(o))
	}
	read := func(what string, dst [][]uint64, k int) error {
		hi, lo := p.rnd.read(r)
		if !p.rnd.valid(hi, lo) {
			return fmt.Errorf("cannot decode output %d: %s: coefficient %d is over floor((Q-1)/2^%d)", o, what, k, p.rnd.k)
		}
		p.rnd.expand(hi, lo, dst, k)
		return nil
	}
	for k := range c0[0] {
		if err := read("c0 at the targets", c0, k); err != nil {
			return nil, err
		}
	}
	for k := 0; k < p.ring.N(); k++ {
		if err := read("c1", c1.Coeffs, k); err != nil {
			return nil, err
		}
	}
	if err := r.End(); err != nil {
		return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
	}
	return c0, nil
}
