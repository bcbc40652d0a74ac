package sharedmul

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
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

// appendPoly appends every limb of p, 8 bytes little-endian per residue.
func appendPoly(dst []byte, p ring.Poly) []byte {
	for _, limb := range p.Coeffs {
		for _, c := range limb {
			dst = binary.LittleEndian.AppendUint64(dst, c)
		}
	}
	return dst
}

// readPoly fills p from b (as appendPoly wrote it), checking every residue
// against its prime, and returns the rest of b.
func readPoly(b []byte, p ring.Poly, moduli []uint64, what string) ([]byte, error) {
	need := len(moduli) * p.N() * 8
	if len(b) < need {
		return nil, fmt.Errorf("%s: %d bytes left, want %d", what, len(b), need)
	}
	for l, q := range moduli {
		limb := p.Coeffs[l]
		for k := range limb {
			c := binary.LittleEndian.Uint64(b)
			if c >= q {
				return nil, fmt.Errorf("%s: limb %d coefficient %d is %d, not below the prime %d", what, l, k, c, q)
			}
			limb[k] = c
			b = b[8:]
		}
	}
	return b, nil
}

// inputBytes is the size of an input message.
func inputBytes(rp polymat.Parameters) int {
	return headerSize + polymat.SeedSize + rp.Limbs()*rp.N()*8
}

// encodeInput returns the input message of block seq: header, seed, c0.
func encodeInput(lay polymat.Layout, seq int, seed []byte, c0 ring.Poly) []byte {
	b := make([]byte, 0, headerSize+len(seed)+len(c0.Coeffs)*c0.N()*8)
	b = putHeader(b, lay, seq)
	b = append(b, seed...)
	return appendPoly(b, c0)
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
	if _, err := readPoly(b[headerSize+polymat.SeedSize:], c0, rp.Moduli(), "c0"); err != nil {
		return nil, fmt.Errorf("cannot decode input %d: %w", seq, err)
	}
	return seed, nil
}

// outputBytes is the size of the message of output o.
func outputBytes(rp polymat.Parameters, lay polymat.Layout, o int) int {
	return headerSize + rp.Limbs()*8*(lay.Targets(o)+rp.N())
}

// encodeOutput returns the message of output o: header, c0 at the targets
// (limb by limb, in AppendTargets order) and c1 whole (coefficient
// domain).
func encodeOutput(rp polymat.Parameters, lay polymat.Layout, o int, targets []int, c0, c1 ring.Poly) []byte {
	b := make([]byte, 0, outputBytes(rp, lay, o))
	b = putHeader(b, lay, o)
	for _, limb := range c0.Coeffs {
		for _, t := range targets {
			b = binary.LittleEndian.AppendUint64(b, limb[t])
		}
	}
	return appendPoly(b, c1)
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
	b = b[headerSize:]
	t := lay.Targets(o)
	c0 := make([][]uint64, rp.Limbs())
	for l, q := range rp.Moduli() {
		c0[l] = make([]uint64, t)
		for k := range c0[l] {
			v := binary.LittleEndian.Uint64(b)
			if v >= q {
				return nil, fmt.Errorf("cannot decode output %d: c0 limb %d target %d is %d, not below the prime %d", o, l, k, v, q)
			}
			c0[l][k] = v
			b = b[8:]
		}
	}
	if _, err := readPoly(b, c1, rp.Moduli(), "c1"); err != nil {
		return nil, fmt.Errorf("cannot decode output %d: %w", o, err)
	}
	return c0, nil
}
