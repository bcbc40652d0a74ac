package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// The payload of a uint64-vector message is the words, little-endian (the
// order of Lattigo's serialization and of the machines the engine targets),
// with no count: the frame length, a multiple of 8, gives it. On a
// little-endian machine a vector's memory is its encoding and goes to and
// from the connection as it is; elsewhere words are converted through the
// Conn's buffers. Either way a vector is never held twice in memory.

// SendUint64s sends v as one message of type t: len(v) little-endian
// words. It fails with ErrFrameTooLarge, sending nothing, if 8*len(v) bytes
// exceed the peer's MaxFrame.
func (c *Conn) SendUint64s(ctx context.Context, t Type, v []uint64) error {
	length := uint64(len(v)) * 8
	release, err := c.beginSend(ctx, t, length)
	if err != nil {
		return fmt.Errorf("cannot SendUint64s %v: %w", t, err)
	}
	defer release()
	c.writeHeader(t, length)
	err = writeUint64s(c.bw, v)
	if err := c.endSend(ctx, t, length, err); err != nil {
		return fmt.Errorf("cannot SendUint64s %v: %w", t, err)
	}
	return nil
}

// writeUint64s encodes v into w: straight from v's memory on a
// little-endian machine, else with writeUint64sPortable.
func writeUint64s(w *bufio.Writer, v []uint64) error {
	if nativeLittleEndian {
		_, err := w.Write(wordBytes(v))
		return err
	}
	return writeUint64sPortable(w, v)
}

// writeUint64sPortable encodes v into w's buffer a buffer-full at a time.
func writeUint64sPortable(w *bufio.Writer, v []uint64) error {
	for len(v) > 0 {
		buf := w.AvailableBuffer()
		n := min(cap(buf)/8, len(v))
		if n == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
			continue
		}
		buf = buf[:8*n]
		for i, x := range v[:n] {
			binary.LittleEndian.PutUint64(buf[8*i:], x)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		v = v[n:]
	}
	return nil
}

// RecvUint64s receives a message of type want holding at most maxCount
// words (any number within MaxFrame if maxCount is negative) and returns
// them. A payload whose length is not a multiple of 8 fails with
// ErrMalformed, more than maxCount words with ErrFrameTooLarge, both before
// anything is allocated; either ends the connection, as in Recv. As in
// Recv, the vector's memory grows as its words arrive.
func (c *Conn) RecvUint64s(ctx context.Context, want Type, maxCount int) ([]uint64, error) {
	v, err := c.recvUint64s(ctx, want, maxCount, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot RecvUint64s %v: %w", want, err)
	}
	return v, nil
}

// RecvUint64sInto receives a message of type want holding exactly
// len(dst) words into dst. A message of another length fails with
// ErrMalformed and ends the connection. If it fails, dst may hold part of
// the message.
func (c *Conn) RecvUint64sInto(ctx context.Context, want Type, dst []uint64) error {
	if _, err := c.recvUint64s(ctx, want, len(dst), dst); err != nil {
		return fmt.Errorf("cannot RecvUint64sInto %v: %w", want, err)
	}
	return nil
}

// recvUint64s receives a vector of at most maxCount words, or exactly
// len(dst) words into dst if dst is not nil.
func (c *Conn) recvUint64s(ctx context.Context, want Type, maxCount int, dst []uint64) ([]uint64, error) {
	if want == 0 {
		return nil, fmt.Errorf("%w: 0", ErrReservedType)
	}
	h, release, err := c.beginRecv(ctx, want)
	if err != nil {
		return nil, err
	}
	defer release()
	exact := -1
	if dst != nil {
		exact = len(dst)
	}
	n, err := checkUint64sLen(h.length, maxCount, exact)
	if err != nil {
		return nil, c.violation(h.length, fmt.Errorf("%v: %w", h.typ, err))
	}
	var got int
	if dst == nil {
		// Allocated as the words arrive: the count is only announced.
		dst, got, err = readUint64sGrowing(c.br, n)
	} else {
		got, err = readUint64sFast(c.br, dst[:n])
	}
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if f := c.failure(); f != nil {
				return nil, f
			}
			return nil, c.fail(fmt.Errorf("truncated %v payload (%d of %d bytes): %w", h.typ, got, h.length, io.ErrUnexpectedEOF))
		}
		return nil, c.fail(fmt.Errorf("%v payload interrupted after %d of %d bytes: %w", h.typ, got, h.length, c.readErr(ctx, err)))
	}
	c.stats.received(int64(HeaderLen+h.length), 1)
	return dst[:n], nil
}

// checkUint64sLen checks the payload length of a uint64-vector message and
// returns its word count: length must be a multiple of 8, the count at most
// maxCount (no limit if maxCount < 0), and exactly exact if exact >= 0.
func checkUint64sLen(length uint64, maxCount, exact int) (int, error) {
	if length%8 != 0 {
		return 0, fmt.Errorf("%w: payload of %d bytes is not a whole number of uint64s", ErrMalformed, length)
	}
	n := length / 8
	if exact >= 0 && n != uint64(exact) {
		return 0, fmt.Errorf("%w: %d uint64s, want %d", ErrMalformed, n, exact)
	}
	if maxCount >= 0 && n > uint64(maxCount) {
		return 0, fmt.Errorf("%w: %d uint64s, limit %d", ErrFrameTooLarge, n, maxCount)
	}
	if n > uint64(maxInt) {
		return 0, fmt.Errorf("%w: %d uint64s", ErrFrameTooLarge, n)
	}
	return int(n), nil
}

// readUint64sFast is readUint64s, reading straight into dst's memory on a
// little-endian machine (bufio passes large reads through to the
// connection, so the words are copied once, from the kernel).
func readUint64sFast(r *bufio.Reader, dst []uint64) (int, error) {
	if !nativeLittleEndian {
		return readUint64s(r, dst)
	}
	return io.ReadFull(r, wordBytes(dst))
}

// readUint64s decodes len(dst) little-endian words from r straight out of
// its buffer. It returns the number of bytes consumed and, if the words ran
// out, io.ErrUnexpectedEOF (io.EOF if there were none at all) or r's error.
func readUint64s(r *bufio.Reader, dst []uint64) (int, error) {
	read := 0
	for len(dst) > 0 {
		b, err := r.Peek(min(len(dst)*8, r.Size()&^7))
		k := len(b) / 8
		for i := range k {
			dst[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
		_, _ = r.Discard(8 * k)
		read += 8 * k
		dst = dst[k:]
		if err != nil {
			if err == io.EOF && read+len(b)%8 > 0 {
				err = io.ErrUnexpectedEOF
			}
			return read + len(b)%8, err
		}
	}
	return read, nil
}
