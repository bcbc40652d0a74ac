package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHandshakeMismatch(t *testing.T) {
	client, server := testConfig(RoleClient), testConfig(RoleServer)
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	for _, tc := range []struct {
		name   string
		a, b   Config
		target error
		// wantA and wantB are in the errors of the two ends.
		wantA, wantB string
	}{
		{"protocol version", with(client, func(c *Config) { c.Version = 8 }), server, ErrVersion,
			"version mismatch: protocol: client 8, server 7", "version mismatch: protocol: server 7, client 8"},
		{"both clients", client, client, ErrRole, "both ends are clients", "both ends are clients"},
		{"both servers", server, server, ErrRole, "both ends are servers", "both ends are servers"},
		{"params", client, with(server, func(c *Config) { c.Params = []byte("preset=N14") }), ErrParams,
			`session parameters differ: client "preset=InsecureTest;shape=2x64x128", server "preset=N14"`,
			`session parameters differ: server "preset=N14", client "preset=InsecureTest;shape=2x64x128"`},
		{"long params", client, with(server, func(c *Config) { c.Params = make([]byte, 100) }), ErrParams,
			`... (100 bytes)`, `... (100 bytes)`},
		{"empty params", with(client, func(c *Config) { c.Params = nil }), server, ErrParams, `client "", server`, `client ""`},
	} {
		for _, tr := range transports {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				a, b := pair(t, tr, tc.a, tc.b)
				ctx := testCtx(t)
				aerr, berr := both(func() error { return a.Handshake(ctx) }, func() error { return b.Handshake(ctx) })
				for _, e := range []struct {
					err  error
					want string
				}{{aerr, tc.wantA}, {berr, tc.wantB}} {
					if !errors.Is(e.err, tc.target) {
						t.Errorf("error %v, want %v", e.err, tc.target)
					} else if !strings.Contains(e.err.Error(), e.want) {
						t.Errorf("error %q lacks %q", e.err, e.want)
					}
				}
				// Both ends learnt the mismatch; neither waited for ctx.
				if errors.Is(aerr, context.DeadlineExceeded) || errors.Is(berr, context.DeadlineExceeded) {
					t.Errorf("handshake hung: %v, %v", aerr, berr)
				}
				// The failure is final and the connections are closed.
				if err := a.Send(ctx, tA, nil); !errors.Is(err, tc.target) {
					t.Errorf("Send after failed handshake: %v", err)
				}
			})
		}
	}
}

// helloPayload builds a hello payload field by field.
func helloPayload(magicStr string, wireVersion uint16, role Role, reserved byte, version uint32, maxFrame uint64, params string) []byte {
	p := make([]byte, helloFixedLen, helloFixedLen+len(params))
	copy(p, magicStr)
	binary.BigEndian.PutUint16(p[8:], wireVersion)
	p[10] = byte(role)
	p[11] = reserved
	binary.BigEndian.PutUint32(p[12:], version)
	binary.BigEndian.PutUint64(p[16:], maxFrame)
	return append(p, params...)
}

func TestHandshakeBadPeer(t *testing.T) {
	cfg := testConfig(RoleServer)
	params := string(cfg.Params)
	for _, tc := range []struct {
		name     string
		peer     []byte // what the peer sends first
		target   error
		want     string    // in the Conn's error
		wantCode AbortCode // in the Abort the peer receives, 0 if none is expected
	}{
		{"bad magic", frame(TypeHello, helloPayload("CPRUNE\n\n", 1, RoleClient, 0, 7, 1<<20, params)), ErrMagic,
			`hello starts with "CPRUNE\n\n", want "CPRUNE\r\n"`, AbortMagic},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrMagic, `the peer's first bytes are "GET / HTTP/1", not a hello`, AbortMagic},
		{"protocol message first", frame(tA, []byte("hi")), ErrMagic, "not a hello", AbortMagic},
		{"wire version 2", frame(TypeHello, helloPayload(magic, 2, RoleClient, 0, 7, 1<<20, params)), ErrVersion,
			"version mismatch: wire format: server 1, client 2", AbortVersion},
		{"wire version 2, short", frame(TypeHello, []byte("CPRUNE\r\n\x00\x02\x01\x00")), ErrVersion,
			"wire format: server 1, client 2", AbortVersion},
		{"invalid role", frame(TypeHello, helloPayload(magic, 1, 0, 0, 7, 1<<20, params)), ErrRole, "peer claims invalid role 0", AbortRole},
		{"reserved byte", frame(TypeHello, helloPayload(magic, 1, RoleClient, 1, 7, 1<<20, params)), ErrMalformed, "reserved byte", AbortMalformed},
		{"max frame 0", frame(TypeHello, helloPayload(magic, 1, RoleClient, 0, 7, 0, params)), ErrMalformed, "MaxFrame 0", AbortMalformed},
		{"short hello", frame(TypeHello, []byte("CPRUNE\r\n\x00\x01")), ErrMalformed, "hello of 10 bytes", AbortMalformed},
		{"huge hello", frame(TypeHello, make([]byte, maxHelloLen+1))[:HeaderLen], ErrFrameTooLarge, "hello(0x0001) of 65561 bytes, limit 65560", AbortFrameTooLarge},
		{"abort first", frame(TypeAbort, encodeAbort(AbortParams, "no such preset")), ErrParams, "peer aborted: no such preset", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := newRawPeer(t, cfg)
			errc := make(chan error, 1)
			go func() { errc <- c.Handshake(testCtx(t)) }()
			p.write(tc.peer)
			if tc.wantCode != 0 {
				p.readFrame(TypeHello)
				if ae := p.readAbort(); ae.Code != tc.wantCode {
					t.Errorf("peer got abort %v %q, want code %v", ae.Code, ae.Reason, tc.wantCode)
				}
			}
			err := <-errc
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Handshake: %v, want %v containing %q", err, tc.target, tc.want)
			}
		})
	}
}

func TestHandshakeAbortReason(t *testing.T) {
	// The reason a peer receives reads right from its side: the labels are
	// roles, the same in both messages.
	c, p := newRawPeer(t, testConfig(RoleServer))
	errc := make(chan error, 1)
	go func() { errc <- c.Handshake(testCtx(t)) }()
	pc := testConfig(RoleClient)
	pc.Params = []byte("other")
	p.write(helloFrame(pc))
	p.readFrame(TypeHello)
	ae := p.readAbort()
	if want := `session parameters differ: server "preset=InsecureTest;shape=2x64x128", client "other"`; ae.Reason != want || ae.Code != AbortParams {
		t.Errorf("abort %v %q, want %q", ae.Code, ae.Reason, want)
	}
	if err := <-errc; !errors.Is(err, ErrParams) {
		t.Errorf("Handshake: %v", err)
	}
	if !errors.Is(ae, ErrParams) || !errors.Is(ae, ErrPeerAborted) {
		t.Errorf("AbortError %v does not match its sentinels", ae)
	}
	if got := ae.Error(); !strings.HasPrefix(got, "wire: peer aborted: session parameters differ") {
		t.Errorf("AbortError text %q", got)
	}
}

func TestHandshakeSameRoleLabels(t *testing.T) {
	// With equal roles, a version mismatch names the ends local and peer,
	// and the reason sent swaps them so it reads right on the other side.
	local := hello{wireVersion: 1, role: RoleClient}
	peer := hello{wireVersion: 2, role: RoleClient}
	m := checkHello(&local, &peer)
	if m == nil || !strings.Contains(m.err.Error(), "local 1, peer 2") || !strings.Contains(m.reason, "peer 1, local 2") {
		t.Fatalf("mismatch %+v", m)
	}
}

func TestHandshakeTruncated(t *testing.T) {
	hf := helloFrame(testConfig(RoleClient))
	for cut := 0; cut < len(hf); cut++ {
		c, p := newRawPeer(t, testConfig(RoleServer))
		errc := make(chan error, 1)
		go func() { errc <- c.Handshake(testCtx(t)) }()
		go func() {
			_, _ = p.nc.Write(hf[:cut])
			p.nc.Close()
		}()
		err := <-errc
		want := io.ErrUnexpectedEOF
		if cut == 0 {
			want = io.EOF
		}
		if !errors.Is(err, want) {
			t.Fatalf("cut at %d: %v, want %v", cut, err, want)
		}
		if cut > 0 && !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut at %d: %q does not say truncated", cut, err)
		}
	}
}

func TestHandshakeConcurrentCallers(t *testing.T) {
	// Send and Recv started together both wait for one handshake.
	client, server := pair(t, transports[0], testConfig(RoleClient), testConfig(RoleServer))
	ctx := testCtx(t)
	errc := make(chan error, 3)
	go func() { errc <- client.Send(ctx, tA, []byte("1")) }()
	go func() { _, err := client.Recv(ctx, tB); errc <- err }()
	go func() {
		if _, err := server.Recv(ctx, tA); err != nil {
			errc <- err
			return
		}
		errc <- server.Send(ctx, tB, []byte("2"))
	}()
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if client.PeerMaxFrame() != DefaultMaxFrame {
		t.Errorf("PeerMaxFrame %d", client.PeerMaxFrame())
	}
}
