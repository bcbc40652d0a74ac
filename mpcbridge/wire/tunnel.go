package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// tunnelChunk is the largest payload of a tunnel data frame.
const tunnelChunk = 1 << 20

// Tunnel is a byte stream carried in frames between two messages, for a
// library that does its own framing and may read ahead, such as the
// garbled-circuit library github.com/markkurossi/mpc: pass the Tunnel where
// it wants an io.ReadWriter (p2p.NewConn(t)). Each Write goes out at once as
// one or more frames (12 bytes of header per MiB at most); Read returns the
// bytes of the peer's frames, and never a byte of the messages after the
// tunnel, however much the library asks for. Bytes, frames and rounds are
// counted in the Conn's Stats.
//
// One goroutine may Read while another Writes. While the Tunnel is open,
// the Conn's own Send and Recv fail with ErrTunnelOpen. Both ends must open
// the tunnel at the same point of their protocol and Close it when their
// library is done, after which messages flow again. A failed Read or Write
// ends the Conn.
//
// Closing costs no round: Close queues an end marker that travels with this
// end's next message, and the next receive after Close consumes the peer's
// marker. So Read reports io.EOF only once the peer has closed the tunnel
// and sent something after it; a library that reads no more than its
// protocol needs, as p2p.Conn does, never waits for it.
type Tunnel struct {
	c   *Conn
	ctx context.Context

	left      uint64 // unread bytes of the current data frame; guarded by c.rmu
	peerEnded bool   // the peer's end marker was read; guarded by c.rmu
	ended     bool   // Close queued our end marker; guarded by c.wmu

	closed    atomic.Bool
	closeOnce sync.Once
}

// OpenTunnel opens a Tunnel; ctx bounds all its I/O. The handshake runs
// first if it has not.
func (c *Conn) OpenTunnel(ctx context.Context) (*Tunnel, error) {
	if err := c.Handshake(ctx); err != nil {
		return nil, fmt.Errorf("cannot OpenTunnel: %w", err)
	}
	if err := c.failure(); err != nil {
		return nil, fmt.Errorf("cannot OpenTunnel: %w", err)
	}
	if !c.tunnel.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("cannot OpenTunnel: %w", ErrTunnelOpen)
	}
	return &Tunnel{c: c, ctx: ctx}, nil
}

// Read reads from the peer's side of the tunnel. It returns io.EOF after
// the peer's end marker.
func (t *Tunnel) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := t.c
	release, err := c.lockRecv(t.ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot Read tunnel: %w", err)
	}
	defer release()
	if t.closed.Load() {
		return 0, errors.New("cannot Read tunnel: tunnel closed")
	}
	for t.left == 0 {
		if t.peerEnded {
			return 0, io.EOF
		}
		if err := t.nextFrame(); err != nil {
			return 0, fmt.Errorf("cannot Read tunnel: %w", err)
		}
	}
	n, err := c.br.Read(p[:min(uint64(len(p)), t.left)])
	t.left -= uint64(n)
	c.stats.received(int64(n), 0)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("truncated %v payload: %w", TypeTunnelData, io.ErrUnexpectedEOF)
		} else {
			err = c.readErr(t.ctx, err)
		}
		return n, fmt.Errorf("cannot Read tunnel: %w", c.fail(err))
	}
	return n, nil
}

// nextFrame reads the header of the peer's next tunnel frame. The caller
// holds c.rmu and has read the current frame.
func (t *Tunnel) nextFrame() error {
	c := t.c
	h, err := c.nextMessageHeader(t.ctx)
	if err != nil {
		return err
	}
	switch h.typ {
	case TypeTunnelData:
		t.left = h.length
	case TypeTunnelEnd:
		t.peerEnded = true
	default:
		return c.violation(h.length, fmt.Errorf("%w: got %v in a tunnel, want %v", ErrUnexpectedType, h.typ, TypeTunnelData))
	}
	c.stats.received(HeaderLen, 1)
	return nil
}

// Write sends p to the peer at once, in frames of at most 1 MiB (or the
// peer's MaxFrame if smaller).
func (t *Tunnel) Write(p []byte) (int, error) {
	c := t.c
	release, err := c.lockSend(t.ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot Write tunnel: %w", err)
	}
	defer release()
	if t.ended {
		return 0, errors.New("cannot Write tunnel: tunnel closed")
	}
	if len(p) == 0 {
		return 0, nil
	}
	chunk := min(uint64(tunnelChunk), c.peerMaxFrame)
	written := 0
	c.stats.startSend()
	for len(p) > 0 {
		k := int(min(uint64(len(p)), chunk))
		if err := c.writeFrame(TypeTunnelData, p[:k]); err != nil {
			return written, fmt.Errorf("cannot Write tunnel: %w", c.fail(fmt.Errorf("%v interrupted: %w", TypeTunnelData, c.ioErr(t.ctx, err))))
		}
		c.stats.sent(int64(HeaderLen+k), 1)
		written += k
		p = p[k:]
	}
	return written, nil
}

// Close ends this end's side of the tunnel: it queues the end marker, to
// go out with the next message, and returns the Conn to messages. Close
// implements io.Closer, so a library that closes its connection when done
// (p2p.Conn's Close flushes, then closes) ends the tunnel itself. It must
// not run concurrently with Read or Write. If the library left part of a
// data frame unread, Close fails and ends the Conn: the two ends disagree
// about the protocol. Later calls do nothing and return nil.
func (t *Tunnel) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		err = t.close()
	})
	return err
}

func (t *Tunnel) close() error {
	c := t.c
	defer c.tunnel.Store(false)

	c.wmu.Lock()
	t.ended = true
	if c.failure() == nil {
		header{typ: TypeTunnelEnd}.put(c.hdr[:])
		_, _ = c.bw.Write(c.hdr[:]) // an error is sticky and reported by the next flush
		c.pendingEnd = true
	}
	c.wmu.Unlock()

	c.rmu.Lock()
	left := t.left
	if !t.peerEnded {
		c.awaitPeerEnd = true
	}
	c.rmu.Unlock()
	if left > 0 {
		err := fmt.Errorf("%w: tunnel closed with %d bytes of the peer's data frame unread", ErrMalformed, left)
		return fmt.Errorf("cannot Close tunnel: %w", c.fail(err))
	}
	if f := c.failure(); f != nil {
		return fmt.Errorf("cannot Close tunnel: %w", f)
	}
	return nil
}
