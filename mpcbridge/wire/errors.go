package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by a Conn wrap one of these where the
// caller may need to tell the cause apart; test for them with [errors.Is].
var (
	// ErrFrameTooLarge means a frame's length exceeds the receiver's limit
	// (Config.MaxFrame, or the count limit of a typed helper).
	ErrFrameTooLarge = errors.New("wire: frame too large")

	// ErrMalformed means a frame or a transport message does not have the
	// form the protocol requires: non-zero reserved bits, a payload of the
	// wrong length for its type.
	ErrMalformed = errors.New("wire: malformed frame")

	// ErrMagic means the peer's first frame is not a hello of this protocol:
	// the peer speaks something else.
	ErrMagic = errors.New("wire: bad magic")

	// ErrVersion means the two ends speak different wire format or protocol
	// versions.
	ErrVersion = errors.New("wire: version mismatch")

	// ErrRole means both ends claim the same role, or a role is invalid.
	ErrRole = errors.New("wire: role mismatch")

	// ErrParams means the two ends' session parameters differ.
	ErrParams = errors.New("wire: session parameters differ")

	// ErrUnexpectedType means a message of another type arrived than the one
	// the caller asked for.
	ErrUnexpectedType = errors.New("wire: unexpected message type")

	// ErrReservedType means the caller tried to send a message with a type
	// number reserved for the transport (below FirstProtocolType).
	ErrReservedType = errors.New("wire: reserved message type")

	// ErrPeerAborted means the peer sent an Abort message. The error is an
	// [*AbortError] that carries the peer's reason.
	ErrPeerAborted = errors.New("wire: peer aborted")

	// ErrClosed means the Conn was closed by Close.
	ErrClosed = errors.New("wire: use of closed connection")

	// ErrTunnelOpen means Send or Recv was called while a Tunnel is open.
	ErrTunnelOpen = errors.New("wire: tunnel open")

	// ErrIdle means a read or a write waited longer than Config.IdleTimeout
	// without progress: the peer stopped sending, or stopped reading.
	ErrIdle = errors.New("wire: peer idle")
)

// AbortCode says why a party aborted. It travels in the Abort message so that
// the peer's error matches the same sentinel as the sender's.
type AbortCode uint16

// Abort codes. A receiver accepts any code; unknown codes only match
// ErrPeerAborted.
const (
	AbortProtocol       AbortCode = 1 // the caller's protocol gave up (Conn.Abort)
	AbortMagic          AbortCode = 2 // ErrMagic
	AbortVersion        AbortCode = 3 // ErrVersion
	AbortRole           AbortCode = 4 // ErrRole
	AbortParams         AbortCode = 5 // ErrParams
	AbortFrameTooLarge  AbortCode = 6 // ErrFrameTooLarge
	AbortUnexpectedType AbortCode = 7 // ErrUnexpectedType
	AbortMalformed      AbortCode = 8 // ErrMalformed
	AbortIdle           AbortCode = 9 // ErrIdle
)

var abortSentinels = map[AbortCode]error{
	AbortMagic:          ErrMagic,
	AbortVersion:        ErrVersion,
	AbortRole:           ErrRole,
	AbortParams:         ErrParams,
	AbortFrameTooLarge:  ErrFrameTooLarge,
	AbortUnexpectedType: ErrUnexpectedType,
	AbortMalformed:      ErrMalformed,
	AbortIdle:           ErrIdle,
}

// abortCodeOf returns the code that tells the peer about err.
func abortCodeOf(err error) AbortCode {
	for code, sentinel := range abortSentinels {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return AbortProtocol
}

// String returns the code's name.
func (code AbortCode) String() string {
	switch code {
	case AbortProtocol:
		return "protocol"
	case AbortMagic:
		return "magic"
	case AbortVersion:
		return "version"
	case AbortRole:
		return "role"
	case AbortParams:
		return "params"
	case AbortFrameTooLarge:
		return "frame-too-large"
	case AbortUnexpectedType:
		return "unexpected-type"
	case AbortMalformed:
		return "malformed"
	case AbortIdle:
		return "idle"
	}
	return fmt.Sprintf("AbortCode(%d)", uint16(code))
}

// AbortError is the error a call returns when the peer sent an Abort
// message. It matches ErrPeerAborted and, for the codes that have one, the
// sentinel of its cause.
type AbortError struct {
	Code   AbortCode
	Reason string // the peer's reason, printable UTF-8, at most MaxReasonLen bytes
}

// Error returns "wire: peer aborted: " followed by the peer's reason.
func (e *AbortError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%v (%v)", ErrPeerAborted, e.Code)
	}
	return fmt.Sprintf("%v: %s", ErrPeerAborted, e.Reason)
}

// Unwrap returns ErrPeerAborted and the sentinel of the code, if any.
func (e *AbortError) Unwrap() []error {
	if s, ok := abortSentinels[e.Code]; ok {
		return []error{ErrPeerAborted, s}
	}
	return []error{ErrPeerAborted}
}
