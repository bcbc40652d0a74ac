package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// shippedModel is the model the serve tests load.
var shippedModel = filepath.Join("..", "..", "models", "trained", "sentiment-tiny")

func TestParseServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error; empty: none
		cfg  engine.ServerConfig
	}{
		{"defaults", nil, "", engine.ServerConfig{MaxSessions: 1, SessionTimeout: engine.DefaultSessionTimeout,
			HandshakeTimeout: engine.DefaultHandshakeTimeout, IdleTimeout: engine.DefaultIdleTimeout}},
		{"all set", []string{"--max-sessions", "4", "--max-conns", "10", "--session-timeout", "8h", "--handshake-timeout", "3s", "--idle-timeout", "1m"}, "",
			engine.ServerConfig{MaxSessions: 4, MaxConns: 10, SessionTimeout: 8 * time.Hour, HandshakeTimeout: 3 * time.Second, IdleTimeout: time.Minute}},
		{"zero session timeout", []string{"--session-timeout", "0s"}, "invalid --session-timeout 0s", engine.ServerConfig{}},
		{"negative handshake timeout", []string{"--handshake-timeout", "-1s"}, "invalid --handshake-timeout -1s", engine.ServerConfig{}},
		{"zero idle timeout", []string{"--idle-timeout", "0"}, "invalid --idle-timeout 0s", engine.ServerConfig{}},
		{"negative max conns", []string{"--max-conns", "-1"}, "invalid --max-conns -1", engine.ServerConfig{}},
		{"fewer conns than sessions", []string{"--max-sessions", "8", "--max-conns", "4"}, "invalid --max-conns 4: want 0 (default) or at least --max-sessions (8)", engine.ServerConfig{}},
		{"no sessions", []string{"--max-sessions", "0"}, "invalid --max-sessions 0", engine.ServerConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseServe(tc.args, io.Discard)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("parseServe: %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg := o.serverConfig(io.Discard)
			if cfg.MaxSessions != tc.cfg.MaxSessions || cfg.MaxConns != tc.cfg.MaxConns || cfg.SessionTimeout != tc.cfg.SessionTimeout ||
				cfg.HandshakeTimeout != tc.cfg.HandshakeTimeout || cfg.IdleTimeout != tc.cfg.IdleTimeout {
				t.Errorf("config: sessions %d, conns %d, session %v, handshake %v, idle %v; want %d, %d, %v, %v, %v",
					cfg.MaxSessions, cfg.MaxConns, cfg.SessionTimeout, cfg.HandshakeTimeout, cfg.IdleTimeout,
					tc.cfg.MaxSessions, tc.cfg.MaxConns, tc.cfg.SessionTimeout, tc.cfg.HandshakeTimeout, tc.cfg.IdleTimeout)
			}
		})
	}
}

// syncBuffer is a bytes buffer that a server goroutine writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serveInProcess runs the serve command with args on a loopback port in a
// goroutine until the test ends, and returns its address and its log.
func serveInProcess(t *testing.T, args ...string) (addr string, log *syncBuffer) {
	t.Helper()
	log = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--model", shippedModel, "--preset", ckks.InsecureTest11, "--allow-insecure"}, args...)
	go func() { served <- run(ctx, args, log, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, rest, ok := strings.Cut(log.String(), "listening on "); ok {
			addr, _, _ = strings.Cut(rest, " ")
			return addr, log
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("serve did not start: %s", log.String())
	return "", nil
}

// clientHello returns the hello frame an engine client of the shipped
// model sends on InsecureTest11, recorded over a pipe, so that a test can
// play a client that completes the handshake and then misbehaves.
func clientHello(t testing.TB) []byte {
	t.Helper()
	pub, err := engine.LoadPublic(shippedModel)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := engine.NewClient(pub, engine.ClientConfig{Preset: ckks.InsecureTest11, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = cli.Infer(context.Background(), a, "x") // fails once the pipe closes
	}()
	defer func() { b.Close(); <-done }()
	var hdr [wire.HeaderLen]byte
	if _, err := io.ReadFull(b, hdr[:]); err != nil {
		t.Fatal(err)
	}
	f := make([]byte, wire.HeaderLen+binary.BigEndian.Uint64(hdr[4:]))
	copy(f, hdr[:])
	if _, err := io.ReadFull(b, f[wire.HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return f
}

// readFrame reads one frame from nc and returns its header and payload.
func readFrame(nc net.Conn) (typ uint16, payload []byte, err error) {
	var hdr [wire.HeaderLen]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint64(hdr[4:])
	if n > 1<<20 {
		return 0, nil, errors.New("frame over 1 MiB")
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(nc, payload)
	return binary.BigEndian.Uint16(hdr[:]), payload, err
}

func TestServeTimeoutFlags(t *testing.T) {
	// The timeout flags reach the server: a silent client is dropped after
	// --handshake-timeout, one that completes the handshake and then stalls
	// after --idle-timeout with an Abort that says so. (The limits
	// themselves are engine's, tested there.)
	if testing.Short() {
		t.Skip("starts a server")
	}
	hello := clientHello(t)
	addr, log := serveInProcess(t, "--handshake-timeout", "100ms", "--idle-timeout", "200ms", "--max-sessions", "2")
	for _, tc := range []struct {
		name      string
		handshake bool
		want      string // in the server's log
	}{
		{"silent", false, "no handshake within 100ms"},
		{"idle after the handshake", true, "peer idle: no progress for 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(time.Minute)) // a hang detector
			if tc.handshake {
				if _, err := nc.Write(hello); err != nil {
					t.Fatal(err)
				}
			}
			if typ, _, err := readFrame(nc); err != nil || typ != uint16(wire.TypeHello) {
				t.Fatalf("server hello: type %#x, %v", typ, err)
			}
			if tc.handshake {
				typ, p, err := readFrame(nc)
				if err != nil || typ != uint16(wire.TypeAbort) || !strings.Contains(string(p), "peer idle") {
					t.Errorf("after stalling: type %#x %q, %v; want an idle Abort", typ, p, err)
				}
			}
			var ne net.Error
			if _, err := io.Copy(io.Discard, nc); errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the connection open")
			}
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(log.String(), tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q in the server's log:\n%s", tc.want, log.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
