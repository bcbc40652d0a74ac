// Package nettest holds the connection wrappers the bridge's protocol tests
// share: a connection that drops mid-protocol and one without deadlines.
package nettest

import (
	"errors"
	"io"
	"net"
	"sync"
)

// ErrCut is the error a CutConn's Write returns once it has cut.
var ErrCut = errors.New("test: connection cut")

// CutConn closes the connection once limit bytes have passed through it
// (written and read together), as a peer that disconnects mid-protocol.
type CutConn struct {
	net.Conn
	mu    sync.Mutex
	n     int
	limit int
}

// Cut returns c wrapped to be cut after limit bytes.
func Cut(c net.Conn, limit int) *CutConn { return &CutConn{Conn: c, limit: limit} }

func (c *CutConn) take(n int) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - c.n
	if n >= room {
		c.n = c.limit
		return max(room, 0), true
	}
	c.n += n
	return n, false
}

// Write writes until the limit, then closes the connection and fails.
func (c *CutConn) Write(b []byte) (int, error) {
	n, cut := c.take(len(b))
	if !cut {
		return c.Conn.Write(b)
	}
	w, _ := c.Conn.Write(b[:n])
	c.Conn.Close()
	return w, ErrCut
}

// Read reads until the limit, then closes the connection.
func (c *CutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if k, cut := c.take(n); cut {
			c.Conn.Close()
			return k, err
		}
	}
	return n, err
}

// NoDeadline hides a connection's SetDeadline, as a stream that cannot be
// interrupted.
type NoDeadline struct{ RW io.ReadWriter }

// Read reads from RW.
func (c NoDeadline) Read(b []byte) (int, error) { return c.RW.Read(b) }

// Write writes to RW.
func (c NoDeadline) Write(b []byte) (int, error) { return c.RW.Write(b) }
