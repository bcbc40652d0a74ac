package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// idleTimeout is the idle timeout of the tests below: short, since each
// waits for it once, and with no wall-clock assertion on it.
const idleTimeout = 100 * time.Millisecond

func TestIdleTimeout(t *testing.T) {
	// A peer that stops sending, or stops reading, fails the waiting call
	// with ErrIdle long before the caller's context ends; without the idle
	// timeout each case would wait for testCtx and fail with
	// DeadlineExceeded.
	idle := func(role Role) Config {
		c := testConfig(role)
		c.IdleTimeout = idleTimeout
		return c
	}
	for _, tc := range []struct {
		name string
		// run is the server's part; peer the client's, which stalls and
		// may wait for serverDone, closed when the server's part is over.
		run  func(ctx context.Context, server *Conn) error
		peer func(ctx context.Context, client *Conn, serverDone <-chan struct{}) error
		// want is in the server's error; peerGot, if not empty, in the
		// client's, which learns why in an Abort.
		want, peerGot string
	}{
		{
			name: "between messages",
			run:  func(ctx context.Context, s *Conn) error { _, err := s.Recv(ctx, tA); return err },
			peer: func(ctx context.Context, c *Conn, _ <-chan struct{}) error { _, err := c.Recv(ctx, tB); return err },
			want: "no progress for 100ms", peerGot: "peer aborted: peer idle: no progress for 100ms",
		},
		{
			name: "mid payload",
			run:  func(ctx context.Context, s *Conn) error { _, err := s.Recv(ctx, tA); return err },
			peer: func(ctx context.Context, c *Conn, _ <-chan struct{}) error {
				// A header announcing 1 MiB, 10 bytes of it, then silence.
				if _, err := c.Raw(ctx).Write(frame(tA, make([]byte, 1<<20))[:HeaderLen+10]); err != nil {
					return err
				}
				_, err := c.Raw(ctx).Read(make([]byte, 1))
				return err
			},
			want: "interrupted after 10 of 1048576 bytes: wire: peer idle",
		},
		{
			name: "uint64s mid payload",
			run:  func(ctx context.Context, s *Conn) error { _, err := s.RecvUint64s(ctx, tA, -1); return err },
			peer: func(ctx context.Context, c *Conn, _ <-chan struct{}) error {
				if _, err := c.Raw(ctx).Write(frame(tA, make([]byte, 1<<20))[:HeaderLen+16]); err != nil {
					return err
				}
				_, err := c.Raw(ctx).Read(make([]byte, 1))
				return err
			},
			want: "interrupted after 16 of 1048576 bytes: wire: peer idle",
		},
		{
			name: "peer not reading",
			// 64 MiB is more than any socket buffers hold.
			run:  func(ctx context.Context, s *Conn) error { return s.Send(ctx, tA, make([]byte, 64<<20)) },
			peer: func(ctx context.Context, c *Conn, serverDone <-chan struct{}) error { <-serverDone; return nil },
			want: "interrupted: wire: peer idle",
		},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				client, server := pair(t, tr, testConfig(RoleClient), idle(RoleServer))
				ctx := testCtx(t)
				serverDone := make(chan struct{})
				cerr, serr := both(func() error {
					if err := client.Handshake(ctx); err != nil {
						return err
					}
					return tc.peer(ctx, client, serverDone)
				}, func() error {
					defer close(serverDone)
					if err := server.Handshake(ctx); err != nil {
						return err
					}
					err := tc.run(ctx, server)
					server.Close()
					return err
				})
				if !errors.Is(serr, ErrIdle) || !strings.Contains(serr.Error(), tc.want) {
					t.Errorf("server: %v, want ErrIdle with %q", serr, tc.want)
				}
				if tc.peerGot != "" && (!errors.Is(cerr, ErrIdle) || !strings.Contains(cerr.Error(), tc.peerGot)) {
					t.Errorf("client: %v, want an Abort with %q", cerr, tc.peerGot)
				}
			})
		}
	}
}

func TestIdleTimeoutRestartsWithProgress(t *testing.T) {
	// The idle timeout bounds the silence, not the message: a payload that
	// trickles in for several times the timeout, a little at a time,
	// arrives whole.
	if testing.Short() {
		t.Skip("a slow sender")
	}
	cfg := testConfig(RoleServer)
	cfg.IdleTimeout = 2 * time.Second
	c, p := handshakeRawPeer(t, cfg)
	const pieces, gap = 50, 50 * time.Millisecond // 2.5 s in all, pauses of 1/40 of the timeout
	payload := randomBytes(pieces*100, 9)
	f := frame(tA, payload)
	go func() {
		p.write(f[:HeaderLen])
		for i := range pieces {
			time.Sleep(gap)
			<-p.writeAsync(f[HeaderLen+100*i : HeaderLen+100*(i+1)])
		}
	}()
	got, err := c.Recv(testCtx(t), tA)
	if err != nil || string(got) != string(payload) {
		t.Fatalf("Recv: %d bytes, %v", len(got), err)
	}
}

// allocated returns the bytes allocated by the whole process so far.
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func TestRecvAllocatesAsBytesArrive(t *testing.T) {
	// A peer announces the largest payload allowed, sends 1 MiB of it and
	// stalls. The receiver must not have allocated the announced 256 MiB:
	// its buffer at most doubles as bytes arrive (readGrowing), so less than
	// four times what arrived is allocated in all.
	const sent = 1 << 20
	for _, tc := range []struct {
		name string
		recv func(ctx context.Context, c *Conn) error
	}{
		{"Recv", func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tA); return err }},
		{"RecvAny", func(ctx context.Context, c *Conn) error { _, _, err := c.RecvAny(ctx); return err }},
		{"RecvUint64s", func(ctx context.Context, c *Conn) error { _, err := c.RecvUint64s(ctx, tA, -1); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := handshakeRawPeer(t, testConfig(RoleServer))
			f := frame(tA, make([]byte, sent))
			header{typ: tA, length: DefaultMaxFrame}.put(f)
			before := allocated()
			errc := make(chan error, 1)
			go func() { errc <- tc.recv(testCtx(t), c) }()
			<-p.writeAsync(f) // net.Pipe: returns once the receiver has read it all
			grown := allocated() - before
			p.nc.Close()
			if err := <-errc; err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(%d of %d bytes)", sent, DefaultMaxFrame)) {
				t.Errorf("%s: %v, want a truncation after %d bytes", tc.name, err, sent)
			}
			if limit := uint64(4*sent + 1<<20); grown > limit {
				t.Errorf("%d bytes of a %d-byte payload arrived and %d bytes were allocated, want at most %d", sent, DefaultMaxFrame, grown, limit)
			}
		})
	}
}

func TestReadGrowing(t *testing.T) {
	for _, n := range []int{0, 1, firstAlloc - 1, firstAlloc, firstAlloc + 1, 5*firstAlloc + 7, 1 << 20} {
		want := randomBytes(n, uint64(n))
		got, err := readGrowing(strings.NewReader(string(want)+"tail"), uint64(n))
		if err != nil || string(got) != string(want) || cap(got) != n {
			t.Errorf("n=%d: %d bytes (cap %d), %v", n, len(got), cap(got), err)
		}
		if n == 0 {
			continue
		}
		wantErr := io.ErrUnexpectedEOF
		if n == 1 {
			wantErr = io.EOF
		}
		got, err = readGrowing(strings.NewReader(string(want[:n-1])), uint64(n))
		if len(got) != n-1 || err != wantErr {
			t.Errorf("n=%d cut by one: %d bytes, %v, want %v", n, len(got), err, wantErr)
		}
	}
}

func TestHandshakeHoldsNoBuffers(t *testing.T) {
	// A connection that is accepted and then says nothing costs its hello
	// and little else: the 2 x 64 KiB buffers come after the handshake.
	const conns = 20
	before := allocated()
	peers := make([]net.Conn, 0, conns)
	for range conns {
		c, p := newRawPeer(t, testConfig(RoleServer))
		go func() { _ = c.Handshake(testCtx(t)) }()
		p.readFrame(TypeHello) // the Conn is waiting for the peer's hello
		peers = append(peers, p.nc)
	}
	perConn := (allocated() - before) / conns
	for _, nc := range peers {
		nc.Close()
	}
	if perConn > 16<<10 {
		t.Errorf("a connection waiting in the handshake allocated %d bytes, want at most 16 KiB", perConn)
	}
}
