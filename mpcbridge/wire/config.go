package wire

import (
	"bytes"
	"fmt"
	"time"
)

// Role is the part a party plays: the client holds the input and the
// secret key, the server holds the model.
type Role uint8

// The two roles. The zero Role is invalid, so a Config must set one.
const (
	RoleClient Role = 1
	RoleServer Role = 2
)

func (r Role) valid() bool { return r == RoleClient || r == RoleServer }

// String returns "client", "server", or "Role(n)" for an invalid role.
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// DefaultMaxFrame is the payload limit of a Config whose MaxFrame is zero:
// 256 MiB, room for a large batch of ciphertexts.
const DefaultMaxFrame = 256 << 20

// Config configures a Conn. The zero value is not valid: Role must be set.
// NewConn validates it and keeps a copy, so the caller may reuse it.
type Config struct {
	// Role is this end's role. The two ends must have different roles.
	Role Role

	// Version is the version of the protocol suite run over the Conn
	// (the engine's, not the wire format's: that is WireVersion). Both ends
	// must have the same.
	Version uint32

	// Params are the session parameters both ends must agree on, compared
	// byte for byte in the handshake: for example the CKKS preset's name and a
	// hash of the model's public shape. At most MaxParamsLen bytes.
	Params []byte

	// MaxFrame is the largest payload, in bytes, this end accepts in one
	// message; zero means DefaultMaxFrame. A Recv allocates at most this much
	// for one message, and the peer refuses to send more.
	MaxFrame int

	// IdleTimeout, if positive, bounds how long a read or a write of the
	// connection may wait without progress: while this end waits for a
	// message, the peer must send some of it at least this often, and while
	// this end sends, the peer must take some of it as often. It restarts
	// with every read and every chunk written, so a large message on a slow
	// link is not cut as long as bytes flow. A read that times out fails the
	// Conn with an error matching ErrIdle and tells the peer with an Abort;
	// a write that times out fails it too. Zero means no limit beyond the
	// callers' contexts.
	IdleTimeout time.Duration
}

// validate checks c and returns a copy with defaults filled in.
func (c Config) validate() (Config, error) {
	if !c.Role.valid() {
		return Config{}, fmt.Errorf("invalid Config.Role %v: want RoleClient or RoleServer", c.Role)
	}
	if len(c.Params) > MaxParamsLen {
		return Config{}, fmt.Errorf("Config.Params of %d bytes exceeds MaxParamsLen %d", len(c.Params), MaxParamsLen)
	}
	switch {
	case c.MaxFrame == 0:
		c.MaxFrame = DefaultMaxFrame
	case c.MaxFrame < 0:
		return Config{}, fmt.Errorf("invalid Config.MaxFrame %d: want 0 (default) or positive", c.MaxFrame)
	}
	if c.IdleTimeout < 0 {
		return Config{}, fmt.Errorf("invalid Config.IdleTimeout %v: want 0 (none) or positive", c.IdleTimeout)
	}
	c.Params = bytes.Clone(c.Params)
	if c.Params == nil {
		c.Params = []byte{}
	}
	return c, nil
}
