package elementwise

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of this package, in the block 0x0700-0x07ff.
const (
	// MsgInput (client -> server) carries the client's seeded encryptions
	// of its shares, Chunk ciphertexts of every operand per message.
	MsgInput wire.Type = 0x0701
	// MsgOutput (server -> client) carries the masked, re-randomized
	// output ciphertexts, Chunk per message.
	MsgOutput wire.Type = 0x0702
	// MsgScales (server -> client), first in a Poly or MulPoly call,
	// carries the factor each operand's shares are encoded with (the
	// folded change of basis of the server's recipe, 1 otherwise): a
	// public constant of the recipe, which the client does not hold.
	MsgScales wire.Type = 0x0703
)

func init() {
	wire.RegisterType(MsgInput, "elementwise.Input")
	wire.RegisterType(MsgOutput, "elementwise.Output")
	wire.RegisterType(MsgScales, "elementwise.Scales")
}

// Conn is the connection between the parties: *wire.Conn implements it.
type Conn interface {
	Send(ctx context.Context, t wire.Type, payload []byte) error
	Recv(ctx context.Context, t wire.Type) ([]byte, error)
}

// op is the operation a message belongs to.
type op uint8

const (
	opPoly    op = 1 // fn(x)
	opMul     op = 2 // x ⊙ y
	opMulPoly op = 3 // x ⊙ fn(y)
	opSquare  op = 4 // x ⊙ x
	// opMulScaled is w ⊙ x ⊙ y with w the server's plaintext.
	opMulScaled op = 5
)

func (o op) String() string {
	switch o {
	case opPoly:
		return "Poly"
	case opMul:
		return "Mul"
	case opMulPoly:
		return "MulPoly"
	case opSquare:
		return "Square"
	case opMulScaled:
		return "MulScaled"
	default:
		return fmt.Sprintf("op(%d)", uint8(o))
	}
}

// operands returns the number of shared vectors the client sends.
func (o op) operands() int {
	if o == opPoly || o == opSquare {
		return 1
	}
	return 2
}

const (
	msgVersion = 1
	// fixedHeader: version, op, fingerprint, values, first, count,
	// operands; then one level byte per operand.
	fixedHeader = 1 + 1 + 4 + 4 + 4 + 4 + 1
	// entryOverhead bounds what a share payload of one ciphertext holds
	// beside its packed polynomials (share's 10-byte header and a
	// ciphertext head of at most 42 bytes).
	entryOverhead = 64
)

// header is the head of both messages: what the ciphertexts are for and
// which of them the message carries. Every field is public and both
// parties know it in advance: the receiver checks each.
type header struct {
	op           op
	values       int   // n, the length of the call's vectors
	first, count int   // the message's ciphertexts: [first, first+count)
	levels       []int // one per operand (MsgOutput: the mask level)
}

// appendMessage encodes h and the share payloads, ciphertext-major
// (ciphertext t, then operand j), each behind its 4-byte length.
func (p Parameters) appendMessage(dst []byte, h header, entries [][]byte) []byte {
	dst = append(dst, msgVersion, byte(h.op))
	dst = binary.LittleEndian.AppendUint32(dst, p.fingerprint)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.values))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.first))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.count))
	dst = append(dst, byte(len(h.levels)))
	for _, l := range h.levels {
		dst = append(dst, byte(l))
	}
	for _, e := range entries {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e)))
		dst = append(dst, e...)
	}
	return dst
}

// Bounds on an encoding factor of MsgScales: a change of basis maps an
// interval of width 2/factor onto [-1, 1].
const (
	minFactor = 0x1p-30
	maxFactor = 0x1p30
)

// appendScales encodes MsgScales: version, op, fingerprint, values, the
// operand count, then one float64 factor per operand.
func (p Parameters) appendScales(dst []byte, o op, values int, factors []float64) []byte {
	dst = append(dst, msgVersion, byte(o))
	dst = binary.LittleEndian.AppendUint32(dst, p.fingerprint)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(values))
	dst = append(dst, byte(len(factors)))
	for _, f := range factors {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return dst
}

// decodeScales checks MsgScales against the call (op, values, operands)
// and returns the factors, each in [minFactor, maxFactor].
func (p Parameters) decodeScales(payload []byte, o op, values, operands int) ([]float64, error) {
	const head = 1 + 1 + 4 + 4 + 1
	if len(payload) != head+8*operands {
		return nil, fmt.Errorf("scales message of %d bytes, want %d", len(payload), head+8*operands)
	}
	if v := payload[0]; v != msgVersion {
		return nil, fmt.Errorf("scales message version %d, want %d", v, msgVersion)
	}
	if got := op(payload[1]); got != o {
		return nil, fmt.Errorf("scales message for %v, want %v", got, o)
	}
	if f := binary.LittleEndian.Uint32(payload[2:]); f != p.fingerprint {
		return nil, fmt.Errorf("scales message for other parameters (fingerprint %08x, want %08x)", f, p.fingerprint)
	}
	if n := binary.LittleEndian.Uint32(payload[6:]); n != uint32(values) {
		return nil, fmt.Errorf("scales message has values %d, want %d", n, values)
	}
	if m := int(payload[10]); m != operands {
		return nil, fmt.Errorf("scales message has %d operands, want %d", m, operands)
	}
	out := make([]float64, operands)
	for j := range out {
		f := math.Float64frombits(binary.LittleEndian.Uint64(payload[head+8*j:]))
		if !(f >= minFactor && f <= maxFactor) {
			return nil, fmt.Errorf("operand %d: factor %v not in [2^-30, 2^30]", j, f)
		}
		out[j] = f
	}
	return out, nil
}

// polyBytes is the size of a packed polynomial at level, as mpcbridge/share
// packs it: ceil(log2 q_i) bits per coefficient of limb i.
func (p Parameters) polyBytes(level int) int {
	w := 0
	for _, q := range p.params.Q()[:level+1] {
		w += bits.Len64(q - 1)
	}
	return (p.params.N()*w + 7) / 8
}

// decodeMessage checks the header of a received message against want (the
// header the receiver expects) and returns its count·operands share
// payloads, ciphertext-major. Each payload is only bounded here; the
// conversion that consumes it (mpcbridge/share) checks it exactly.
func (p Parameters) decodeMessage(payload []byte, want header) ([][]byte, error) {
	if len(payload) < fixedHeader {
		return nil, fmt.Errorf("message of %d bytes is shorter than its %d-byte header", len(payload), fixedHeader)
	}
	if v := payload[0]; v != msgVersion {
		return nil, fmt.Errorf("message version %d, want %d", v, msgVersion)
	}
	if o := op(payload[1]); o != want.op {
		return nil, fmt.Errorf("message for %v, want %v", o, want.op)
	}
	if f := binary.LittleEndian.Uint32(payload[2:]); f != p.fingerprint {
		return nil, fmt.Errorf("message for other parameters (fingerprint %08x, want %08x)", f, p.fingerprint)
	}
	for _, f := range []struct {
		name      string
		got, want uint32
	}{
		{"values", binary.LittleEndian.Uint32(payload[6:]), uint32(want.values)},
		{"first ciphertext", binary.LittleEndian.Uint32(payload[10:]), uint32(want.first)},
		{"ciphertext count", binary.LittleEndian.Uint32(payload[14:]), uint32(want.count)},
	} {
		if f.got != f.want {
			return nil, fmt.Errorf("message has %s %d, want %d", f.name, f.got, f.want)
		}
	}
	m := int(payload[18])
	if m != len(want.levels) {
		return nil, fmt.Errorf("message has %d operands, want %d", m, len(want.levels))
	}
	rest := payload[fixedHeader:]
	if len(rest) < m {
		return nil, fmt.Errorf("message truncated in its levels: %d bytes left, want %d", len(rest), m)
	}
	for j, l := range want.levels {
		if got := int(rest[j]); got != l {
			return nil, fmt.Errorf("operand %d at level %d, want %d", j, got, l)
		}
	}
	rest = rest[m:]
	entries := make([][]byte, 0, want.count*m)
	for t := 0; t < want.count; t++ {
		for j, l := range want.levels {
			if len(rest) < 4 {
				return nil, fmt.Errorf("ciphertext %d, operand %d: truncated: %d bytes left, want a 4-byte length", want.first+t, j, len(rest))
			}
			size := binary.LittleEndian.Uint32(rest)
			rest = rest[4:]
			if limit := uint32(entryOverhead + 2*p.polyBytes(l)); size == 0 || size > limit {
				return nil, fmt.Errorf("ciphertext %d, operand %d: %d bytes, not in [1, %d] for level %d", want.first+t, j, size, limit, l)
			}
			if uint32(len(rest)) < size {
				return nil, fmt.Errorf("ciphertext %d, operand %d: truncated: %d bytes left, want %d", want.first+t, j, len(rest), size)
			}
			entries = append(entries, rest[:size:size])
			rest = rest[size:]
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after %d ciphertexts", len(rest), want.count)
	}
	return entries, nil
}

// shareConn hands one payload to a conversion of mpcbridge/share (Recv) or
// takes the one it sends (Send): the conversions run on one ciphertext
// each, on any worker, and this package frames their payloads.
type shareConn struct {
	in  []byte
	out []byte
}

var errShareConn = errors.New("internal: unexpected conversion message")

func (c *shareConn) Send(_ context.Context, _ uint16, payload []byte) error {
	if c.out != nil {
		return errShareConn
	}
	c.out = payload
	return nil
}

func (c *shareConn) Recv(ctx context.Context, _ uint16) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.in == nil {
		return nil, errShareConn
	}
	in := c.in
	c.in = nil
	return in, nil
}

var _ share.Conn = (*shareConn)(nil)
