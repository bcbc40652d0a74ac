package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is the size of the read and write buffers, allocated once
	// the handshake has succeeded: a connection still in the handshake
	// holds no buffer.
	bufSize = 64 << 10
	// writeChunk is the most a write of the connection hands the net.Conn
	// at once when an idle timeout is set, so that the timeout restarts as
	// a large message goes out.
	writeChunk = 1 << 20
	// abortGrace bounds the best-effort work of aborting: writing the Abort
	// message, and discarding what the peer is still sending meanwhile.
	abortGrace = time.Second
)

// Conn is one end of a framed, versioned connection. Create it with
// NewConn; the handshake runs on the first call that needs it, or on an
// explicit Handshake.
//
// One goroutine may send while another receives, as with a net.Conn;
// concurrent sends (and concurrent receives) are serialized, one whole
// message at a time. The Conn owns its net.Conn's deadlines and buffers: do
// not read, write or set deadlines on the net.Conn while the Conn is in use.
type Conn struct {
	nc  net.Conn
	cfg Config

	rdl, wdl deadline // the read and write deadlines; used with rmu and wmu held

	hsMu         sync.Mutex
	hsDone       atomic.Bool
	hsErr        error  // the handshake's result, set before hsDone
	peerMaxFrame uint64 // the peer's limit, set before hsDone

	rmu          sync.Mutex    // guards br, awaitPeerEnd and the read deadline
	br           *bufio.Reader // nil until the handshake succeeds
	awaitPeerEnd bool          // a Tunnel was closed before the peer's end marker was read

	wmu        sync.Mutex    // guards bw, hdr, pendingEnd and the write deadline
	bw         *bufio.Writer // nil until the handshake succeeds
	hdr        [HeaderLen]byte
	pendingEnd bool // bw holds a Tunnel's end marker, not yet flushed

	tunnel atomic.Bool // a Tunnel is open

	failMu sync.Mutex
	failed error // first fatal error; the net.Conn is closed once it is set

	stats counters
}

// NewConn returns a Conn over nc, configured by cfg. It does no I/O and
// allocates no buffer: those come once the handshake has succeeded. The
// Conn closes nc when it is closed or fails.
func NewConn(nc net.Conn, cfg Config) (*Conn, error) {
	if nc == nil {
		return nil, errors.New("cannot NewConn: nil net.Conn")
	}
	cfg, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("cannot NewConn: %w", err)
	}
	c := &Conn{nc: nc, cfg: cfg}
	c.rdl.set, c.rdl.idle = nc.SetReadDeadline, cfg.IdleTimeout
	c.wdl.set, c.wdl.idle = nc.SetWriteDeadline, cfg.IdleTimeout
	return c, nil
}

// allocBuffers gives the Conn its read and write buffers, once the
// handshake has succeeded.
func (c *Conn) allocBuffers() {
	c.rmu.Lock()
	c.br = bufio.NewReaderSize(connReader{c}, bufSize)
	c.rmu.Unlock()
	c.wmu.Lock()
	c.bw = bufio.NewWriterSize(connWriter{c}, bufSize)
	c.wmu.Unlock()
}

// connReader reads the net.Conn, restarting the idle timeout before each
// read. The caller holds rmu.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) {
	if err := r.c.rdl.renew(); err != nil {
		return 0, err
	}
	return r.c.nc.Read(p)
}

// connWriter writes the net.Conn, restarting the idle timeout before each
// chunk of at most writeChunk bytes (before each write if there is no idle
// timeout). The caller holds wmu.
type connWriter struct{ c *Conn }

func (w connWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.cfg.IdleTimeout <= 0 {
		return c.nc.Write(p)
	}
	n := 0
	for n < len(p) {
		if err := c.wdl.renew(); err != nil {
			return n, err
		}
		k, err := c.nc.Write(p[n:min(len(p), n+writeChunk)])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Role returns this end's role.
func (c *Conn) Role() Role { return c.cfg.Role }

// NetConn returns the underlying connection, for its addresses or TLS
// state. Reading from or writing to it desynchronizes the Conn.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Stats returns a snapshot of the communication so far, the handshake
// included.
func (c *Conn) Stats() Stats { return c.stats.snapshot() }

// PeerMaxFrame returns the largest payload the peer accepts, as it announced
// in the handshake, or 0 before the handshake.
func (c *Conn) PeerMaxFrame() int {
	if !c.hsDone.Load() || c.hsErr != nil {
		return 0
	}
	if c.peerMaxFrame > uint64(maxInt) {
		return maxInt
	}
	return int(c.peerMaxFrame)
}

const maxInt = int(^uint(0) >> 1)

// Close closes the connection. Calls blocked in other goroutines return
// ErrClosed. Close is idempotent: later calls, and calls after the Conn failed
// and closed itself, return nil.
func (c *Conn) Close() error {
	if !c.setFailure(ErrClosed) {
		return nil
	}
	if err := c.nc.Close(); err != nil {
		return fmt.Errorf("cannot Close: %w", err)
	}
	return nil
}

// Abort tells the peer that this end gives up, and why, then closes the
// connection. The peer's pending or next receive fails with an *AbortError
// carrying reason (cut to MaxReasonLen bytes). The reason travels to the peer
// as it is: never put a secret in it. Sending the Abort is best effort,
// bounded by ctx and one second; if a send is in progress in another
// goroutine, the connection is closed without it. Abort returns the error, if
// any, of sending the message.
func (c *Conn) Abort(ctx context.Context, reason string) error {
	if c.failure() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, abortGrace)
	defer cancel()
	err := c.sendAbort(ctx, AbortProtocol, reason)
	c.fail(fmt.Errorf("%w: aborted: %s", ErrClosed, cleanReason(reason)))
	if err != nil {
		return fmt.Errorf("cannot Abort: %w", err)
	}
	return nil
}

// failure returns the Conn's fatal error, or nil.
func (c *Conn) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failed
}

// fail records err as the Conn's fatal error, unless one is recorded
// already, closes the net.Conn and returns the recorded error.
func (c *Conn) fail(err error) error {
	if c.setFailure(err) {
		_ = c.nc.Close() // outside failMu: closing a tls.Conn may block for a while
	}
	return c.failure()
}

// setFailure records err as the fatal error and reports whether it is the
// first.
func (c *Conn) setFailure(err error) bool {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.failed != nil {
		return false
	}
	c.failed = err
	return true
}

// ioErr maps an I/O error: an error caused by the Conn having failed (for
// example closed from another goroutine) becomes that failure, a timeout
// that bind set for ctx becomes ctx's error, and any other timeout, the
// idle timeout's, an error matching ErrIdle.
func (c *Conn) ioErr(ctx context.Context, err error) error {
	if f := c.failure(); f != nil {
		return f
	}
	if err == nil || !isTimeout(err) {
		return err
	}
	if cerr := ctxTimeout(ctx); cerr != nil {
		return cerr
	}
	if c.cfg.IdleTimeout > 0 {
		return fmt.Errorf("%w: no progress for %v", ErrIdle, c.cfg.IdleTimeout)
	}
	return err
}

// readErr is ioErr for a failed read of a message. A peer found idle is
// told so with an Abort, best effort, before the caller fails the Conn.
// The caller holds rmu.
func (c *Conn) readErr(ctx context.Context, err error) error {
	err = c.ioErr(ctx, err)
	if errors.Is(err, ErrIdle) {
		actx, cancel := context.WithTimeout(context.Background(), abortGrace)
		_ = c.sendAbort(actx, AbortIdle, trimWire(err))
		cancel()
	}
	return err
}

// sendAbort writes an Abort message, unless a send holds the write side;
// ctx bounds it.
func (c *Conn) sendAbort(ctx context.Context, code AbortCode, reason string) error {
	if !c.wmu.TryLock() {
		return errors.New("a send is in progress")
	}
	defer c.wmu.Unlock()
	if err := c.failure(); err != nil {
		return err
	}
	release, err := c.wdl.bind(ctx)
	if err != nil {
		return err
	}
	defer release()
	p := encodeAbort(code, reason)
	c.stats.startSend()
	if err := c.writeFrame(TypeAbort, p); err != nil {
		return ctxError(ctx, err)
	}
	c.stats.sent(int64(HeaderLen+len(p)), 1)
	return nil
}

// violation handles a protocol violation by the peer, found on receipt
// with rmu held: it discards the rest of the offending frame (discard bytes,
// bounded by abortGrace) so that a peer blocked sending it can go on to read,
// tells the peer with an Abort message, and fails the Conn with err.
func (c *Conn) violation(discard uint64, err error) error {
	if discard > 0 {
		_ = c.rdl.reset(time.Now().Add(abortGrace))
		_, _ = io.CopyN(io.Discard, c.br, int64(discard))
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortGrace)
	defer cancel()
	_ = c.sendAbort(ctx, abortCodeOf(err), strings.TrimPrefix(err.Error(), "wire: "))
	return c.fail(err)
}

// writeFrame writes one frame and flushes it. The caller holds wmu.
// Before the handshake has succeeded, there is no buffer and the frame,
// a hello or an Abort, goes out in one write.
func (c *Conn) writeFrame(t Type, payload []byte) error {
	if c.bw == nil {
		f := make([]byte, HeaderLen+len(payload))
		header{typ: t, length: uint64(len(payload))}.put(f)
		copy(f[HeaderLen:], payload)
		_, err := connWriter{c}.Write(f)
		return err
	}
	c.writeHeader(t, uint64(len(payload)))
	if _, err := c.bw.Write(payload); err != nil {
		return err
	}
	return c.flush()
}

// flush writes out bw, counting a Tunnel end marker that went with it. The
// caller holds wmu.
func (c *Conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if c.pendingEnd {
		c.pendingEnd = false
		c.stats.sent(HeaderLen, 1) // it went out with a later frame: no round of its own
	}
	return nil
}

// writeHeader buffers a frame header. The caller holds wmu.
func (c *Conn) writeHeader(t Type, length uint64) {
	header{typ: t, length: length}.put(c.hdr[:])
	_, _ = c.bw.Write(c.hdr[:]) // errors are sticky in bw and returned by the next Write or Flush
}

// beginSend checks that a protocol message of type t and length bytes may
// be sent, runs the handshake if needed, and takes the write side bound to
// ctx. The caller must call release.
func (c *Conn) beginSend(ctx context.Context, t Type, length uint64) (release func(), err error) {
	if t < FirstProtocolType {
		return nil, fmt.Errorf("%w: %v", ErrReservedType, t)
	}
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	if c.tunnel.Load() {
		return nil, ErrTunnelOpen
	}
	if length > c.peerMaxFrame {
		return nil, fmt.Errorf("%w: %v of %d bytes, the peer's limit is %d", ErrFrameTooLarge, t, length, c.peerMaxFrame)
	}
	release, err = c.lockSend(ctx)
	if err != nil {
		return nil, err
	}
	c.stats.startSend()
	return release, nil
}

// lockSend takes the write side and binds it to ctx.
func (c *Conn) lockSend(ctx context.Context) (release func(), err error) {
	c.wmu.Lock()
	if err := c.failure(); err != nil {
		c.wmu.Unlock()
		return nil, err
	}
	unbind, err := c.wdl.bind(ctx)
	if err != nil {
		c.wmu.Unlock()
		return nil, err
	}
	return func() { unbind(); c.wmu.Unlock() }, nil
}

// endSend flushes a frame whose header and payload are buffered or written,
// and counts it. A failure fails the Conn: the peer may hold part of the
// frame.
func (c *Conn) endSend(ctx context.Context, t Type, length uint64, err error) error {
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		return c.fail(fmt.Errorf("%v interrupted: %w", t, c.ioErr(ctx, err)))
	}
	c.stats.sent(int64(HeaderLen+length), 1)
	return nil
}

// Send sends payload as one message of type t, which must not be below
// FirstProtocolType. It fails with ErrFrameTooLarge, sending nothing, if the
// payload exceeds the peer's MaxFrame. If Send fails after it started
// writing, the Conn is closed.
func (c *Conn) Send(ctx context.Context, t Type, payload []byte) error {
	release, err := c.beginSend(ctx, t, uint64(len(payload)))
	if err != nil {
		return fmt.Errorf("cannot Send %v: %w", t, err)
	}
	defer release()
	c.writeHeader(t, uint64(len(payload)))
	_, err = c.bw.Write(payload)
	if err := c.endSend(ctx, t, uint64(len(payload)), err); err != nil {
		return fmt.Errorf("cannot Send %v: %w", t, err)
	}
	return nil
}

// lockRecv takes the read side and binds it to ctx.
func (c *Conn) lockRecv(ctx context.Context) (release func(), err error) {
	c.rmu.Lock()
	if err := c.failure(); err != nil {
		c.rmu.Unlock()
		return nil, err
	}
	unbind, err := c.rdl.bind(ctx)
	if err != nil {
		c.rmu.Unlock()
		return nil, err
	}
	return func() { unbind(); c.rmu.Unlock() }, nil
}

// readHeader reads the next frame header. The caller holds rmu. It
// consumes nothing unless the whole header has arrived, so a read that times
// out may be retried.
func (c *Conn) readHeader(ctx context.Context) (header, error) {
	b, err := c.br.Peek(HeaderLen)
	if err != nil {
		switch {
		case len(b) == 0 && err == io.EOF:
			if f := c.failure(); f != nil {
				return header{}, f
			}
			return header{}, fmt.Errorf("connection closed by the peer: %w", io.EOF)
		case errors.Is(err, io.EOF):
			return header{}, c.fail(fmt.Errorf("truncated frame header (%d of %d bytes): %w", len(b), HeaderLen, io.ErrUnexpectedEOF))
		}
		err = c.readErr(ctx, err)
		if errors.Is(err, ErrIdle) {
			return header{}, c.fail(err) // not the caller's cancellation: the peer is idle
		}
		return header{}, err
	}
	h, err := parseHeader(b)
	if err != nil {
		return header{}, c.violation(0, err)
	}
	_, _ = c.br.Discard(HeaderLen)
	return h, nil
}

// nextHeader reads the next frame header, checks its length against the
// limit of its type and handles an Abort. The caller holds rmu.
func (c *Conn) nextHeader(ctx context.Context) (header, error) {
	h, err := c.readHeader(ctx)
	if err != nil {
		return header{}, err
	}
	if err := h.checkLength(c.cfg.MaxFrame); err != nil {
		return header{}, c.violation(0, err)
	}
	if h.typ == TypeAbort {
		return header{}, c.readAbort(ctx, h)
	}
	return h, nil
}

// nextMessageHeader is nextHeader, first consuming the peer's end marker
// of a Tunnel closed here before the marker was read: whatever the peer
// sends after a tunnel starts with it. The caller holds rmu.
func (c *Conn) nextMessageHeader(ctx context.Context) (header, error) {
	h, err := c.nextHeader(ctx)
	if err != nil || !c.awaitPeerEnd {
		return h, err
	}
	if h.typ != TypeTunnelEnd {
		return header{}, c.violation(h.length, fmt.Errorf("%w: got %v after the tunnel closed, want %v", ErrUnexpectedType, h.typ, TypeTunnelEnd))
	}
	c.awaitPeerEnd = false
	c.stats.received(HeaderLen, 1)
	return c.nextHeader(ctx)
}

// readAbort reads the payload of an Abort frame whose header h was read,
// and fails the Conn with the peer's reason.
func (c *Conn) readAbort(ctx context.Context, h header) error {
	p, err := c.readPayload(ctx, h)
	if err != nil {
		return err
	}
	c.stats.received(int64(HeaderLen+len(p)), 1)
	ae, err := decodeAbort(p)
	if err != nil {
		return c.fail(fmt.Errorf("peer aborted with an unreadable reason: %w", err))
	}
	return c.fail(ae)
}

// readPayload reads the payload of the frame whose header h was read,
// allocating as the bytes arrive (readGrowing), never the announced length
// up front. The caller holds rmu. A failure fails the Conn.
func (c *Conn) readPayload(ctx context.Context, h header) ([]byte, error) {
	p, err := readGrowing(c.br, h.length)
	if err == nil {
		return p, nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if f := c.failure(); f != nil {
			return nil, f
		}
		return nil, c.fail(fmt.Errorf("truncated %v payload (%d of %d bytes): %w", h.typ, len(p), h.length, io.ErrUnexpectedEOF))
	}
	return nil, c.fail(fmt.Errorf("%v payload interrupted after %d of %d bytes: %w", h.typ, len(p), h.length, c.readErr(ctx, err)))
}

// beginRecv runs the handshake if needed, takes the read side bound to ctx
// and reads the header of the next message, which must be of type want
// (any protocol type if want is 0). The caller must call release.
func (c *Conn) beginRecv(ctx context.Context, want Type) (h header, release func(), err error) {
	if want != 0 && want < FirstProtocolType {
		return header{}, nil, fmt.Errorf("%w: %v", ErrReservedType, want)
	}
	if err := c.Handshake(ctx); err != nil {
		return header{}, nil, err
	}
	if c.tunnel.Load() {
		return header{}, nil, ErrTunnelOpen
	}
	release, err = c.lockRecv(ctx)
	if err != nil {
		return header{}, nil, err
	}
	h, err = c.nextMessageHeader(ctx)
	if err == nil {
		switch {
		case h.typ < FirstProtocolType:
			err = c.violation(h.length, fmt.Errorf("%w: got %v, want %v", ErrUnexpectedType, h.typ, typeOrAny(want)))
		case want != 0 && h.typ != want:
			err = c.violation(h.length, fmt.Errorf("%w: got %v, want %v", ErrUnexpectedType, h.typ, want))
		}
	}
	if err != nil {
		release()
		return header{}, nil, err
	}
	return h, release, nil
}

func typeOrAny(t Type) string {
	if t == 0 {
		return "a protocol message"
	}
	return t.String()
}

// Recv receives the next message, which must be of type want, and returns
// its payload. The header's length is checked against MaxFrame, and the
// payload's memory grows as its bytes arrive, so a peer that announces a
// large message and stalls costs little. A message of another type fails with
// ErrUnexpectedType naming both, an Abort from the peer with an *AbortError.
// Either ends the connection. If ctx ends before the next message's header
// has fully arrived, Recv consumes nothing and may be called again.
func (c *Conn) Recv(ctx context.Context, want Type) ([]byte, error) {
	if want == 0 {
		return nil, fmt.Errorf("cannot Recv: %w: 0", ErrReservedType)
	}
	_, p, err := c.recv(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("cannot Recv %v: %w", want, err)
	}
	return p, nil
}

// RecvAny receives the next message, whatever its protocol type, for a
// protocol in which the peer chooses what comes next. It is Recv otherwise.
func (c *Conn) RecvAny(ctx context.Context) (Type, []byte, error) {
	t, p, err := c.recv(ctx, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot RecvAny: %w", err)
	}
	return t, p, nil
}

func (c *Conn) recv(ctx context.Context, want Type) (Type, []byte, error) {
	h, release, err := c.beginRecv(ctx, want)
	if err != nil {
		return 0, nil, err
	}
	defer release()
	p, err := c.readPayload(ctx, h)
	if err != nil {
		return 0, nil, err
	}
	c.stats.received(int64(HeaderLen+h.length), 1)
	return h.typ, p, nil
}
