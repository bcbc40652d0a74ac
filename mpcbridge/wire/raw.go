package wire

import (
	"context"
	"fmt"
	"io"
)

// Raw returns the connection as a plain byte stream, for a library that
// does its own framing, to use between two messages. ctx bounds every Read
// and Write. Bytes are passed through untouched (reads drain the Conn's
// buffer first) and counted in Stats, rounds by direction changes as for
// messages; the handshake runs first if it has not. The stream has no Close,
// so a library that closes what it is given leaves the Conn open.
//
// Raw is safe only for a library that reads exactly what its peer writes
// and not a byte more: whatever it reads past its protocol's end is lost to
// the next Recv. A library with a read-ahead buffer, such as the p2p.Conn of
// github.com/markkurossi/mpc (it reads up to 1 MiB at a time), must use
// OpenTunnel instead. A failed Read or Write ends the Conn.
func (c *Conn) Raw(ctx context.Context) io.ReadWriter {
	return rawConn{c: c, ctx: ctx}
}

type rawConn struct {
	c   *Conn
	ctx context.Context
}

func (r rawConn) Read(p []byte) (int, error) {
	c := r.c
	if err := c.Handshake(r.ctx); err != nil {
		return 0, fmt.Errorf("cannot Read raw: %w", err)
	}
	release, err := c.lockRecv(r.ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot Read raw: %w", err)
	}
	defer release()
	n, err := c.br.Read(p)
	c.stats.received(int64(n), 0)
	if err == io.EOF {
		return n, err
	}
	if err != nil {
		return n, fmt.Errorf("cannot Read raw: %w", c.fail(c.readErr(r.ctx, err)))
	}
	return n, nil
}

func (r rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := r.c
	if err := c.Handshake(r.ctx); err != nil {
		return 0, fmt.Errorf("cannot Write raw: %w", err)
	}
	release, err := c.lockSend(r.ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot Write raw: %w", err)
	}
	defer release()
	// Every send flushes, so bw holds at most a tunnel's end marker: send
	// it, then p straight from the caller's buffer.
	c.stats.startSend()
	if err := c.flush(); err != nil {
		return 0, fmt.Errorf("cannot Write raw: %w", c.fail(c.ioErr(r.ctx, err)))
	}
	n, err := connWriter{c}.Write(p)
	c.stats.sent(int64(n), 0)
	if err != nil {
		return n, fmt.Errorf("cannot Write raw: %w", c.fail(c.ioErr(r.ctx, err)))
	}
	return n, nil
}
