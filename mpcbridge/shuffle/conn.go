package shuffle

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/markkurossi/mpc/ot"
)

const (
	// maxChunk bounds one IKNP matrix chunk read from the peer: the
	// library's receiver sends at most 8 KiB (its chunkSize) per chunk, and
	// its sender indexes a fixed 8 KiB buffer with the chunk's size.
	maxChunk = 8 << 10
	// ioBlock is the size of the write buffer and of the blocks in which
	// word arrays are encoded and decoded.
	ioBlock = 64 << 10
)

// stream is the connection as the library's ot.IO, with our own framing
// rules: writes are buffered (and flushed at the end of each flight), reads
// are exact (io.ReadFull of the bytes the protocol expects, never more), so a
// call never consumes a byte of whatever the peer sends after the protocol,
// and a transport such as mpcbridge/wire's raw stream can be handed over
// directly. It starts no goroutine; all writes happen on the caller's
// goroutine, so a failed write is reported where it happens.
type stream struct {
	conn io.ReadWriter
	w    *bufio.Writer
	buf  []byte // ioBlock bytes of scratch for words
}

var _ ot.IO = (*stream)(nil)

func newStream(conn io.ReadWriter) *stream {
	return &stream{conn: conn, w: bufio.NewWriterSize(conn, ioBlock), buf: make([]byte, ioBlock)}
}

func (s *stream) readFull(b []byte) error {
	_, err := io.ReadFull(s.conn, b)
	return err
}

// SendByte implements ot.IO.
func (s *stream) SendByte(v byte) error { return s.w.WriteByte(v) }

// SendUint32 implements ot.IO (big-endian, as the library's p2p.Conn).
func (s *stream) SendUint32(v int) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v))
	_, err := s.w.Write(b[:])
	return err
}

// SendData implements ot.IO: a 4-byte length, then the bytes.
func (s *stream) SendData(v []byte) error {
	if err := s.SendUint32(len(v)); err != nil {
		return err
	}
	_, err := s.w.Write(v)
	return err
}

// SendLabel implements ot.IO.
func (s *stream) SendLabel(v ot.Label, d *ot.LabelData) error {
	_, err := s.w.Write(v.Bytes(d))
	return err
}

// Flush implements ot.IO.
func (s *stream) Flush() error { return s.w.Flush() }

// ReceiveByte implements ot.IO.
func (s *stream) ReceiveByte() (byte, error) {
	var b [1]byte
	err := s.readFull(b[:])
	return b[0], err
}

// ReceiveUint32 implements ot.IO.
func (s *stream) ReceiveUint32() (int, error) {
	var b [4]byte
	if err := s.readFull(b[:]); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint32(b[:])), nil
}

// ReceiveData implements ot.IO. It is used only for the IKNP matrix chunks,
// so it bounds the peer's length to 1..maxChunk before allocating (the
// library's p2p.Conn would allocate up to 4 GiB; a zero-length chunk would
// make the library's sender loop without progress).
func (s *stream) ReceiveData() ([]byte, error) {
	n, err := s.ReceiveUint32()
	if err != nil {
		return nil, err
	}
	if err := checkChunk(n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if err := s.readFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkChunk checks the length of an IKNP matrix chunk.
func checkChunk(n int) error {
	if n == 0 || n > maxChunk || n%ot.K != 0 {
		return fmt.Errorf("%w: OT extension chunk of %d bytes (want a multiple of %d, at most %d)", ErrMalformed, n, ot.K, maxChunk)
	}
	return nil
}

// ReceiveLabel implements ot.IO.
func (s *stream) ReceiveLabel(v *ot.Label, d *ot.LabelData) error {
	if err := s.readFull(d[:]); err != nil {
		return err
	}
	v.SetData(d)
	return nil
}

// writeWords buffers src, 8 bytes little-endian per word.
func (s *stream) writeWords(src []uint64) error {
	for len(src) > 0 {
		k := min(len(src), len(s.buf)/8)
		putWords(s.buf, src[:k])
		if _, err := s.w.Write(s.buf[:8*k]); err != nil {
			return err
		}
		src = src[k:]
	}
	return nil
}

// readWords fills dst from exactly 8·len(dst) bytes.
func (s *stream) readWords(dst []uint64) error {
	for len(dst) > 0 {
		k := min(len(dst), len(s.buf)/8)
		if err := s.readFull(s.buf[:8*k]); err != nil {
			return err
		}
		getWords(dst[:k], s.buf)
		dst = dst[k:]
	}
	return nil
}

// putWords encodes src into dst, little-endian.
func putWords(dst []byte, src []uint64) {
	for i, x := range src {
		binary.LittleEndian.PutUint64(dst[8*i:], x)
	}
}

// getWords decodes len(dst) little-endian words from src.
func getWords(dst []uint64, src []byte) {
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(src[8*i:])
	}
}

// csprng buffers a random source and always fills the whole buffer: the
// library's ot.NewLabel calls Read without io.ReadFull. One per call, not for
// concurrent use.
type csprng struct{ r *bufio.Reader }

func newRand(rnd io.Reader) csprng {
	if rnd == nil {
		rnd = crand.Reader
	}
	return csprng{bufio.NewReaderSize(rnd, 1<<12)}
}

func (c csprng) Read(b []byte) (int, error) { return io.ReadFull(c.r, b) }

// deadliner is the part of net.Conn that lets a blocked Read or Write be
// interrupted.
type deadliner interface{ SetDeadline(time.Time) error }

// watch arranges for an expired deadline to be set on conn when ctx is done,
// if conn supports deadlines, so that blocked I/O returns. The returned stop
// function must be called before returning; if the deadline was set, it
// clears it again (the zero time).
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

// exchange sends our hello and reads exactly the peer's. Both parties send
// first, so the write runs on its own goroutine (a synchronous transport
// such as net.Pipe would otherwise deadlock); it has ended when exchange
// returns. If the peer's hello cannot be read or parsed, the peer may never
// read ours: then an expired deadline (if conn has SetDeadline) interrupts
// the write, and is cleared again.
func exchange(conn io.ReadWriter, me hello) (hello, error) {
	out := me.marshal()
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(out)
		wrote <- err
	}()
	var in [helloSize]byte
	_, rerr := io.ReadFull(conn, in[:])
	var peer hello
	if rerr == nil {
		peer, rerr = parseHello(in[:])
	} else {
		rerr = fmt.Errorf("cannot read hello: %w", rerr)
	}
	if rerr != nil {
		select {
		case <-wrote:
		default:
			if dl, ok := conn.(deadliner); ok {
				_ = dl.SetDeadline(time.Unix(1, 0))
				<-wrote
				_ = dl.SetDeadline(time.Time{})
			} else {
				<-wrote
			}
		}
		return hello{}, rerr
	}
	if err := <-wrote; err != nil {
		return hello{}, fmt.Errorf("cannot send hello: %w", err)
	}
	return peer, nil
}
