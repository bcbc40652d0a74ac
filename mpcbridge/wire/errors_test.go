package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestTruncatedFrame(t *testing.T) {
	payload := randomBytes(40, 3)
	// Each receive path, fed a frame cut at every byte offset of its header
	// and payload.
	recvs := []struct {
		name string
		f    func(ctx context.Context, c *Conn) error
	}{
		{"Recv", func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tA); return err }},
		{"RecvUint64s", func(ctx context.Context, c *Conn) error { _, err := c.RecvUint64s(ctx, tA, 5); return err }},
		{"RecvUint64sInto", func(ctx context.Context, c *Conn) error { return c.RecvUint64sInto(ctx, tA, make([]uint64, 5)) }},
		{"RecvInto", func(ctx context.Context, c *Conn) error { return c.RecvInto(ctx, tA, &sink{}) }},
	}
	f := frame(tA, payload)
	for _, r := range recvs {
		t.Run(r.name, func(t *testing.T) {
			for cut := 0; cut < len(f); cut++ {
				c, p := handshakeRawPeer(t, testConfig(RoleServer))
				go func() {
					_, _ = p.nc.Write(f[:cut])
					p.nc.Close()
				}()
				err := r.f(testCtx(t), c)
				switch {
				case cut == 0:
					if !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "connection closed by the peer") {
						t.Fatalf("cut at 0: %v, want EOF", err)
					}
				case !errors.Is(err, io.ErrUnexpectedEOF):
					t.Fatalf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
				case !strings.Contains(err.Error(), "truncated"):
					t.Fatalf("cut at %d: %q does not say truncated", cut, err)
				case cut > HeaderLen && !strings.Contains(err.Error(), fmt.Sprintf("(%d of 40 bytes)", cut-HeaderLen)):
					t.Fatalf("cut at %d: %q does not say how much arrived", cut, err)
				}
			}
		})
	}
}

// sink is an io.ReaderFrom that keeps what it reads.
type sink struct{ b []byte }

func (s *sink) ReadFrom(r io.Reader) (int64, error) {
	var err error
	s.b, err = io.ReadAll(r)
	return int64(len(s.b)), err
}

func TestOversizedFrame(t *testing.T) {
	cfg := testConfig(RoleServer)
	cfg.MaxFrame = 1 << 10
	for _, length := range []uint64{1<<10 + 1, 1 << 40, math.MaxUint64} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			c, p := handshakeRawPeer(t, cfg)
			var hdr [HeaderLen]byte
			header{typ: tA, length: length}.put(hdr[:])
			p.write(hdr[:])
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			errc := make(chan error, 1)
			go func() { _, err := c.Recv(testCtx(t), tA); errc <- err }()
			ae := p.readAbort()
			err := <-errc
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("0xf001 of %d bytes, limit 1024", length)) {
				t.Errorf("Recv: %v, want ErrFrameTooLarge naming the length and limit", err)
			}
			// The peer sent the header alone and never closes: an Abort
			// that arrived means the receiver did not wait for the payload.
			if ae.Code != AbortFrameTooLarge {
				t.Errorf("peer got %v %q", ae.Code, ae.Reason)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("rejecting a %d-byte frame allocated %d bytes", length, alloc)
			}
		})
	}
}

func TestHeaderCheckAllocs(t *testing.T) {
	var hdr [HeaderLen]byte
	header{typ: tA, length: 1 << 20}.put(hdr[:])
	allocs := testing.AllocsPerRun(100, func() {
		h, err := parseHeader(hdr[:])
		if err != nil {
			panic(err)
		}
		if h.checkLength(DefaultMaxFrame) != nil {
			panic("limit")
		}
	})
	if allocs != 0 {
		t.Errorf("header parsing allocates %v times", allocs)
	}
}

func TestSendTooLarge(t *testing.T) {
	// The sender knows the peer's limit from the hello and refuses locally,
	// leaving the Conn usable.
	cc, sc := testConfig(RoleClient), testConfig(RoleServer)
	sc.MaxFrame = 100
	client, server := pair(t, transports[0], cc, sc)
	ctx := testCtx(t)
	cerr, serr := both(func() error {
		if err := client.Send(ctx, tA, make([]byte, 101)); !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "the peer's limit is 100") {
			return fmt.Errorf("Send 101 B: %v", err)
		}
		if err := client.SendUint64s(ctx, tA, make([]uint64, 13)); !errors.Is(err, ErrFrameTooLarge) {
			return fmt.Errorf("SendUint64s: %v", err)
		}
		if err := client.SendFrom(ctx, tA, 101, strings.NewReader("")); !errors.Is(err, ErrFrameTooLarge) {
			return fmt.Errorf("SendFrom: %v", err)
		}
		return client.Send(ctx, tA, make([]byte, 100))
	}, func() error {
		_, err := server.Recv(ctx, tA)
		return err
	})
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v, server: %v", cerr, serr)
	}
	if s := client.Stats(); s.MessagesSent != 2 {
		t.Errorf("refused sends were counted: %v", s)
	}
}

func TestMalformedHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  []byte
		want string
	}{
		{"flags", []byte{0xf0, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "reserved flags 0x0001"},
		{"type 0", make([]byte, HeaderLen), "message type 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := handshakeRawPeer(t, testConfig(RoleServer))
			p.write(tc.hdr)
			errc := make(chan error, 1)
			go func() { _, err := c.Recv(testCtx(t), tA); errc <- err }()
			ae := p.readAbort()
			if err := <-errc; !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Recv: %v, want ErrMalformed with %q", err, tc.want)
			}
			if ae.Code != AbortMalformed || !strings.Contains(ae.Reason, tc.want) {
				t.Errorf("peer got %v %q", ae.Code, ae.Reason)
			}
		})
	}
}

func TestTransportTypeInRecv(t *testing.T) {
	for _, typ := range []Type{TypeHello, TypeTunnelData, TypeTunnelEnd} {
		c, p := handshakeRawPeer(t, testConfig(RoleServer))
		p.write(frame(typ, nil))
		errc := make(chan error, 1)
		go func() { _, _, err := c.RecvAny(testCtx(t)); errc <- err }()
		ae := p.readAbort()
		if err := <-errc; !errors.Is(err, ErrUnexpectedType) || !strings.Contains(err.Error(), "want a protocol message") {
			t.Errorf("%v: %v", typ, err)
		}
		if ae.Code != AbortUnexpectedType {
			t.Errorf("%v: peer got %v", typ, ae.Code)
		}
	}
}

func TestPeerAbortUnreadable(t *testing.T) {
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	p.write(frame(TypeAbort, []byte{1}))
	if _, err := c.Recv(testCtx(t), tA); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "unreadable reason") {
		t.Errorf("Recv: %v", err)
	}
}

// script is one end's part in a protocol run, as a list of steps.
type script []func(ctx context.Context, c *Conn) error

func TestPeerClosesAtEveryStep(t *testing.T) {
	big := make([]byte, 1<<20)
	client := script{
		func(ctx context.Context, c *Conn) error { return c.Handshake(ctx) },
		func(ctx context.Context, c *Conn) error { return c.Send(ctx, tA, []byte("query")) },
		func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tB); return err },
		func(ctx context.Context, c *Conn) error { return c.SendUint64s(ctx, tA, make([]uint64, 1000)) },
		func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tB); return err },
		func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tB); return err },
	}
	server := script{
		func(ctx context.Context, c *Conn) error { return c.Handshake(ctx) },
		func(ctx context.Context, c *Conn) error { _, err := c.Recv(ctx, tA); return err },
		func(ctx context.Context, c *Conn) error { return c.Send(ctx, tB, []byte("reply")) },
		func(ctx context.Context, c *Conn) error { _, err := c.RecvUint64s(ctx, tA, 1000); return err },
		func(ctx context.Context, c *Conn) error { return c.Send(ctx, tB, big) },
		func(ctx context.Context, c *Conn) error { return c.Send(ctx, tB, nil) },
	}
	for _, tr := range transports {
		for stop := 0; stop < len(server); stop++ {
			t.Run(fmt.Sprintf("%s/after%d", tr.name, stop), func(t *testing.T) {
				cc, sc := pair(t, tr, testConfig(RoleClient), testConfig(RoleServer))
				ctx := testCtx(t)
				cerr, serr := both(func() error {
					for i, step := range client {
						if err := step(ctx, cc); err != nil {
							return fmt.Errorf("step %d: %w", i, err)
						}
					}
					return nil
				}, func() error {
					defer sc.NetConn().Close() // vanish without a word
					for i, step := range server[:stop] {
						if err := step(ctx, sc); err != nil {
							return fmt.Errorf("step %d: %w", i, err)
						}
					}
					return nil
				})
				if serr != nil {
					t.Fatalf("server: %v", serr)
				}
				if cerr == nil {
					t.Fatal("client finished although the server left")
				}
				if errors.Is(cerr, context.DeadlineExceeded) {
					t.Fatalf("client hung: %v", cerr)
				}
				var ne net.Error
				if !errors.Is(cerr, io.EOF) && !errors.Is(cerr, io.ErrUnexpectedEOF) && !errors.Is(cerr, io.ErrClosedPipe) && !isReset(cerr) && !errors.As(cerr, &ne) {
					t.Errorf("client: %v, want an end-of-connection error", cerr)
				}
			})
		}
	}
}

func TestCancelRecv(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server, w := watchedPair(t, tr)
			// Cancel once the Recv reads the connection; a Recv that ignored
			// the cancellation would end at testCtx's deadline instead.
			ctx, cancel := context.WithCancel(testCtx(t))
			reading := w.armRead()
			go func() { <-reading; cancel() }()
			_, err := server.Recv(ctx, tA)
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Recv: %v, want context.Canceled", err)
			}
			// Nothing was consumed: the Conn still works, and the deadline the
			// cancellation set does not stick.
			ctx = testCtx(t)
			cerr, serr := both(func() error { return client.Send(ctx, tA, []byte("late")) }, func() error {
				p, err := server.Recv(ctx, tA)
				if err == nil && string(p) != "late" {
					err = fmt.Errorf("got %q", p)
				}
				return err
			})
			if cerr != nil || serr != nil {
				t.Fatalf("after cancel: client %v, server %v", cerr, serr)
			}
		})
	}
}

func TestDeadlineRecv(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			_, server := handshakePair(t, tr)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			deadline, _ := ctx.Deadline()
			_, err := server.Recv(ctx, tA)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Recv: %v, want context.DeadlineExceeded", err)
			}
			// Not before the deadline (no early timeout); how long after is
			// the scheduler's business.
			if now := time.Now(); now.Before(deadline) {
				t.Errorf("Recv returned %v before its deadline", deadline.Sub(now))
			}
		})
	}
}

func TestCancelMidHeader(t *testing.T) {
	// Part of a header arrives, then the context ends: nothing is consumed,
	// and a retry reads the whole frame.
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	f := frame(tA, []byte("payload"))
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := recvAsync(ctx, c)
	<-p.writeAsync(f[:5]) // returns once the Recv has read the 5 bytes
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv: %v", err)
	}
	p.write(f[5:])
	got, err := c.Recv(testCtx(t), tA)
	if err != nil || string(got) != "payload" {
		t.Fatalf("retry: %q, %v", got, err)
	}
}

func TestCancelMidPayload(t *testing.T) {
	// The context ends in the middle of a payload: the stream is out of
	// step, so the Conn fails and says how far it got.
	c, p := handshakeRawPeer(t, testConfig(RoleServer))
	f := frame(tA, make([]byte, 100))
	ctx, cancel := context.WithCancel(testCtx(t))
	errc := recvAsync(ctx, c)
	<-p.writeAsync(f[:HeaderLen+30]) // returns once the Recv has read them
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after 30 of 100 bytes") {
		t.Fatalf("Recv: %v", err)
	}
	if _, err := c.Recv(testCtx(t), tA); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after failure: %v, want the first error", err)
	}
}

func TestCancelSend(t *testing.T) {
	// Over net.Pipe a Send blocks until the peer reads; cancelling it ends
	// the Conn (the peer may hold part of the frame).
	c, _, w := watchedRawPeer(t, testConfig(RoleServer))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	writing := w.armWrite()
	go func() { <-writing; cancel() }() // once the Send writes, and blocks
	err := c.Send(ctx, tA, make([]byte, 1000))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Send(testCtx(t), tA, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Send after failure: %v", err)
	}
}

func TestNoLeakedGoroutines(t *testing.T) {
	// Every blocking call returns with its cancellation watcher gone, on
	// success, cancellation and deadline alike.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tr := range transports {
		func() {
			client, server := handshakePair(t, tr)
			for range 20 {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Millisecond, cancel)
				_, _ = server.Recv(ctx, tA)
				cancel()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for range 20 {
				if cerr, serr := both(func() error { return client.Send(ctx, tA, []byte("x")) }, func() error {
					_, err := server.Recv(ctx, tA)
					return err
				}); cerr != nil || serr != nil {
					t.Fatal(cerr, serr)
				}
			}
			client.Close()
			server.Close()
		}()
	}
}

// recvAsync starts a Recv of tA bounded by ctx and returns its error.
func recvAsync(ctx context.Context, c *Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Recv(ctx, tA)
		errc <- err
	}()
	return errc
}
