package prunestep

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of this package, in the block 0x0500-0x05ff (0x01xx is
// mpcbridge/share's, 0x02xx the shuffle's, 0x03xx the comparisons',
// 0x04xx the engine's).
const (
	// MsgRequest (server -> client) announces the next operation
	// (RequestPruneShares, RequestRevealShares or
	// RequestRevealLabelShares) and its public arguments; the operation's
	// own messages follow in the same flight.
	MsgRequest wire.Type = 0x0501
	// MsgIntShares (server -> client) carries (b - b') mod 2^128 for every
	// feature value of every shuffled row, two words each (low first): the
	// ring-to-integer conversion.
	MsgIntShares wire.Type = 0x0502
	// MsgRevealShares (server -> client) carries the server's shares of the
	// values a RevealShares opens, with their indices. (0x0504 was the
	// removed ciphertext path's MsgRevealLabel.)
	MsgRevealShares wire.Type = 0x0503
	// MsgAccept (client -> server, empty) accepts a RequestPruneShares: the
	// client sends it before its first shuffle bytes, the server receives
	// it before reading any (acceptStream), so a refusal reaches the
	// server as the client's Abort, and the tunnel end marker of the
	// client's previous step travels before it (wire's Raw does not skip
	// one). It costs no flight.
	MsgAccept wire.Type = 0x0505
)

func init() {
	wire.RegisterType(MsgRequest, "prunestep.Request")
	wire.RegisterType(MsgIntShares, "prunestep.IntShares")
	wire.RegisterType(MsgRevealShares, "prunestep.RevealShares")
	wire.RegisterType(MsgAccept, "prunestep.Accept")
}

// Op is the operation a request announces.
type Op uint8

// The operations of a session. Ops 1 to 6 were the removed ciphertext
// path's (refresh, prune, done, progress, reveal, reveal label; see
// docs/results.md) and are refused as unknown.
const (
	// RequestPruneShares: a pruning step on integer shares follows
	// (Server.PruneShares: the shuffle, the integer-share words and the
	// comparisons); the request carries the public n, d and layer, and it
	// is served by Client.PruneShares, which checks them against its own
	// input.
	RequestPruneShares Op = 7
	// RequestRevealShares: the server's integer shares of the logits
	// follow (MsgRevealShares, indices 0..k-1; Server.RevealShares); the
	// request carries k. Served by Client.RevealShares.
	RequestRevealShares Op = 8
	// RequestRevealLabelShares: a garbled argmax whose result only the
	// client learns follows (Server.RevealLabelShares); the request carries
	// the number of labels k. Served by Client.RevealLabelShares.
	RequestRevealLabelShares Op = 9
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case RequestPruneShares:
		return "prune on shares"
	case RequestRevealShares:
		return "reveal on shares"
	case RequestRevealLabelShares:
		return "reveal label on shares"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// ErrMismatch means the request was made for other parameters than the
// receiver's (a different fingerprint or message version).
var ErrMismatch = errors.New("prunestep: parameters differ")

// ErrMalformed means a message does not have the form this package sends.
var ErrMalformed = errors.New("prunestep: malformed message")

const (
	msgVersion = 1
	// requestSize is the fixed size of a request payload:
	//
	//	offset  size  field
	//	0       1     version (msgVersion)
	//	1       1     op
	//	2       2     reserved, zero
	//	4       32    fingerprint of the parameters (SHA-256)
	//	36      4     layer
	//	40      4     rows n (prune on shares), value or label count
	//	              (the reveals)
	//	44      4     columns d (prune on shares), zero otherwise
	//	48      20    zero (the removed ciphertext path's block, slots,
	//	              level and scale)
	requestSize = 68
)

// request is a decoded MsgRequest. Everything in it is public: the model
// shape, the padded length and the layer index.
type request struct {
	op    Op
	fp    [32]byte
	layer int
	count int // the reveals: the value or label count
	rows  int // RequestPruneShares: n
	cols  int // RequestPruneShares: d
}

// marshal encodes r. All integers are big-endian.
func (r *request) marshal() []byte {
	p := make([]byte, requestSize)
	p[0] = msgVersion
	p[1] = byte(r.op)
	copy(p[4:36], r.fp[:])
	be := binary.BigEndian
	be.PutUint32(p[36:], uint32(r.layer))
	switch r.op {
	case RequestRevealShares, RequestRevealLabelShares:
		be.PutUint32(p[40:], uint32(r.count))
	case RequestPruneShares:
		be.PutUint32(p[40:], uint32(r.rows))
		be.PutUint32(p[44:], uint32(r.cols))
	}
	return p
}

// maxLayer bounds the layer index of a request.
const maxLayer = 1 << 16

// decodeRequest parses and checks a request payload. It checks the form
// only; the receiver checks the values against its parameters.
func decodeRequest(p []byte) (request, error) {
	if len(p) != requestSize {
		return request{}, fmt.Errorf("%w: request of %d bytes, want %d", ErrMalformed, len(p), requestSize)
	}
	if p[0] != msgVersion {
		return request{}, fmt.Errorf("%w: request version %d, want %d", ErrMismatch, p[0], msgVersion)
	}
	if p[2] != 0 || p[3] != 0 {
		return request{}, fmt.Errorf("%w: request reserved bytes %#02x %#02x", ErrMalformed, p[2], p[3])
	}
	be := binary.BigEndian
	r := request{op: Op(p[1]), layer: int(be.Uint32(p[36:]))}
	copy(r.fp[:], p[4:36])
	if r.layer >= maxLayer {
		return request{}, fmt.Errorf("%w: layer %d, limit %d", ErrMalformed, r.layer, maxLayer)
	}
	var err error
	switch r.op {
	case RequestRevealShares, RequestRevealLabelShares:
		err = r.decodeCount(p)
	case RequestPruneShares:
		err = r.decodeShape(p)
	default:
		err = fmt.Errorf("%w: unknown request %v", ErrMalformed, r.op)
	}
	if err != nil {
		return request{}, err
	}
	return r, nil
}

// zeroFrom checks that the fields of p from offset on, which op does not
// use, are zero.
func zeroFrom(p []byte, offset int, op Op) error {
	for i := offset; i < len(p); i++ {
		if p[i] != 0 {
			return fmt.Errorf("%w: %v request with non-zero byte %d", ErrMalformed, op, i)
		}
	}
	return nil
}

// countRange returns the range of the count field (offset 40) of a
// reveal request.
func countRange(op Op) (lo, hi int) {
	if op == RequestRevealLabelShares {
		return 2, MaxLabels
	}
	return 1, MaxRevealSlots
}

// decodeCount decodes the count field of a reveal request.
func (r *request) decodeCount(p []byte) error {
	r.count = int(binary.BigEndian.Uint32(p[40:]))
	if lo, hi := countRange(r.op); r.count < lo || r.count > hi {
		return fmt.Errorf("%w: %v request with field %d", ErrMalformed, r.op, r.count)
	}
	return zeroFrom(p, 44, r.op)
}

// decodeShape decodes the n and d of a prune-on-shares request.
func (r *request) decodeShape(p []byte) error {
	r.rows = int(binary.BigEndian.Uint32(p[40:]))
	r.cols = int(binary.BigEndian.Uint32(p[44:]))
	if r.rows < 1 || r.rows > maxCols || r.cols < 1 || r.cols > maxCols {
		return fmt.Errorf("%w: %v request for %d x %d rows", ErrMalformed, r.op, r.rows, r.cols)
	}
	return zeroFrom(p, 48, r.op)
}
