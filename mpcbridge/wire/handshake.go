package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Handshake exchanges hellos with the peer and checks that the two ends
// can talk: same magic, same wire format and protocol versions, different
// roles, equal session parameters. On a mismatch it sends the peer an Abort
// with the reason, closes the connection and returns an error matching
// ErrMagic, ErrVersion, ErrRole or ErrParams; if the peer aborted first, the
// error is an *AbortError with the peer's reason. The result is final: later
// calls return it, as do Send and Recv, which run the handshake themselves if
// it has not run. Only a call whose ctx is done before it starts leaves the
// handshake to a later call.
func (c *Conn) Handshake(ctx context.Context) error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone.Load() {
		return c.hsErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cannot Handshake: %w", err)
	}
	err := c.handshake(ctx)
	if err != nil {
		err = fmt.Errorf("cannot Handshake: %w", err)
	}
	c.hsErr = err
	c.hsDone.Store(true)
	return err
}

func (c *Conn) handshake(ctx context.Context) error {
	if err := c.failure(); err != nil {
		return err
	}
	local := hello{
		wireVersion: WireVersion,
		role:        c.cfg.Role,
		version:     c.cfg.Version,
		maxFrame:    uint64(c.cfg.MaxFrame),
		params:      c.cfg.Params,
	}
	out := local.marshal()

	// Both ends write first, so the write runs beside the read: on a
	// synchronous transport (net.Pipe) it completes only once the peer reads.
	written := make(chan error, 1)
	go func() { written <- c.writeHello(ctx, out) }()

	peer, in, rerr := c.readHello(ctx)
	if rerr != nil {
		var werr error
		if isViolationErr(rerr) {
			// The peer sent something that is not a hello. Tell it why if our
			// hello gets through soon; it may not be reading at all.
			select {
			case werr = <-written:
				written = nil
				if werr == nil {
					c.stats.startSend()
					c.stats.sent(int64(HeaderLen+len(out)), 1)
					actx, cancel := context.WithTimeout(ctx, abortGrace)
					_ = c.sendAbort(actx, abortCodeOf(rerr), trimWire(rerr))
					cancel()
				}
			case <-time.After(abortGrace):
			}
		}
		err := c.fail(rerr) // unblocks the write if it is still pending
		if written != nil {
			<-written
		}
		return err
	}
	if werr := <-written; werr != nil {
		return c.fail(werr)
	}
	// Counted here, in this order, so that the handshake is one round and
	// ends with the last transfer a receive, whichever finished first.
	c.stats.startSend()
	c.stats.sent(int64(HeaderLen+len(out)), 1)
	c.stats.received(int64(HeaderLen+len(in)), 1)

	if m := checkHello(&local, &peer); m != nil {
		c.abortAndDrain(abortCodeOf(m.err), m.reason)
		return c.fail(m.err)
	}
	c.peerMaxFrame = peer.maxFrame
	c.allocBuffers()
	return nil
}

// isViolationErr reports whether err means the peer broke the protocol
// (rather than the connection failing or the peer aborting).
func isViolationErr(err error) bool {
	var ae *AbortError
	if errors.As(err, &ae) {
		return false
	}
	return errors.Is(err, ErrMagic) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrFrameTooLarge)
}

// writeHello writes the hello frame.
func (c *Conn) writeHello(ctx context.Context, p []byte) error {
	release, err := c.lockSend(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := c.writeFrame(TypeHello, p); err != nil {
		return fmt.Errorf("cannot send hello: %w", c.ioErr(ctx, err))
	}
	return nil
}

// readHello reads the peer's hello and returns it with its raw payload. A
// first frame that is not a hello (or an Abort) fails with ErrMagic: the
// peer does not speak this protocol.
func (c *Conn) readHello(ctx context.Context) (hello, []byte, error) {
	release, err := c.lockRecv(ctx)
	if err != nil {
		return hello{}, nil, err
	}
	defer release()
	// Read without a buffer, which comes only after the handshake: nothing
	// past the hello is read, and a connection that never gets there costs
	// no more than what it sent.
	var hdr [HeaderLen]byte
	if n, err := io.ReadFull(connReader{c}, hdr[:]); err != nil {
		switch err {
		case io.EOF:
			return hello{}, nil, fmt.Errorf("connection closed by the peer before its hello: %w", io.EOF)
		case io.ErrUnexpectedEOF:
			return hello{}, nil, fmt.Errorf("truncated hello header (%d of %d bytes): %w", n, HeaderLen, io.ErrUnexpectedEOF)
		}
		return hello{}, nil, fmt.Errorf("cannot read hello: %w", c.ioErr(ctx, err))
	}
	h, err := parseHeader(hdr[:])
	if err != nil || (h.typ != TypeHello && h.typ != TypeAbort) {
		return hello{}, nil, fmt.Errorf("%w: the peer's first bytes are %s, not a hello", ErrMagic, quotePrefix(hdr[:], HeaderLen))
	}
	if err := h.checkLength(c.cfg.MaxFrame); err != nil {
		return hello{}, nil, err
	}
	p, err := readGrowing(connReader{c}, h.length)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return hello{}, nil, fmt.Errorf("truncated %v payload (%d of %d bytes): %w", h.typ, len(p), h.length, io.ErrUnexpectedEOF)
		}
		return hello{}, nil, fmt.Errorf("%v payload interrupted after %d of %d bytes: %w", h.typ, len(p), h.length, c.ioErr(ctx, err))
	}
	if h.typ == TypeAbort {
		c.stats.received(int64(HeaderLen+len(p)), 1)
		ae, err := decodeAbort(p)
		if err != nil {
			return hello{}, nil, fmt.Errorf("peer aborted with an unreadable reason: %w", err)
		}
		return hello{}, nil, ae
	}
	peer, err := decodeHello(p)
	if err != nil {
		return hello{}, nil, err
	}
	return peer, p, nil
}

// abortAndDrain sends an Abort during the handshake while discarding what
// the peer sends meanwhile, which is most likely its own Abort: on a
// synchronous transport two ends that both write would block each other.
// It takes at most abortGrace.
func (c *Conn) abortAndDrain(code AbortCode, reason string) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	_ = c.rdl.reset(time.Now().Add(abortGrace))
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), abortGrace)
		defer cancel()
		_ = c.sendAbort(ctx, code, reason)
		c.rdl.stop() // stop the drain
	}()
	_, _ = io.Copy(io.Discard, connReader{c})
	<-done
}
