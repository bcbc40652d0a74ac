package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// readAheadLib imitates the p2p.Conn of github.com/markkurossi/mpc: it
// reads through a 1 MiB buffer (so it reads ahead of what it needs), writes
// from a goroutine, and closes what it was given if that is an io.Closer.
type readAheadLib struct {
	rw     io.ReadWriter
	br     *bufio.Reader
	writes chan []byte
	done   chan error
}

func newReadAheadLib(rw io.ReadWriter) *readAheadLib {
	l := &readAheadLib{rw: rw, br: bufio.NewReaderSize(rw, 1<<20), writes: make(chan []byte, 3), done: make(chan error, 1)}
	go func() {
		var err error
		for b := range l.writes {
			if _, werr := rw.Write(b); werr != nil && err == nil {
				err = werr
			}
		}
		l.done <- err
	}()
	return l
}

// send queues a length-prefixed message.
func (l *readAheadLib) send(b []byte) {
	m := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	l.writes <- append(m, b...)
}

func (l *readAheadLib) receive() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(l.br, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(n[:]))
	_, err := io.ReadFull(l.br, b)
	return b, err
}

func (l *readAheadLib) close() error {
	close(l.writes)
	err := <-l.done
	if c, ok := l.rw.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// libExchange runs a small protocol of the library: the client sends
// queries of growing size, the server answers each; then both close the
// library. The server sends the last bytes, so the client's read-ahead
// buffer is still reading when the server goes on to send a frame.
func libExchange(ctx context.Context, c *Conn, client bool) error {
	tun, err := c.OpenTunnel(ctx)
	if err != nil {
		return err
	}
	lib := newReadAheadLib(tun)
	for i, n := range []int{1, 1000, 3 << 20} {
		if client {
			lib.send(randomBytes(n, uint64(i)))
			got, err := lib.receive()
			if err != nil {
				return fmt.Errorf("client receive %d: %w", i, err)
			}
			if len(got) != 2*n {
				return fmt.Errorf("client: answer %d has %d bytes", i, len(got))
			}
		} else {
			got, err := lib.receive()
			if err != nil {
				return fmt.Errorf("server receive %d: %w", i, err)
			}
			if !bytes.Equal(got, randomBytes(n, uint64(i))) {
				return fmt.Errorf("server: query %d differs", i)
			}
			lib.send(append(got, got...))
		}
	}
	return lib.close()
}

func TestTunnel(t *testing.T) {
	// Two tunnels back to back, then a message: each end's marker goes out
	// with its next frame and is consumed by the peer's next receive.
	const iters = 2
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			c0, s0 := client.Stats(), server.Stats()
			cerr, serr := both(func() error {
				for range iters {
					if err := libExchange(ctx, client, true); err != nil {
						return err
					}
				}
				p, err := client.Recv(ctx, tA)
				if err == nil && string(p) != "frames again" {
					err = fmt.Errorf("got %q", p)
				}
				return err
			}, func() error {
				for range iters {
					if err := libExchange(ctx, server, false); err != nil {
						return err
					}
				}
				return server.Send(ctx, tA, []byte("frames again"))
			})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			cs, ss := client.Stats().Sub(c0), server.Stats().Sub(s0)
			if cs.BytesSent != ss.BytesReceived || ss.BytesSent != cs.BytesReceived {
				t.Errorf("byte counts disagree: client %v, server %v", cs, ss)
			}
			// Per tunnel the client writes 3 queries (1+4, 1000+4 and 3 MiB+4
			// bytes, the last in 4 frames of at most 1 MiB): 6 data frames. Its
			// first end marker goes out with the second tunnel's first frame;
			// its last one never leaves, as the client sends nothing after it.
			want := iters*int64(3*4+1+1000+3<<20) + (iters*6+iters-1)*HeaderLen
			if cs.BytesSent != want {
				t.Errorf("client sent %d bytes, want %d", cs.BytesSent, want)
			}
			if cs.Rounds != 3*iters || ss.Rounds != 3*iters {
				t.Errorf("rounds: client %d, server %d, want %d", cs.Rounds, ss.Rounds, 3*iters)
			}
		})
	}
}

func TestTunnelErrors(t *testing.T) {
	client, server := handshakePair(t, transports[0])
	ctx := testCtx(t)
	tun, err := client.OpenTunnel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenTunnel(ctx); !errors.Is(err, ErrTunnelOpen) {
		t.Errorf("second OpenTunnel: %v", err)
	}
	if err := client.Send(ctx, tA, nil); !errors.Is(err, ErrTunnelOpen) {
		t.Errorf("Send in a tunnel: %v", err)
	}
	if _, err := client.Recv(ctx, tA); !errors.Is(err, ErrTunnelOpen) {
		t.Errorf("Recv in a tunnel: %v", err)
	}
	if n, err := tun.Read(nil); n != 0 || err != nil {
		t.Errorf("empty Read: %d, %v", n, err)
	}
	stun, err := server.OpenTunnel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Closing costs no I/O: both ends close at once, even on net.Pipe.
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	if err := stun.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tun.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := tun.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}
	if err := tun.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, dir := range []struct{ from, to *Conn }{{client, server}, {server, client}} {
		cerr, serr := both(func() error { return dir.from.Send(ctx, tA, []byte("ok")) }, func() error {
			_, err := dir.to.Recv(ctx, tA)
			return err
		})
		if cerr != nil || serr != nil {
			t.Fatalf("after tunnel: sender %v, receiver %v", cerr, serr)
		}
	}
	if cs, ss := client.Stats(), server.Stats(); cs.BytesSent != ss.BytesReceived || ss.BytesSent != cs.BytesReceived {
		t.Errorf("byte counts disagree: client %v, server %v", cs, ss)
	}
}

func TestTunnelUnreadData(t *testing.T) {
	// The server's library writes what the client's never reads: the
	// client's next receive finds data where the end marker should be.
	client, server := handshakePair(t, transports[0])
	ctx := testCtx(t)
	cerr, serr := both(func() error {
		tun, err := client.OpenTunnel(ctx)
		if err != nil {
			return err
		}
		if err := tun.Close(); err != nil {
			return err
		}
		_, err = client.Recv(ctx, tA)
		return err
	}, func() error {
		tun, err := server.OpenTunnel(ctx)
		if err != nil {
			return err
		}
		if _, err := tun.Write([]byte("never read")); err != nil {
			return err
		}
		if err := tun.Close(); err != nil {
			return err
		}
		_, err = server.Recv(ctx, tA)
		return err
	})
	if !errors.Is(cerr, ErrUnexpectedType) || !strings.Contains(cerr.Error(), "got tunnel-data(0x0003) after the tunnel closed") {
		t.Errorf("client: %v", cerr)
	}
	if !errors.Is(serr, ErrPeerAborted) {
		t.Errorf("server: %v, want the client's abort", serr)
	}
}

func TestTunnelClosePartlyRead(t *testing.T) {
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	tun, err := c.OpenTunnel(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.write(frame(TypeTunnelData, []byte("0123456789")))
	if n, err := tun.Read(make([]byte, 4)); n != 4 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if err := tun.Close(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "6 bytes of the peer's data frame unread") {
		t.Errorf("Close: %v", err)
	}
	if err := c.Send(testCtx(t), tA, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Send after: %v", err)
	}
}

func TestTunnelPeerSendsMessage(t *testing.T) {
	// A protocol message inside a tunnel is a violation.
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	tun, err := c.OpenTunnel(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	p.write(frame(tA, []byte("oops")))
	errc := make(chan error, 1)
	go func() { _, err := tun.Read(make([]byte, 10)); errc <- err }()
	ae := p.readAbort()
	if err := <-errc; !errors.Is(err, ErrUnexpectedType) || !strings.Contains(err.Error(), "got 0xf001 in a tunnel") {
		t.Errorf("Read: %v", err)
	}
	if ae.Code != AbortUnexpectedType {
		t.Errorf("peer got %v", ae.Code)
	}
}

func TestTunnelTruncated(t *testing.T) {
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	tun, err := c.OpenTunnel(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	f := frame(TypeTunnelData, []byte("0123456789"))
	go func() {
		_, _ = p.nc.Write(f[:HeaderLen+4])
		p.nc.Close()
	}()
	got, err := io.ReadAll(tun)
	if string(got) != "0123" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAll: %q, %v", got, err)
	}
}

func TestRaw(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			msg := randomBytes(200000, 4)
			cerr, serr := both(func() error {
				// A frame, then raw bytes right behind it: the raw read must find
				// them in the Conn's buffer.
				if err := client.Send(ctx, tA, []byte("before")); err != nil {
					return err
				}
				if _, err := client.Raw(ctx).Write(msg); err != nil {
					return err
				}
				return client.Send(ctx, tA, []byte("after"))
			}, func() error {
				if _, err := server.Recv(ctx, tA); err != nil {
					return err
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(server.Raw(ctx), got); err != nil {
					return err
				}
				if !bytes.Equal(got, msg) {
					return errors.New("raw bytes differ")
				}
				p, err := server.Recv(ctx, tA)
				if err == nil && string(p) != "after" {
					err = fmt.Errorf("got %q", p)
				}
				return err
			})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			if cs, ss := client.Stats(), server.Stats(); cs.BytesSent != ss.BytesReceived {
				t.Errorf("client sent %d, server received %d", cs.BytesSent, ss.BytesReceived)
			}
			if _, ok := client.Raw(ctx).(io.Closer); ok {
				t.Error("Raw stream has a Close method")
			}
		})
	}
}

func TestRawErrors(t *testing.T) {
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	raw := c.Raw(testCtx(t))
	go p.nc.Close()
	if _, err := raw.Read(make([]byte, 4)); err != io.EOF {
		t.Errorf("Read at peer close: %v, want io.EOF", err)
	}
	if _, err := raw.Write([]byte("x")); err == nil {
		t.Error("Write to a closed pipe succeeded")
	}
	if _, err := raw.Read(make([]byte, 4)); err == nil {
		t.Error("Read after failure succeeded")
	}
}
