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
	// opMulScaledPoly is w ⊙ x ⊙ fn(y) with w the server's plaintext.
	opMulScaledPoly op = 6
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
	case opMulScaledPoly:
		return "MulScaledPoly"
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
	// msgVersion 2: the groups of a batched call (Server.Polys) in every
	// header; version 1 had one group.
	msgVersion = 2
	// fixedHeader: version, op, fingerprint, first, count, groups,
	// operands; then per group its values and one level byte per operand.
	fixedHeader = 1 + 1 + 4 + 4 + 4 + 1 + 1
	// entryOverhead bounds what a share payload of one ciphertext holds
	// beside its packed polynomials (share's 10-byte header and a
	// ciphertext head of at most 42 bytes).
	entryOverhead = 64
	// MaxGroups bounds the groups of one call (Server.Polys' items): one
	// byte on the wire.
	MaxGroups = 255
)

// group is one part of a call: operands of values values each, operand j
// encrypted at levels[j] (MsgOutput: one operand, at the mask level). A
// group's ciphertexts follow the previous group's: ceil(values/Slots) of
// them, each holding one ciphertext per operand.
type group struct {
	values int
	levels []int
}

// header is the head of both messages: what the ciphertexts are for and
// which of them the message carries. Every field is public and both
// parties know it in advance: the receiver checks each.
type header struct {
	op           op
	groups       []group
	first, count int // the message's ciphertexts: [first, first+count) over all groups
}

// operands returns the operands per ciphertext of h's groups (all equal).
func (h header) operands() int { return len(h.groups[0].levels) }

// appendMessage encodes h and the share payloads, ciphertext-major
// (ciphertext t, then operand j), each behind its 4-byte length.
func (p Parameters) appendMessage(dst []byte, h header, entries [][]byte) []byte {
	dst = append(dst, msgVersion, byte(h.op))
	dst = binary.LittleEndian.AppendUint32(dst, p.fingerprint)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.first))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.count))
	dst = append(dst, byte(len(h.groups)), byte(h.operands()))
	for _, g := range h.groups {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(g.values))
		for _, l := range g.levels {
			dst = append(dst, byte(l))
		}
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

// appendScales encodes MsgScales: version, op, fingerprint, the group and
// operand counts, then per group its values and one float64 factor per
// operand (factors[g][j]).
func (p Parameters) appendScales(dst []byte, o op, values []int, factors [][]float64) []byte {
	dst = append(dst, msgVersion, byte(o))
	dst = binary.LittleEndian.AppendUint32(dst, p.fingerprint)
	dst = append(dst, byte(len(factors)), byte(len(factors[0])))
	for g, fs := range factors {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(values[g]))
		for _, f := range fs {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	return dst
}

// scalesHead is MsgScales' fixed head: version, op, fingerprint, groups,
// operands.
const scalesHead = 1 + 1 + 4 + 1 + 1

// decodeScales checks MsgScales against the call (op, each group's
// values, operands) and returns the factors per group, each in
// [minFactor, maxFactor].
func (p Parameters) decodeScales(payload []byte, o op, values []int, operands int) ([][]float64, error) {
	if len(payload) < scalesHead {
		return nil, fmt.Errorf("scales message of %d bytes is shorter than its %d-byte head", len(payload), scalesHead)
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
	if g := int(payload[6]); g != len(values) {
		return nil, fmt.Errorf("scales message has %d groups, want %d", g, len(values))
	}
	if m := int(payload[7]); m != operands {
		return nil, fmt.Errorf("scales message has %d operands, want %d", m, operands)
	}
	if want := scalesHead + len(values)*(4+8*operands); len(payload) != want {
		return nil, fmt.Errorf("scales message of %d bytes, want %d", len(payload), want)
	}
	out := make([][]float64, len(values))
	rest := payload[scalesHead:]
	for g := range out {
		if n := binary.LittleEndian.Uint32(rest); n != uint32(values[g]) {
			return nil, fmt.Errorf("scales message: group %d has values %d, want %d", g, n, values[g])
		}
		rest = rest[4:]
		out[g] = make([]float64, operands)
		for j := range out[g] {
			f := math.Float64frombits(binary.LittleEndian.Uint64(rest))
			if !(f >= minFactor && f <= maxFactor) {
				return nil, fmt.Errorf("group %d, operand %d: factor %v not in [2^-30, 2^30]", g, j, f)
			}
			out[g][j] = f
			rest = rest[8:]
		}
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
// payloads, ciphertext-major. Each payload is only bounded here (by the
// level of its group's operand); the conversion that consumes it
// (mpcbridge/share) checks it exactly.
func (p Parameters) decodeMessage(payload []byte, want header) ([][]byte, error) {
	rest, err := p.checkHeader(payload, want)
	if err != nil {
		return nil, err
	}
	m := want.operands()
	levels := p.ciphertextLevels(want)
	if len(levels) != want.count {
		return nil, fmt.Errorf("internal: ciphertexts [%d, %d) beyond the call's groups", want.first, want.first+want.count)
	}
	entries := make([][]byte, 0, want.count*m)
	for t := want.first; t < want.first+want.count; t++ {
		for j, l := range levels[t-want.first] {
			if len(rest) < 4 {
				return nil, fmt.Errorf("ciphertext %d, operand %d: truncated: %d bytes left, want a 4-byte length", t, j, len(rest))
			}
			size := binary.LittleEndian.Uint32(rest)
			rest = rest[4:]
			if limit := uint32(entryOverhead + 2*p.polyBytes(l)); size == 0 || size > limit {
				return nil, fmt.Errorf("ciphertext %d, operand %d: %d bytes, not in [1, %d] for level %d", t, j, size, limit, l)
			}
			if uint32(len(rest)) < size {
				return nil, fmt.Errorf("ciphertext %d, operand %d: truncated: %d bytes left, want %d", t, j, len(rest), size)
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

// checkHeader checks payload's header against want, field by field, and
// returns what follows it.
func (p Parameters) checkHeader(payload []byte, want header) ([]byte, error) {
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
		{"first ciphertext", binary.LittleEndian.Uint32(payload[6:]), uint32(want.first)},
		{"ciphertext count", binary.LittleEndian.Uint32(payload[10:]), uint32(want.count)},
		{"groups", uint32(payload[14]), uint32(len(want.groups))},
		{"operands", uint32(payload[15]), uint32(want.operands())},
	} {
		if f.got != f.want {
			return nil, fmt.Errorf("message has %s %d, want %d", f.name, f.got, f.want)
		}
	}
	rest := payload[fixedHeader:]
	for g, gr := range want.groups {
		if len(rest) < 4+len(gr.levels) {
			return nil, fmt.Errorf("message truncated in group %d's head: %d bytes left, want %d", g, len(rest), 4+len(gr.levels))
		}
		if n := binary.LittleEndian.Uint32(rest); n != uint32(gr.values) {
			return nil, fmt.Errorf("message: group %d has values %d, want %d", g, n, gr.values)
		}
		for j, l := range gr.levels {
			if got := int(rest[4+j]); got != l {
				return nil, fmt.Errorf("group %d, operand %d at level %d, want %d", g, j, got, l)
			}
		}
		rest = rest[4+len(gr.levels):]
	}
	return rest, nil
}

// ciphertextLevels returns the operands' levels of the ciphertexts
// [h.first, h.first+h.count) of h's groups.
func (p Parameters) ciphertextLevels(h header) [][]int {
	out := make([][]int, 0, h.count)
	t := 0
	for _, g := range h.groups {
		for k := p.Ciphertexts(g.values); k > 0; k-- {
			if t >= h.first && t < h.first+h.count {
				out = append(out, g.levels)
			}
			t++
		}
	}
	return out
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
