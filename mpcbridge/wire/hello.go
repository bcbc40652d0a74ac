package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// WireVersion is the version of the frame and transport message formats
// this package speaks. Both ends must speak the same.
const WireVersion uint16 = 1

// MaxParamsLen is the largest Config.Params accepted, in bytes.
const MaxParamsLen = 64 << 10

// magic opens every hello.
const magic = "CPRUNE\r\n"

const (
	helloPrefixLen = 12                           // magic, wire version, role, reserved: frozen across versions
	helloFixedLen  = 24                           // ... protocol version, MaxFrame
	maxHelloLen    = helloFixedLen + MaxParamsLen // largest hello payload
)

// hello is the decoded handshake message.
type hello struct {
	wireVersion uint16
	role        Role
	version     uint32
	maxFrame    uint64
	params      []byte
}

// marshal encodes h as a hello payload.
func (h *hello) marshal() []byte {
	p := make([]byte, helloFixedLen+len(h.params))
	copy(p, magic)
	binary.BigEndian.PutUint16(p[8:], h.wireVersion)
	p[10] = byte(h.role)
	binary.BigEndian.PutUint32(p[12:], h.version)
	binary.BigEndian.PutUint64(p[16:], h.maxFrame)
	copy(p[helloFixedLen:], h.params)
	return p
}

// decodeHello parses a hello payload. It reads the frozen prefix (magic,
// wire version, role) of any wire format version and the rest only if the
// version is WireVersion: a hello of another version decodes without error,
// with its later fields zero, and checkHello reports the mismatch.
func decodeHello(p []byte) (hello, error) {
	if len(p) < len(magic) || string(p[:len(magic)]) != magic {
		return hello{}, fmt.Errorf("%w: hello starts with %s, want %q", ErrMagic, quotePrefix(p, len(magic)), magic)
	}
	if len(p) < helloPrefixLen {
		return hello{}, fmt.Errorf("%w: hello of %d bytes, want at least %d", ErrMalformed, len(p), helloPrefixLen)
	}
	h := hello{
		wireVersion: binary.BigEndian.Uint16(p[8:]),
		role:        Role(p[10]),
	}
	if h.wireVersion != WireVersion {
		return h, nil
	}
	if p[11] != 0 {
		return hello{}, fmt.Errorf("%w: hello reserved byte is %#02x", ErrMalformed, p[11])
	}
	if len(p) < helloFixedLen {
		return hello{}, fmt.Errorf("%w: hello of %d bytes, want at least %d", ErrMalformed, len(p), helloFixedLen)
	}
	if len(p) > maxHelloLen {
		return hello{}, fmt.Errorf("%w: hello of %d bytes, limit %d", ErrFrameTooLarge, len(p), maxHelloLen)
	}
	h.version = binary.BigEndian.Uint32(p[12:])
	h.maxFrame = binary.BigEndian.Uint64(p[16:])
	if h.maxFrame == 0 {
		return hello{}, fmt.Errorf("%w: hello announces MaxFrame 0", ErrMalformed)
	}
	h.params = bytes.Clone(p[helloFixedLen:])
	if h.params == nil {
		h.params = []byte{}
	}
	return h, nil
}

// helloMismatch is a failed handshake check: the error for this end and the
// reason to send the peer, which reads correctly from the peer's side.
type helloMismatch struct {
	err    error
	reason string
}

// checkHello compares the local hello with the peer's. The checks are
// symmetric, so a conforming peer finds the same mismatch. Messages name the
// two ends by role when the roles are valid and differ, and as local and peer
// otherwise.
func checkHello(local, peer *hello) *helloMismatch {
	mine, theirs := "local", "peer" // labels as this end sees them
	peerMine, peerTheirs := "peer", "local"
	if peer.role.valid() && peer.role != local.role {
		mine, theirs = local.role.String(), peer.role.String()
		peerMine, peerTheirs = mine, theirs
	}
	mismatch := func(sentinel error, format string, l, p any) *helloMismatch {
		return &helloMismatch{
			err:    fmt.Errorf("%w: "+format, sentinel, mine, l, theirs, p),
			reason: fmt.Sprintf(trimWire(sentinel)+": "+format, peerMine, l, peerTheirs, p),
		}
	}
	switch {
	case peer.wireVersion != local.wireVersion:
		return mismatch(ErrVersion, "wire format: %s %d, %s %d", local.wireVersion, peer.wireVersion)
	case !peer.role.valid():
		return &helloMismatch{
			err:    fmt.Errorf("%w: peer claims invalid role %d", ErrRole, uint8(peer.role)),
			reason: fmt.Sprintf("%s: local claims invalid role %d", trimWire(ErrRole), uint8(peer.role)),
		}
	case peer.role == local.role:
		return &helloMismatch{
			err:    fmt.Errorf("%w: both ends are %ss", ErrRole, local.role),
			reason: fmt.Sprintf("%s: both ends are %ss", trimWire(ErrRole), local.role),
		}
	case peer.version != local.version:
		return mismatch(ErrVersion, "protocol: %s %d, %s %d", local.version, peer.version)
	case !bytes.Equal(peer.params, local.params):
		return mismatch(ErrParams, "%s %s, %s %s", quoteParams(local.params), quoteParams(peer.params))
	}
	return nil
}

// trimWire returns a sentinel's text without the package prefix.
func trimWire(err error) string {
	s := err.Error()
	if len(s) > len("wire: ") && s[:len("wire: ")] == "wire: " {
		return s[len("wire: "):]
	}
	return s
}

// quoteParams renders session parameters for an error message: quoted,
// shortened to 48 bytes, with the length when shortened.
func quoteParams(p []byte) string {
	const max = 48
	if len(p) <= max {
		return fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("%q... (%d bytes)", p[:max], len(p))
}

// quotePrefix renders up to n leading bytes of p for an error message.
func quotePrefix(p []byte, n int) string {
	if len(p) < n {
		n = len(p)
	}
	if utf8.Valid(p[:n]) {
		return fmt.Sprintf("%q", p[:n])
	}
	return fmt.Sprintf("% x", p[:n])
}
