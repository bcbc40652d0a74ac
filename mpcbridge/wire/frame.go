package wire

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Type is a message type number. See the package documentation for the
// ranges and how protocols allocate them.
type Type uint16

// The transport's own message types.
const (
	// TypeHello is the handshake message each end sends first.
	TypeHello Type = 0x0001
	// TypeAbort carries an AbortCode and a reason; the sender closes after it.
	TypeAbort Type = 0x0002
	// TypeTunnelData carries a chunk of a Tunnel's byte stream.
	TypeTunnelData Type = 0x0003
	// TypeTunnelEnd ends one direction of a Tunnel.
	TypeTunnelEnd Type = 0x0004
)

// Ranges of type numbers.
const (
	// FirstProtocolType is the smallest type number a protocol may send;
	// smaller numbers are the transport's.
	FirstProtocolType Type = 0x0100
	// FirstPrivateType is the start of the range for tests and experiments.
	FirstPrivateType Type = 0xf000
)

// HeaderLen is the size in bytes of a frame header.
const HeaderLen = 12

var typeNames = struct {
	sync.RWMutex
	m map[Type]string
}{m: map[Type]string{
	TypeHello:      "hello",
	TypeAbort:      "abort",
	TypeTunnelData: "tunnel-data",
	TypeTunnelEnd:  "tunnel-end",
}}

// RegisterType names a protocol message type, for error messages and
// traces. Protocol packages call it from init for each type they define, with
// a name such as "share.Masked". It panics if t is below FirstProtocolType or
// at or above FirstPrivateType, if name is empty, or if t is already
// registered: two packages claiming one number is a bug to find at start-up.
func RegisterType(t Type, name string) {
	if t < FirstProtocolType || t >= FirstPrivateType {
		panic(fmt.Sprintf("wire: RegisterType(%#04x, %q): type outside the protocol range [%#04x, %#04x)", uint16(t), name, uint16(FirstProtocolType), uint16(FirstPrivateType)))
	}
	if name == "" {
		panic(fmt.Sprintf("wire: RegisterType(%#04x): empty name", uint16(t)))
	}
	typeNames.Lock()
	defer typeNames.Unlock()
	if old, ok := typeNames.m[t]; ok {
		panic(fmt.Sprintf("wire: RegisterType(%#04x, %q): type already registered as %q", uint16(t), name, old))
	}
	typeNames.m[t] = name
}

// String returns the registered name and number, "share.Masked(0x0101)", or
// the number alone, "0x0101", for an unregistered type.
func (t Type) String() string {
	typeNames.RLock()
	name, ok := typeNames.m[t]
	typeNames.RUnlock()
	if ok {
		return fmt.Sprintf("%s(%#04x)", name, uint16(t))
	}
	return fmt.Sprintf("%#04x", uint16(t))
}

// header is a decoded frame header.
type header struct {
	typ    Type
	flags  uint16
	length uint64
}

// put encodes h into b[:HeaderLen].
func (h header) put(b []byte) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint16(b[0:], uint16(h.typ))
	binary.BigEndian.PutUint16(b[2:], h.flags)
	binary.BigEndian.PutUint64(b[4:], h.length)
}

// parseHeader decodes a frame header from b, which must hold exactly
// HeaderLen bytes. It rejects type 0 and non-zero flags; the length is checked
// against a limit by checkLength.
func parseHeader(b []byte) (header, error) {
	if len(b) != HeaderLen {
		return header{}, fmt.Errorf("%w: header is %d bytes, want %d", ErrMalformed, len(b), HeaderLen)
	}
	h := header{
		typ:    Type(binary.BigEndian.Uint16(b[0:])),
		flags:  binary.BigEndian.Uint16(b[2:]),
		length: binary.BigEndian.Uint64(b[4:]),
	}
	if h.typ == 0 {
		return header{}, fmt.Errorf("%w: message type 0", ErrMalformed)
	}
	if h.flags != 0 {
		return header{}, fmt.Errorf("%w: %v has reserved flags %#04x set", ErrMalformed, h.typ, h.flags)
	}
	return h, nil
}

// limitFor returns the largest payload a frame of type t may carry when the
// limit for protocol messages is maxFrame.
func limitFor(t Type, maxFrame int) uint64 {
	switch t {
	case TypeHello:
		return maxHelloLen
	case TypeAbort:
		return maxAbortLen
	case TypeTunnelEnd:
		return 0
	}
	return uint64(maxFrame)
}

// checkLength returns an error wrapping ErrFrameTooLarge if h's payload is
// longer than the limit for its type.
func (h header) checkLength(maxFrame int) error {
	if limit := limitFor(h.typ, maxFrame); h.length > limit {
		return fmt.Errorf("%w: %v of %d bytes, limit %d", ErrFrameTooLarge, h.typ, h.length, limit)
	}
	return nil
}
