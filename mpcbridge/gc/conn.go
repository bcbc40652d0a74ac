package gc

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/markkurossi/mpc/ot"
	"github.com/markkurossi/mpc/p2p"
)

// rawConn is the stream given to p2p.NewConn. It hides conn's Close
// (p2p.Conn.Close closes an io.Closer, and conn is the caller's to close)
// and keeps write errors from the library: p2p.Conn's writer goroutine
// stores a write error in a field that Flush reads without synchronization
// (a data race the race detector reports). rawConn records the first write
// error instead, reports success to the library and drops later writes;
// we check err after flushes and before returning. A failed write means a
// broken connection or an expired deadline, so the reads that follow fail
// too and nothing waits on the dropped bytes.
type rawConn struct {
	rw   io.ReadWriter
	mu   sync.Mutex
	werr error
}

func (c *rawConn) Read(b []byte) (int, error) { return c.rw.Read(b) }

func (c *rawConn) Write(b []byte) (int, error) {
	if c.err() != nil {
		return len(b), nil
	}
	if _, err := c.rw.Write(b); err != nil {
		c.mu.Lock()
		c.werr = err
		c.mu.Unlock()
	}
	return len(b), nil
}

// err returns the first write error.
func (c *rawConn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

// sendRaw appends b to pc's write buffer without a length prefix.
func sendRaw(pc *p2p.Conn, b []byte) error {
	for len(b) > 0 {
		if pc.WritePos >= len(pc.WriteBuf) {
			if err := pc.Flush(); err != nil {
				return err
			}
		}
		n := copy(pc.WriteBuf[pc.WritePos:], b)
		pc.WritePos += n
		b = b[n:]
	}
	return nil
}

// recvFull fills dst from pc (whose reads may run ahead of dst, but never
// past what the peer has sent so far).
func recvFull(pc *p2p.Conn, dst []byte) error {
	for len(dst) > 0 {
		if pc.ReadStart >= pc.ReadEnd {
			if err := pc.Fill(min(len(dst), len(pc.ReadBuf))); err != nil {
				return err
			}
		}
		n := copy(dst, pc.ReadBuf[pc.ReadStart:pc.ReadEnd])
		pc.ReadStart += n
		dst = dst[n:]
	}
	return nil
}

// putLabel writes l's 16 bytes at the start of dst.
func putLabel(dst []byte, l ot.Label) {
	binary.BigEndian.PutUint64(dst[0:8], l.D0)
	binary.BigEndian.PutUint64(dst[8:16], l.D1)
}

// getLabel reads a label from the first 16 bytes of src.
func getLabel(src []byte) ot.Label {
	return ot.Label{D0: binary.BigEndian.Uint64(src[0:8]), D1: binary.BigEndian.Uint64(src[8:16])}
}

// csprng buffers crypto/rand (the library draws 16 bytes per wire label)
// and always fills the whole buffer: the library's ot.NewLabel calls Read
// without io.ReadFull. One per call, not for concurrent use.
type csprng struct{ r *bufio.Reader }

func newRand() csprng { return csprng{bufio.NewReaderSize(crand.Reader, 1<<14)} }

func (c csprng) Read(b []byte) (int, error) { return io.ReadFull(c.r, b) }

// deadliner is the part of net.Conn that lets a blocked Read or Write be
// interrupted.
type deadliner interface{ SetDeadline(time.Time) error }

// watch arranges for an expired deadline to be set on conn when ctx is done,
// if conn supports deadlines, so that blocked I/O (ours and the library's
// writer goroutine's) returns. The returned stop function must be called
// before returning, after the library's writer goroutine has exited; if the
// deadline was set, it clears it again (the zero time).
func watch(ctx context.Context, conn io.ReadWriter) (stop func()) {
	d, isD := conn.(deadliner)
	if !isD || ctx.Done() == nil {
		return func() {}
	}
	fired := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		_ = d.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if stopf() {
			return
		}
		<-fired
		_ = d.SetDeadline(time.Time{})
	}
}

// Errors reported by Garble and Evaluate; test with errors.Is.
var (
	// ErrMismatch: the peer's Params, number of scores or role differ from
	// ours (both parties garbling, for example). Nothing secret was sent,
	// and both hellos were consumed, so the stream is still in step.
	ErrMismatch = errors.New("gc: parties disagree")
	// ErrPeerAborted: the peer rejected its own arguments (for example too
	// many scores) and said so in its hello; the stream is still in step.
	ErrPeerAborted = errors.New("gc: peer aborted: it rejected its own arguments")
	// ErrMalformed: the peer sent bytes that are not a valid protocol
	// message (including data on which the library panicked).
	ErrMalformed = errors.New("gc: malformed message from peer")
)
