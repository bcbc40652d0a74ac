package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 100, bufSize - HeaderLen, bufSize, bufSize + 1, 1<<20 + 3}
	for _, tr := range transports {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%dB", tr.name, n), func(t *testing.T) {
				client, server := handshakePair(t, tr)
				ctx := testCtx(t)
				msg := randomBytes(n, uint64(n))
				// The server echoes what it receives under another type.
				cerr, serr := both(func() error {
					if err := client.Send(ctx, tA, msg); err != nil {
						return err
					}
					got, err := client.Recv(ctx, tB)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, msg) {
						return errors.New("client: echo differs")
					}
					return nil
				}, func() error {
					got, err := server.Recv(ctx, tA)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, msg) {
						return errors.New("server: message differs")
					}
					return server.Send(ctx, tB, got)
				})
				if cerr != nil || serr != nil {
					t.Fatalf("client: %v, server: %v", cerr, serr)
				}
			})
		}
	}
}

func TestFullDuplex(t *testing.T) {
	// Both ends send a large message at once, then receive: over net.Pipe
	// this deadlocks unless sending and receiving run concurrently.
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			msg := randomBytes(3<<20, 5)
			run := func(c *Conn) error {
				errc := make(chan error, 1)
				go func() { errc <- c.Send(ctx, tA, msg) }()
				got, err := c.Recv(ctx, tA)
				if serr := <-errc; serr != nil {
					return serr
				}
				if err != nil {
					return err
				}
				if !bytes.Equal(got, msg) {
					return errors.New("message differs")
				}
				return nil
			}
			if cerr, serr := both(func() error { return run(client) }, func() error { return run(server) }); cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
		})
	}
}

func TestRecvAny(t *testing.T) {
	client, server := handshakePair(t, transports[0])
	ctx := testCtx(t)
	cerr, serr := both(func() error { return client.Send(ctx, tB, []byte("x")) }, func() error {
		typ, p, err := server.RecvAny(ctx)
		if err != nil {
			return err
		}
		if typ != tB || string(p) != "x" {
			return fmt.Errorf("got %v %q", typ, p)
		}
		return nil
	})
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v, server: %v", cerr, serr)
	}
}

func TestStatsExact(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			cc, sc := testConfig(RoleClient), testConfig(RoleServer)
			client, server := pair(t, tr, cc, sc)
			ctx := testCtx(t)
			if cerr, serr := both(func() error { return client.Handshake(ctx) }, func() error { return server.Handshake(ctx) }); cerr != nil || serr != nil {
				t.Fatal(cerr, serr)
			}
			hc, hs := int64(len(helloFrame(cc))), int64(len(helloFrame(sc)))
			wantC := Stats{BytesSent: hc, BytesReceived: hs, MessagesSent: 1, MessagesReceived: 1, Rounds: 1}
			wantS := Stats{BytesSent: hs, BytesReceived: hc, MessagesSent: 1, MessagesReceived: 1, Rounds: 1}
			if got := client.Stats(); got != wantC {
				t.Fatalf("client after handshake: %v, want %v", got, wantC)
			}
			if got := server.Stats(); got != wantS {
				t.Fatalf("server after handshake: %v, want %v", got, wantS)
			}
			c0, s0 := client.Stats(), server.Stats()

			// Client: send 10 B and 20 B, receive 5 uint64s, send 0 B, then
			// 7 raw bytes each way. That is 3 rounds for the client (two sends,
			// then a send after the receive, then a raw write after a raw
			// read) and 2 for the server.
			cerr, serr := both(func() error {
				if err := client.Send(ctx, tA, make([]byte, 10)); err != nil {
					return err
				}
				if err := client.Send(ctx, tA, make([]byte, 20)); err != nil {
					return err
				}
				if _, err := client.RecvUint64s(ctx, tB, 5); err != nil {
					return err
				}
				if err := client.Send(ctx, tA, nil); err != nil {
					return err
				}
				raw := client.Raw(ctx)
				if _, err := io.ReadFull(raw, make([]byte, 7)); err != nil {
					return err
				}
				_, err := raw.Write(make([]byte, 7))
				return err
			}, func() error {
				for _, n := range []int{10, 20} {
					if p, err := server.Recv(ctx, tA); err != nil || len(p) != n {
						return fmt.Errorf("recv %d: %v", n, err)
					}
				}
				if err := server.SendUint64s(ctx, tB, make([]uint64, 5)); err != nil {
					return err
				}
				if _, err := server.Recv(ctx, tA); err != nil {
					return err
				}
				raw := server.Raw(ctx)
				if _, err := raw.Write(make([]byte, 7)); err != nil {
					return err
				}
				_, err := io.ReadFull(raw, make([]byte, 7))
				return err
			})
			if cerr != nil || serr != nil {
				t.Fatalf("client: %v, server: %v", cerr, serr)
			}
			clientSent := int64(3*HeaderLen + 10 + 20 + 0 + 7)
			serverSent := int64(HeaderLen + 40 + 7)
			wantC = Stats{BytesSent: clientSent, BytesReceived: serverSent, MessagesSent: 3, MessagesReceived: 1, Rounds: 3}
			wantS = Stats{BytesSent: serverSent, BytesReceived: clientSent, MessagesSent: 1, MessagesReceived: 3, Rounds: 2}
			if got := client.Stats().Sub(c0); got != wantC {
				t.Errorf("client step: %v, want %v", got, wantC)
			}
			if got := server.Stats().Sub(s0); got != wantS {
				t.Errorf("server step: %v, want %v", got, wantS)
			}
			if got := c0.Add(wantC); got != client.Stats() {
				t.Errorf("Add: %v, want %v", got, client.Stats())
			}
		})
	}
}

func TestUnexpectedType(t *testing.T) {
	RegisterType(0xef01, "wiretest.Vector")
	defer func() {
		typeNames.Lock()
		delete(typeNames.m, 0xef01)
		typeNames.Unlock()
	}()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			cerr, serr := both(func() error {
				if err := client.Send(ctx, 0xef01, []byte("payload")); err != nil {
					return err
				}
				_, err := client.Recv(ctx, tA)
				return err
			}, func() error {
				_, err := server.Recv(ctx, tA)
				return err
			})
			if !errors.Is(serr, ErrUnexpectedType) || !strings.Contains(serr.Error(), "got wiretest.Vector(0xef01), want 0xf001") {
				t.Errorf("server: %v, want ErrUnexpectedType naming both types", serr)
			}
			var ae *AbortError
			if !errors.As(cerr, &ae) || !errors.Is(cerr, ErrPeerAborted) || !errors.Is(cerr, ErrUnexpectedType) || ae.Code != AbortUnexpectedType {
				t.Errorf("client: %v, want an AbortError for the unexpected type", cerr)
			}
			if cerr != nil && !strings.Contains(cerr.Error(), "peer aborted: unexpected message type: got wiretest.Vector(0xef01)") {
				t.Errorf("client: %v lacks the peer's reason", cerr)
			}
			// Both Conns are dead now and say why.
			if err := server.Send(ctx, tA, nil); !errors.Is(err, ErrUnexpectedType) {
				t.Errorf("server Send after failure: %v", err)
			}
		})
	}
}

func TestReservedTypes(t *testing.T) {
	client, _ := handshakePair(t, transports[1])
	ctx := testCtx(t)
	for _, typ := range []Type{0, TypeHello, TypeAbort, TypeTunnelData, FirstProtocolType - 1} {
		if err := client.Send(ctx, typ, nil); !errors.Is(err, ErrReservedType) {
			t.Errorf("Send(%v): %v, want ErrReservedType", typ, err)
		}
		if _, err := client.Recv(ctx, typ); !errors.Is(err, ErrReservedType) {
			t.Errorf("Recv(%v): %v, want ErrReservedType", typ, err)
		}
	}
	// The Conn is still usable: nothing was sent or read.
	if f := client.failure(); f != nil {
		t.Fatal(f)
	}
}

func TestAbort(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			cerr, serr := both(func() error {
				return client.Abort(ctx, "cannot continue: share vector length 5, want 6\x1b[31m")
			}, func() error {
				_, err := server.Recv(ctx, tA)
				return err
			})
			if cerr != nil {
				t.Fatalf("Abort: %v", cerr)
			}
			var ae *AbortError
			if !errors.As(serr, &ae) || !errors.Is(serr, ErrPeerAborted) || ae.Code != AbortProtocol {
				t.Fatalf("server: %v, want an AbortError", serr)
			}
			if want := "cannot continue: share vector length 5, want 6\ufffd[31m"; ae.Reason != want {
				t.Errorf("reason %q, want %q (control characters replaced)", ae.Reason, want)
			}
			if err := client.Send(ctx, tA, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after Abort: %v, want ErrClosed", err)
			}
			if _, err := server.Recv(ctx, tA); !errors.Is(err, ErrPeerAborted) {
				t.Errorf("second Recv after abort: %v, want the abort again", err)
			}
		})
	}
}

func TestAbortBeforeHandshake(t *testing.T) {
	client, server := pair(t, transports[1], testConfig(RoleClient), testConfig(RoleServer))
	ctx := testCtx(t)
	cerr, serr := both(func() error { return client.Abort(ctx, "user cancelled") }, func() error { return server.Handshake(ctx) })
	if cerr != nil {
		t.Fatal(cerr)
	}
	if !errors.Is(serr, ErrPeerAborted) || !strings.Contains(serr.Error(), "user cancelled") {
		t.Fatalf("server handshake: %v, want the abort", serr)
	}
}

func TestClose(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			client, server := handshakePair(t, tr)
			ctx := testCtx(t)
			errc := make(chan error, 1)
			go func() {
				_, err := client.Recv(ctx, tA)
				errc <- err
			}()
			time.Sleep(20 * time.Millisecond)
			if err := client.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Errorf("blocked Recv: %v, want ErrClosed", err)
			}
			if err := client.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := client.Send(ctx, tA, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after Close: %v", err)
			}
			// The peer sees the connection end between frames.
			if _, err := server.Recv(ctx, tA); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) && !isReset(err) {
				t.Errorf("peer Recv: %v, want EOF", err)
			}
		})
	}
}

// isReset reports whether err is a connection reset, which a TCP peer may
// see instead of EOF when the other end closes with unread data.
func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func TestConfigValidate(t *testing.T) {
	pipeA, pipeB := transports[0].pair(t)
	defer pipeA.Close()
	defer pipeB.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero", Config{}, "invalid Config.Role"},
		{"role3", Config{Role: 3}, "invalid Config.Role Role(3)"},
		{"negative MaxFrame", Config{Role: RoleClient, MaxFrame: -1}, "invalid Config.MaxFrame -1"},
		{"long params", Config{Role: RoleClient, Params: make([]byte, MaxParamsLen+1)}, "exceeds MaxParamsLen"},
		{"negative IdleTimeout", Config{Role: RoleClient, IdleTimeout: -time.Second}, "invalid Config.IdleTimeout -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewConn(pipeA, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewConn: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewConn(nil, testConfig(RoleClient)); err == nil {
		t.Error("NewConn(nil): no error")
	}
	c, err := NewConn(pipeA, Config{Role: RoleServer})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.MaxFrame != DefaultMaxFrame || c.Role() != RoleServer || c.NetConn() != pipeA || c.PeerMaxFrame() != 0 {
		t.Errorf("defaults: %+v", c.cfg)
	}
}

func TestRegisterType(t *testing.T) {
	defer func() {
		typeNames.Lock()
		delete(typeNames.m, 0x0e01)
		typeNames.Unlock()
	}()
	RegisterType(0x0e01, "wiretest.Masked")
	if got := Type(0x0e01).String(); got != "wiretest.Masked(0x0e01)" {
		t.Errorf("String: %q", got)
	}
	if got := Type(0x0e02).String(); got != "0x0e02" {
		t.Errorf("String: %q", got)
	}
	if got := TypeAbort.String(); got != "abort(0x0002)" {
		t.Errorf("String: %q", got)
	}
	for _, tc := range []struct {
		t    Type
		name string
	}{
		{0x0e01, "again"}, {TypeHello, "hello2"}, {0x00ff, "x"}, {FirstPrivateType, "x"}, {0x0e03, ""},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterType(%#x, %q) did not panic", uint16(tc.t), tc.name)
				}
			}()
			RegisterType(tc.t, tc.name)
		}()
	}
}

func TestRoleAndCodeStrings(t *testing.T) {
	if RoleClient.String() != "client" || RoleServer.String() != "server" || Role(9).String() != "Role(9)" {
		t.Error("Role.String")
	}
	for code := AbortProtocol; code <= AbortIdle; code++ {
		if strings.HasPrefix(code.String(), "AbortCode(") {
			t.Errorf("code %d has no name", code)
		}
	}
	if AbortCode(99).String() != "AbortCode(99)" {
		t.Error("unknown AbortCode.String")
	}
	e := &AbortError{Code: 99}
	if !errors.Is(e, ErrPeerAborted) || e.Error() != "wire: peer aborted (AbortCode(99))" {
		t.Errorf("AbortError without reason: %v", e)
	}
}

func TestStatsString(t *testing.T) {
	s := Stats{BytesSent: 1, BytesReceived: 2, MessagesSent: 3, MessagesReceived: 4, Rounds: 5}
	if got, want := s.String(), "sent 1 B in 3 msgs, received 2 B in 4 msgs, 5 rounds"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestContextDoneBeforeStart(t *testing.T) {
	client, _ := handshakePair(t, transports[0])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client.Send(ctx, tA, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Send: %v", err)
	}
	if _, err := client.Recv(ctx, tA); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv: %v", err)
	}
	if f := client.failure(); f != nil {
		t.Errorf("Conn failed: %v", f)
	}
}
