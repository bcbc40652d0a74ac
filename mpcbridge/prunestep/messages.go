package prunestep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of this package, in the block 0x0500-0x05ff (0x01xx is
// mpcbridge/share's, 0x02xx the shuffle's, 0x03xx the comparisons',
// 0x04xx the engine's).
const (
	// MsgRequest (server -> client) announces the next bridge operation
	// (RequestPrune, RequestRefresh or RequestDone) and its public
	// arguments; the operation's own messages follow in the same flight.
	MsgRequest wire.Type = 0x0501
	// MsgIntShares (server -> client) carries (b - b') mod 2^128 for every
	// feature value of every shuffled row, two words each (low first): the
	// ring-to-integer conversion.
	MsgIntShares wire.Type = 0x0502
	// MsgRevealShares (server -> client) carries the server's shares of the
	// slots a Reveal opens, with their indices.
	MsgRevealShares wire.Type = 0x0503
	// MsgRevealLabel (server -> client) carries the two slots a RevealLabel
	// compares (label 0's, then label 1's; uint32 each, big-endian).
	MsgRevealLabel wire.Type = 0x0504
)

func init() {
	wire.RegisterType(MsgRequest, "prunestep.Request")
	wire.RegisterType(MsgIntShares, "prunestep.IntShares")
	wire.RegisterType(MsgRevealShares, "prunestep.RevealShares")
	wire.RegisterType(MsgRevealLabel, "prunestep.RevealLabel")
}

// Op is the operation a request announces.
type Op uint8

// The operations of a bridge session.
const (
	// RequestRefresh: a share.Server.Refresh follows.
	RequestRefresh Op = 1
	// RequestPrune: a pruning step follows.
	RequestPrune Op = 2
	// RequestDone: the server ends the session; the client's ServeBridge
	// returns.
	RequestDone Op = 3
	// RequestProgress: nothing follows and nothing is answered; the
	// server tells the client which layer and stage it has reached, so the
	// client can show progress (ServeBridgeEvents). It carries public
	// information only: the client sees the bridge's requests anyway.
	RequestProgress Op = 4
	// RequestReveal: an HE-to-shares conversion of one ciphertext and the
	// server's shares of the opened slots follow (Server.Reveal); it is
	// served by Client.Reveal, not by ServeBridge.
	RequestReveal Op = 5
	// RequestRevealLabel: an HE-to-shares conversion of one ciphertext,
	// the two slots compared (MsgRevealLabel) and a garbled comparison whose
	// bit only the client learns follow (Server.RevealLabel); it is served
	// by Client.RevealLabel, not by ServeBridge.
	RequestRevealLabel Op = 6
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case RequestRefresh:
		return "refresh"
	case RequestPrune:
		return "prune"
	case RequestDone:
		return "done"
	case RequestProgress:
		return "progress"
	case RequestReveal:
		return "reveal"
	case RequestRevealLabel:
		return "reveal label"
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
	//	40      4     rows n (prune), stage (progress), slot count (reveal); zero otherwise
	//	44      4     columns d    (prune)
	//	48      4     block        (prune)
	//	52      4     slots        (prune)
	//	56      4     level of the returned ciphertexts (prune)
	//	60      8     scale of the returned ciphertexts, float64 bits (prune)
	requestSize = 68
)

// request is a decoded MsgRequest. Everything in it is public: the model
// shape, the padded length and the layer index.
type request struct {
	op     Op
	fp     [32]byte
	layer  int
	stage  int // RequestProgress: the stage; RequestReveal, RequestRevealLabel: the slot count
	layout ckks.Layout
	level  int
	scale  float64
}

// marshal encodes r. All integers are big-endian.
func (r *request) marshal() []byte {
	p := make([]byte, requestSize)
	p[0] = msgVersion
	p[1] = byte(r.op)
	copy(p[4:36], r.fp[:])
	be := binary.BigEndian
	be.PutUint32(p[36:], uint32(r.layer))
	if r.op == RequestProgress || r.op == RequestReveal || r.op == RequestRevealLabel {
		be.PutUint32(p[40:], uint32(r.stage))
	}
	if r.op == RequestPrune {
		be.PutUint32(p[40:], uint32(r.layout.Rows))
		be.PutUint32(p[44:], uint32(r.layout.Cols))
		be.PutUint32(p[48:], uint32(r.layout.Block))
		be.PutUint32(p[52:], uint32(r.layout.Slots))
		be.PutUint32(p[56:], uint32(r.level))
		be.PutUint64(p[60:], math.Float64bits(r.scale))
	}
	return p
}

// maxLayer bounds the layer index of a request, maxStage the stage of a
// progress request.
const (
	maxLayer = 1 << 16
	maxStage = 1 << 16
)

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
	switch r.op {
	case RequestRefresh, RequestDone:
		for i := 40; i < requestSize; i++ {
			if p[i] != 0 {
				return request{}, fmt.Errorf("%w: %v request with non-zero prune fields", ErrMalformed, r.op)
			}
		}
		return r, nil
	case RequestProgress, RequestReveal, RequestRevealLabel:
		r.stage = int(be.Uint32(p[40:]))
		if r.stage >= maxStage || (r.op == RequestReveal && (r.stage < 1 || r.stage > MaxRevealSlots)) ||
			(r.op == RequestRevealLabel && r.stage != 2) {
			return request{}, fmt.Errorf("%w: %v request with field %d", ErrMalformed, r.op, r.stage)
		}
		for i := 44; i < requestSize; i++ {
			if p[i] != 0 {
				return request{}, fmt.Errorf("%w: %v request with non-zero prune fields", ErrMalformed, r.op)
			}
		}
		return r, nil
	case RequestPrune:
	default:
		return request{}, fmt.Errorf("%w: unknown request %v", ErrMalformed, r.op)
	}
	var v [5]int
	for i := range v {
		x := be.Uint32(p[40+4*i:])
		if x > 1<<30 {
			return request{}, fmt.Errorf("%w: request field %d is %d", ErrMalformed, i, x)
		}
		v[i] = int(x)
	}
	r.layout = ckks.Layout{Rows: v[0], Cols: v[1], Block: v[2], Slots: v[3]}
	r.level = v[4]
	r.scale = math.Float64frombits(be.Uint64(p[60:]))
	if err := r.layout.Validate(); err != nil {
		return request{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !(r.scale >= 1) || math.IsInf(r.scale, 0) {
		return request{}, fmt.Errorf("%w: scale %v", ErrMalformed, r.scale)
	}
	return r, nil
}
