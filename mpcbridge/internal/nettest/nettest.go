// Package nettest holds the connection helpers the bridge's protocol tests
// share: a connected pair over net.Pipe or loopback TCP (Pair), a runner for
// the two parties (Both), and wrappers: a connection that drops
// mid-protocol, one without deadlines, and one that counts its bytes.
package nettest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
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

// CountConn counts the bytes through a connection, optionally keeps what it
// writes (Keep), and records in a shared FlightLog which side writes.
type CountConn struct {
	net.Conn
	// Side identifies the writer in Log.
	Side int
	// Keep makes Write append to Sent.
	Keep bool
	// Log, if set, counts flights across both ends.
	Log *FlightLog
	// Reads and Writes are the bytes read and written.
	Reads, Writes atomic.Int64
	// Sent holds what was written, when Keep is set.
	Sent bytes.Buffer
	mu   sync.Mutex
}

// Read reads and counts.
func (c *CountConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.Reads.Add(int64(n))
	return n, err
}

// Write logs the flight, keeps a copy if asked, writes and counts.
func (c *CountConn) Write(b []byte) (int, error) {
	if c.Log != nil {
		c.Log.Add(c.Side)
	}
	if c.Keep {
		c.mu.Lock()
		c.Sent.Write(b)
		c.mu.Unlock()
	}
	n, err := c.Conn.Write(b)
	c.Writes.Add(int64(n))
	return n, err
}

// FlightLog counts flights: maximal runs of writes by the same side.
type FlightLog struct {
	mu   sync.Mutex
	last int
	// Flights is the number of flights so far (Reset between runs).
	Flights int
}

// Add records a write by side.
func (l *FlightLog) Add(side int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Flights == 0 || side != l.last {
		l.Flights++
		l.last = side
	}
}

// Reset sets the flight count to zero.
func (l *FlightLog) Reset() {
	l.mu.Lock()
	l.Flights = 0
	l.mu.Unlock()
}
