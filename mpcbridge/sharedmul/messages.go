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
	// right operand's Weights() blocks, one message each.
	MsgInput wire.Type = 0x0801
	// MsgOutput (server -> client) carries one sanitized output block
	// (c0 at the targets, c1 whole; c2 the client computes), in
	// OutputIndex order, one message each.
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

// headerSize is the bytes of a message header: Rows, In, Out, D0, D1, D2
// and the sequence number, uint32 big-endian each.
const headerSize = 7 * 4

func putHeader(dst []byte, lay polymat.Layout, seq int) []byte {
	for _, v := range []int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2, seq} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return dst
}

// checkHeader checks that b starts with the header of lay and seq.
func checkHeader(b []byte, lay polymat.Layout, seq int) error {
	if len(b) < headerSize {
		return fmt.Errorf("message of %d bytes, shorter than its %d-byte header", len(b), headerSize)
	}
	names := []string{"Rows", "In", "Out", "D0", "D1", "D2", "sequence number"}
	for k, want := range []int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2, seq} {
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

// bitsPerCoefficient is Σ_i ceil(log2 q_i).
func bitsPerCoefficient(rp polymat.Parameters) int {
	w := 0
	for _, x := range rp.Widths() {
		w += x
	}
	return w
}

// inputBytes is the size of an input message.
func inputBytes(rp polymat.Parameters) int {
	return headerSize + polymat.SeedSize + rp.PolyBytes()
}

// encodeInput returns the input message of block seq: header, seed, c0
// (packed residues).
func encodeInput(rp polymat.Parameters, lay polymat.Layout, seq int, seed []byte, c0 ring.Poly) []byte {
	b := make([]byte, 0, inputBytes(rp))
	b = putHeader(b, lay, seq)
	b = append(b, seed...)
	w := matmul.NewBitWriter(b)
	appendPoly(w, c0, rp.Widths())
	return w.Flush()
}

// decodeInput checks an input message of block seq and writes its c0
// into c0; it returns the seed.
func decodeInput(rp polymat.Parameters, lay polymat.Layout, seq int, b []byte, c0 ring.Poly) ([]byte, error) {
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

// outputBytes is the size of the message of output o.
func outputBytes(rp polymat.Parameters, lay polymat.Layout, o int) int {
	return headerSize + ((lay.Targets(o)+rp.N())*bitsPerCoefficient(rp)+7)/8
}

// encodeOutput returns the message of output o: header, c0 at the targets
// (limb by limb, in AppendTargets order) and c1 whole (coefficient
// domain), packed residues.
func encodeOutput(rp polymat.Parameters, lay polymat.Layout, o int, targets []int, c0, c1 ring.Poly) []byte {
	b := make([]byte, 0, outputBytes(rp, lay, o))
	b = putHeader(b, lay, o)
	w := matmul.NewBitWriter(b)
	widths := rp.Widths()
	for l, limb := range c0.Coeffs {
		for _, t := range targets {
			w.Write(limb[t], uint(widths[l]))
		}
	}
	appendPoly(w, c1, widths)
	return w.Flush()
}

// decodeOutput checks the message of output o and returns c0 at the
// targets (limb-major: [l][k]) and c1 in the given polynomial.
func decodeOutput(rp polymat.Parameters, lay polymat.Layout, o int, b []byte, c1 ring.Poly) ([][]uint64, error) {
	if len(b) != outputBytes(rp, lay, o) {
		return nil, fmt.Errorf("cannot decode output %d: %d bytes, want %d", o, len(b), outputBytes(rp, lay, o))
	}
	if err := checkHeader(b, lay, o); err != nil {
		return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
	}
	r := matmul.NewBitReader(b[headerSize:])
	widths := rp.Widths()
	c0 := make([][]uint64, rp.Limbs())
	for l, q := range rp.Moduli() {
		c0[l] = make([]uint64, lay.Targets(o))
		if err := readResidues(r, c0[l], l, q, widths[l], "c0 at the targets"); err != nil {
			return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
		}
	}
	for l, q := range rp.Moduli() {
		if err := readResidues(r, c1.Coeffs[l], l, q, widths[l], "c1"); err != nil {
			return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
		}
	}
	if err := r.End(); err != nil {
		return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
	}
	return c0, nil
}
