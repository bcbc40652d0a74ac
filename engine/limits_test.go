package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// hangAfter bounds the waits of the tests below that would hang if a limit
// were missing. It is a hang detector, not a measurement: each limit under
// test is far shorter.
const hangAfter = time.Minute

// readHello reads the server's hello frame from nc: the server accepted the
// connection and started the handshake.
func readHello(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(hangAfter))
	defer nc.SetReadDeadline(time.Time{})
	var hdr [wire.HeaderLen]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatalf("no hello from the server: %v", err)
	}
	if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint64(hdr[4:]))); err != nil {
		t.Fatalf("no hello from the server: %v", err)
	}
}

// waitClosed reads nc until the server closes it, and fails if that takes
// hangAfter.
func waitClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(hangAfter))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", hangAfter)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	// A client that connects and says nothing, or starts its hello and
	// stalls, is disconnected after HandshakeTimeout, not at the end of
	// the session timeout.
	m := loadShipped(t)
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		{"partial hello", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 'C', 'P'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, logs := startServer(t, m, ServerConfig{HandshakeTimeout: 100 * time.Millisecond, SessionTimeout: time.Hour, IdleTimeout: time.Hour})
			nc := dial(t, addr)
			defer nc.Close()
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			readHello(t, nc)
			waitClosed(t, nc)
			waitLog(t, logs, "no handshake within 100ms")
		})
	}
}

// countingListener records how many accepted connections are open each
// time Accept returns one.
type countingListener struct {
	net.Listener
	mu      sync.Mutex
	open    int
	maxOpen int
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open++
	l.maxOpen = max(l.maxOpen, l.open)
	return &countedConn{Conn: nc, l: l}, nil
}

func (l *countingListener) peak() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxOpen
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func TestMaxConns(t *testing.T) {
	// With MaxConns 2, two silent clients hold both slots: Serve says it is
	// at the limit and accepts the third only once one of them has left.
	m := loadShipped(t)
	var mu sync.Mutex
	var lines []string
	logs := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	srv, err := NewServer(m, ServerConfig{
		Preset: elementwise.InsecureElementwise11, AllowInsecure: true, MaxConns: 2, HandshakeTimeout: hangAfter,
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, cl) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := ln.Addr().String()
	first, second := dial(t, addr), dial(t, addr)
	defer second.Close()
	readHello(t, first)
	readHello(t, second)
	third := dial(t, addr) // connected, in the listener's backlog
	defer third.Close()
	waitLog(t, logs, "2 connections open (the MaxConns limit)")
	first.Close()
	readHello(t, third)
	if got := cl.peak(); got > 2 {
		t.Errorf("%d connections were open at once, MaxConns is 2", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	// A client that stops sending is disconnected after IdleTimeout and
	// told why, whether it went silent between messages or in the middle
	// of one that announced 256 MiB.
	m := loadShipped(t)
	request := sessionRequest{length: 16, prune: true, labelOnly: true}.marshal()
	for _, tc := range []struct {
		name  string
		stall func(ctx context.Context, c *wire.Conn) error
	}{
		{"after the handshake", func(context.Context, *wire.Conn) error { return nil }},
		{"huge announced request", func(ctx context.Context, c *wire.Conn) error {
			var hdr [wire.HeaderLen]byte
			binary.BigEndian.PutUint16(hdr[0:], uint16(MsgSession))
			binary.BigEndian.PutUint64(hdr[4:], wire.DefaultMaxFrame)
			_, err := c.Raw(ctx).Write(append(hdr[:], request...))
			return err
		}},
		{"waiting for keys", func(ctx context.Context, c *wire.Conn) error {
			if err := c.Send(ctx, MsgSession, request); err != nil {
				return err
			}
			_, err := c.Recv(ctx, MsgAccept)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, logs := startServer(t, m, ServerConfig{IdleTimeout: 100 * time.Millisecond, SessionTimeout: time.Hour})
			conn := rawClient(t, m, addr)
			ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
			defer cancel()
			if err := tc.stall(ctx, conn); err != nil {
				t.Fatal(err)
			}
			_, err := conn.Recv(ctx, MsgReport)
			if !errors.Is(err, wire.ErrPeerAborted) || !errors.Is(err, wire.ErrIdle) {
				t.Errorf("client: %v, want the server's idle Abort", err)
			}
			waitLog(t, logs, "peer idle: no progress for 100ms")
		})
	}
}

func TestSessionTimeout(t *testing.T) {
	// A session that outlives SessionTimeout ends there, even with a client
	// that is never idle for long.
	m := loadShipped(t)
	addr, logs := startServer(t, m, ServerConfig{SessionTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})
	conn := rawClient(t, m, addr)
	ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
	defer cancel()
	if err := conn.Send(ctx, MsgSession, sessionRequest{length: 16, prune: true, labelOnly: true}.marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgAccept); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgReport); !errors.Is(err, wire.ErrPeerAborted) || !strings.Contains(err.Error(), "session timeout") {
		t.Errorf("client: %v, want the server's Abort", err)
	}
	waitLog(t, logs, "session timeout (300ms per inference)")
}

func TestServerLimitsConfig(t *testing.T) {
	m := loadShipped(t)
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		want string // in NewServer's error; empty: no error
		// conns is the MaxConns in force.
		conns int
	}{
		{"defaults", ServerConfig{}, "", DefaultMaxConns},
		{"many sessions", ServerConfig{MaxSessions: 200}, "", 200},
		{"explicit", ServerConfig{MaxConns: 3}, "", 3},
		{"fewer conns than sessions", ServerConfig{MaxSessions: 4, MaxConns: 3}, "MaxConns 3 is less than MaxSessions 4", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Preset, tc.cfg.AllowInsecure = elementwise.InsecureElementwise11, true
			s, err := NewServer(m, tc.cfg)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("NewServer: %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cap(s.conns) != tc.conns || s.cfg.SessionTimeout != DefaultSessionTimeout || s.cfg.HandshakeTimeout != DefaultHandshakeTimeout ||
				s.cfg.IdleTimeout != DefaultIdleTimeout || s.wireCfg.IdleTimeout != DefaultIdleTimeout {
				t.Errorf("limits %d conns, session %v, handshake %v, idle %v (wire %v)", cap(s.conns), s.cfg.SessionTimeout, s.cfg.HandshakeTimeout, s.cfg.IdleTimeout, s.wireCfg.IdleTimeout)
			}
		})
	}
}
