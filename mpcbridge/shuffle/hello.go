package shuffle

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors reported by Permute, Assist and Shuffle; test with errors.Is.
var (
	// ErrMismatch: the peer's number of rows, width, ring or role differ from
	// ours (both parties permuting, for example). Nothing secret was sent,
	// and both hellos were consumed, so the stream is still in step.
	ErrMismatch = errors.New("shuffle: parties disagree")
	// ErrPeerAborted: the peer rejected its own arguments (an invalid
	// permutation, a size over its limits) and said so in its hello; the
	// stream is still in step.
	ErrPeerAborted = errors.New("shuffle: peer aborted: it rejected its own arguments")
	// ErrMalformed: the peer sent bytes that are not a valid protocol
	// message (including data on which the OT library panicked).
	ErrMalformed = errors.New("shuffle: malformed message from peer")
)

const (
	version   = 2
	pointSize = 64 // affine X || Y of a P-256 point, 32 bytes each
	helloSize = 16 + pointSize
)

var helloMagic = [4]byte{'C', 'P', 's', 'h'}

// role is a party's role in one permute-and-share.
type role uint8

const (
	rolePermuter  role = iota // P: knows π
	roleAssistant             // Q: the other share's holder
)

func (r role) String() string {
	if r == rolePermuter {
		return "permuter"
	}
	return "assistant"
}

const (
	statusOK    = 0
	statusAbort = 1
)

// hello is each party's first message, sent by both at once. It has a fixed
// size, so each side reads exactly the peer's hello and a refused handshake
// leaves the stream in step.
//
//	offset size field
//	0      4    magic "CPsh"
//	4      1    version (2)
//	5      1    role: 0 permuter, 1 assistant
//	6      1    status: 0 ok, 1 abort (the sender rejected its own arguments)
//	7      1    ring: 0 Ring64, 1 Ring128
//	8      4    n, rows (big-endian)
//	12     4    width, columns (big-endian)
//	16     64   the permuter's Chou-Orlandi point A (zero for the assistant
//	            and when no OT runs)
//
// With status ok, n <= MaxRows and width <= MaxWidth; an aborting party's
// sizes are informational and unchecked.
type hello struct {
	role   role
	ring   Ring
	status uint8
	n      uint32
	width  uint32
	point  [pointSize]byte
}

func (h *hello) marshal() []byte {
	b := make([]byte, helloSize)
	copy(b, helloMagic[:])
	b[4], b[5], b[6], b[7] = version, byte(h.role), h.status, byte(h.ring)
	binary.BigEndian.PutUint32(b[8:], h.n)
	binary.BigEndian.PutUint32(b[12:], h.width)
	copy(b[16:], h.point[:])
	return b
}

// parseHello decodes a hello; b must hold helloSize bytes.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloSize {
		return h, fmt.Errorf("%w: hello has %d bytes, want %d", ErrMalformed, len(b), helloSize)
	}
	if [4]byte(b[:4]) != helloMagic {
		return h, fmt.Errorf("%w: not a shuffle hello (magic %q)", ErrMalformed, b[:4])
	}
	if b[4] != version {
		return h, fmt.Errorf("%w: hello version %d, want %d", ErrMalformed, b[4], version)
	}
	if b[5] > byte(roleAssistant) || b[6] > statusAbort || b[7] > byte(Ring128) {
		return h, fmt.Errorf("%w: hello role %d, status %d, ring %d", ErrMalformed, b[5], b[6], b[7])
	}
	h.role, h.status, h.ring = role(b[5]), b[6], Ring(b[7])
	h.n = binary.BigEndian.Uint32(b[8:])
	h.width = binary.BigEndian.Uint32(b[12:])
	copy(h.point[:], b[16:])
	if h.status == statusOK {
		if h.n > MaxRows {
			return h, fmt.Errorf("%w: hello n = %d exceeds %d", ErrMalformed, h.n, MaxRows)
		}
		if h.width > MaxWidth {
			return h, fmt.Errorf("%w: hello width = %d exceeds %d", ErrMalformed, h.width, MaxWidth)
		}
	}
	return h, nil
}

// agree checks the peer's hello against ours.
func agree(me, peer hello) error {
	switch {
	case peer.status == statusAbort:
		return ErrPeerAborted
	case peer.role == me.role:
		return fmt.Errorf("%w: both parties are %ss", ErrMismatch, me.role)
	case peer.ring != me.ring:
		return fmt.Errorf("%w: peer shares are modulo %v, ours %v", ErrMismatch, peer.ring, me.ring)
	case peer.n != me.n:
		return fmt.Errorf("%w: peer has n = %d rows, we have %d", ErrMismatch, peer.n, me.n)
	case peer.width != me.width:
		return fmt.Errorf("%w: peer has width %d, we have %d", ErrMismatch, peer.width, me.width)
	}
	return nil
}

// clamp32 returns x as a uint32, saturating (for an aborting party's sizes).
func clamp32(x int) uint32 {
	if x < 0 {
		return 0
	}
	if uint64(x) > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(x)
}
