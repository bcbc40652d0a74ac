package wire

import (
	"bufio"
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
)

// SendMessage sends m, marshalled with MarshalBinary, as one message of
// type t.
func (c *Conn) SendMessage(ctx context.Context, t Type, m encoding.BinaryMarshaler) error {
	p, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("cannot SendMessage %v: %w", t, err)
	}
	if err := c.Send(ctx, t, p); err != nil {
		return fmt.Errorf("cannot SendMessage: %w", err)
	}
	return nil
}

// RecvMessage receives a message of type want and decodes it into m with
// UnmarshalBinary. A decoding error leaves the Conn usable: the whole
// message was read.
func (c *Conn) RecvMessage(ctx context.Context, want Type, m encoding.BinaryUnmarshaler) error {
	p, err := c.Recv(ctx, want)
	if err != nil {
		return fmt.Errorf("cannot RecvMessage: %w", err)
	}
	if err := m.UnmarshalBinary(p); err != nil {
		return fmt.Errorf("cannot RecvMessage %v: %w", want, err)
	}
	return nil
}

// SendFrom sends one message of type t whose payload, size bytes, src
// writes with WriteTo, so a large object (a batch of Lattigo ciphertexts)
// streams to the connection without being marshalled into memory first.
// The writer src is given buffers its output in the Conn's buffer and
// implements Lattigo's buffer.Writer, so Lattigo writes into it directly. If
// src writes other than size bytes, or fails, SendFrom fails and closes the
// Conn, since the peer holds part of a frame. size must not exceed the
// peer's MaxFrame.
func (c *Conn) SendFrom(ctx context.Context, t Type, size int64, src io.WriterTo) error {
	if size < 0 {
		return fmt.Errorf("cannot SendFrom %v: negative size %d", t, size)
	}
	release, err := c.beginSend(ctx, t, uint64(size))
	if err != nil {
		return fmt.Errorf("cannot SendFrom %v: %w", t, err)
	}
	defer release()
	c.writeHeader(t, uint64(size))
	fw := &frameWriter{w: c.bw, left: size}
	n, err := src.WriteTo(fw)
	switch {
	case err != nil:
		err = fmt.Errorf("source failed after %d of %d bytes: %w", n, size, err)
	case fw.left != 0:
		err = fmt.Errorf("source wrote %d of the %d bytes announced", size-fw.left, size)
	}
	if err := c.endSend(ctx, t, uint64(size), err); err != nil {
		return fmt.Errorf("cannot SendFrom %v: %w", t, err)
	}
	return nil
}

// errOverflow is returned to a SendFrom source that writes past its size.
var errOverflow = errors.New("write beyond the announced size")

// frameWriter writes at most left bytes of a frame into the Conn's
// buffered writer. Besides io.Writer it has the methods of Lattigo's
// buffer.Writer (Flush, AvailableBuffer, Available), limited to the frame.
type frameWriter struct {
	w    *bufio.Writer
	left int64
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > fw.left {
		n, err := fw.w.Write(p[:fw.left])
		fw.left -= int64(n)
		if err == nil {
			err = errOverflow
		}
		return n, err
	}
	n, err := fw.w.Write(p)
	fw.left -= int64(n)
	return n, err
}

// Flush writes the buffered bytes to the connection.
func (fw *frameWriter) Flush() error { return fw.w.Flush() }

// Available returns how many bytes can be buffered before a flush.
func (fw *frameWriter) Available() int { return int(min(int64(fw.w.Available()), fw.left)) }

// AvailableBuffer returns an empty buffer with Available capacity, to be
// appended to and passed to Write.
func (fw *frameWriter) AvailableBuffer() []byte {
	b := fw.w.AvailableBuffer()
	return b[:0:fw.Available()]
}

// RecvInto receives a message of type want and hands its payload to
// dst.ReadFrom, so a large object decodes straight from the connection.
// The reader dst is given stops at the end of the payload and implements
// Lattigo's buffer.Reader (Peek, Discard, Size), so Lattigo reads from it
// without buffering again. If dst fails or leaves part of the payload
// unread, the rest is discarded and RecvInto returns an error, the Conn
// staying usable; a connection error or truncation ends the Conn as in Recv.
func (c *Conn) RecvInto(ctx context.Context, want Type, dst io.ReaderFrom) error {
	if want == 0 {
		return fmt.Errorf("cannot RecvInto: %w: 0", ErrReservedType)
	}
	if err := c.recvInto(ctx, want, dst); err != nil {
		return fmt.Errorf("cannot RecvInto %v: %w", want, err)
	}
	return nil
}

func (c *Conn) recvInto(ctx context.Context, want Type, dst io.ReaderFrom) error {
	h, release, err := c.beginRecv(ctx, want)
	if err != nil {
		return err
	}
	defer release()
	fr := &frameReader{r: c.br, left: int64(h.length)}
	_, derr := dst.ReadFrom(fr)
	if fr.err == nil && fr.left > 0 {
		consumed := int64(h.length) - fr.left
		if _, err := io.CopyN(io.Discard, fr, fr.left); err != nil && fr.err == nil {
			fr.err = err
		}
		if derr == nil {
			derr = fmt.Errorf("destination read %d of %d bytes", consumed, h.length)
		}
	}
	if fr.err != nil {
		got := int64(h.length) - fr.left
		if fr.err == io.ErrUnexpectedEOF {
			if f := c.failure(); f != nil {
				return f
			}
			return c.fail(fmt.Errorf("truncated %v payload (%d of %d bytes): %w", h.typ, got, h.length, io.ErrUnexpectedEOF))
		}
		return c.fail(fmt.Errorf("%v payload interrupted after %d of %d bytes: %w", h.typ, got, h.length, c.readErr(ctx, fr.err)))
	}
	c.stats.received(int64(HeaderLen+h.length), 1)
	if derr != nil {
		return fmt.Errorf("cannot decode %v: %w", h.typ, derr)
	}
	return nil
}

// frameReader reads the left remaining bytes of a frame's payload from the
// Conn's buffered reader and then reports io.EOF. Besides io.Reader it has
// the methods of Lattigo's buffer.Reader (Size, Peek, Discard), limited to
// the payload. err records a failure of the connection (as
// io.ErrUnexpectedEOF if it ended early), as opposed to the payload's end.
type frameReader struct {
	r    *bufio.Reader
	left int64
	err  error
}

func (fr *frameReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	if fr.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > fr.left {
		p = p[:fr.left]
	}
	n, err := fr.r.Read(p)
	fr.left -= int64(n)
	return n, fr.setErr(err)
}

// setErr records a read error other than running out of payload.
func (fr *frameReader) setErr(err error) error {
	if err == nil {
		return nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	fr.err = err
	return err
}

// Size returns the size of the underlying buffer.
func (fr *frameReader) Size() int { return fr.r.Size() }

// Peek returns the next n bytes without consuming them; if fewer remain in
// the payload, it returns them and io.EOF.
func (fr *frameReader) Peek(n int) ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	short := false
	if int64(n) > fr.left {
		n, short = int(fr.left), true
	}
	b, err := fr.r.Peek(n)
	if err != nil && err != bufio.ErrBufferFull {
		return b, fr.setErr(err)
	}
	if short {
		return b, io.EOF
	}
	return b, err
}

// Discard skips the next n bytes; if fewer remain in the payload, it skips
// them and returns io.EOF.
func (fr *frameReader) Discard(n int) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	short := false
	if int64(n) > fr.left {
		n, short = int(fr.left), true
	}
	d, err := fr.r.Discard(n)
	fr.left -= int64(d)
	if err != nil {
		return d, fr.setErr(err)
	}
	if short {
		return d, io.EOF
	}
	return d, nil
}
