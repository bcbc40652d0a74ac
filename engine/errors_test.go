package engine

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// rawClient opens a wire connection to addr as a client of m's public
// model on InsecureElementwise11, for tests that speak the protocol by hand.
func rawClient(t *testing.T, m *Model, addr string) *wire.Conn {
	t.Helper()
	fp, err := Fingerprint(m.Client)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := wire.NewConn(dial(t, addr), wire.Config{Role: wire.RoleClient, Version: ProtocolVersion, Params: sessionParams(elementwise.InsecureElementwise11, fp)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Handshake(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitLog waits until a server log line contains substr.
func waitLog(t *testing.T, logs func() []string, substr string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, l := range logs() {
			if strings.Contains(l, substr) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no server log line contains %q: %q", substr, logs())
}

// TestHandshakeMismatch: a client of another model or preset is refused in
// the handshake, with the reason on the client side.
func TestHandshakeMismatch(t *testing.T) {
	m := loadShipped(t)
	addr, _ := startServer(t, m, ServerConfig{})
	other := *m.Client
	other.Embeddings.LayerNorm.Beta = append([]float64(nil), other.Embeddings.LayerNorm.Beta...)
	other.Embeddings.LayerNorm.Beta[0] += 1e-3
	for name, c := range map[string]*Client{
		"model":  testClient(t, &Model{Model: &models.Model{Client: &other}}, ClientConfig{}),
		"preset": testClient(t, m, ClientConfig{Preset: ckks.InsecureTest11, AllowInsecure: true}),
	} {
		_, err := c.Infer(testCtx(t), dial(t, addr), "good")
		if !errors.Is(err, wire.ErrParams) {
			t.Errorf("%s: got %v, want a parameter mismatch", name, err)
		}
	}
}

// TestBusyAndRecovery: with one session slot taken, a second client is told
// the server is busy; once the first leaves mid-session, the server serves
// the next client to the end.
func TestBusyAndRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole private inference")
	}
	m := loadShipped(t)
	addr, logs := startServer(t, m, ServerConfig{MaxSessions: 1})
	hold := rawClient(t, m, addr)
	if err := hold.Send(testCtx(t), MsgSession, sessionRequest{length: 16, prune: true, labelOnly: true}.marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(testCtx(t), MsgAccept); err != nil {
		t.Fatal(err)
	}
	c := testClient(t, m, ClientConfig{})
	_, err := c.Infer(testCtx(t), dial(t, addr), "good")
	if err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("second client: got %v, want a busy server", err)
	}
	hold.Close() // the first client disconnects while the server waits for keys
	waitLog(t, logs, "public key")
	res, err := c.Infer(testCtx(t), dial(t, addr), "good")
	if err != nil {
		t.Fatalf("after the first client left: %v\nserver: %q", err, logs())
	}
	if res.LabelName == "" {
		t.Error("no label")
	}
}

// TestClientDisconnects: a client that disconnects in the middle of the
// first layer gets an error, the server logs one for that session, and the
// server then serves another client.
func TestClientDisconnects(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole private inference")
	}
	m := loadShipped(t)
	addr, logs := startServer(t, m, ServerConfig{})
	nc := dial(t, addr)
	var once sync.Once
	c := testClient(t, m, ClientConfig{Progress: func(p Progress) {
		if p.Phase == PhaseLayer {
			once.Do(func() { nc.Close() })
		}
	}})
	if _, err := c.Infer(testCtx(t), nc, "a fine film"); err == nil {
		t.Fatal("Infer succeeded on a closed connection")
	}
	waitLog(t, logs, "session 127.0.0.1")
	if _, err := testClient(t, m, ClientConfig{}).Infer(testCtx(t), dial(t, addr), "a fine film"); err != nil {
		t.Fatalf("next client: %v", err)
	}
}

// cutListener wraps accepted connections so that each is closed by the
// server side after it has read limit bytes: a server process dying
// mid-session.
type cutListener struct {
	net.Listener
	limit int64
}

func (l cutListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: nc, left: l.limit}, nil
}

type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
}

func (c *cutConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left <= 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// TestServerDies: a server that goes away in the middle of receiving the
// keys, or in the middle of the encoder, leaves the client with an error
// (not a hang) that names the step.
func TestServerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("partial private inferences")
	}
	m := loadShipped(t)
	for name, limit := range map[string]int64{
		"during keys":    100_000,    // the keys are 0.6 MB at InsecureElementwise11 (Report.KeyBytes)
		"during encoder": 10_000_000, // the whole session sends 29 MB
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := NewServer(m, ServerConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, cutListener{Listener: ln, limit: limit}) }()
			defer func() { cancel(); <-done }()
			_, err = testClient(t, m, ClientConfig{}).Infer(testCtx(t), dial(t, ln.Addr().String()), "a fine film")
			if err == nil {
				t.Fatal("Infer succeeded against a dying server")
			}
			t.Logf("client error: %v", err)
		})
	}
}

// TestBadInput: a text over the model's length is refused before any
// connection is used, unless truncation is asked for.
func TestBadInput(t *testing.T) {
	m := loadShipped(t)
	long := strings.Repeat("good ", 200)
	c := testClient(t, m, ClientConfig{})
	if _, err := c.Encode(long); !errors.Is(err, ErrTooLong) {
		t.Errorf("long text: got %v, want ErrTooLong", err)
	}
	c = testClient(t, m, ClientConfig{Truncate: true})
	e, err := c.Encode(long)
	if err != nil || e.Len() != m.Config().MaxPositions() {
		t.Errorf("truncated: length %d, error %v", e.Len(), err)
	}
	if _, err := NewClient(m.Client, ClientConfig{Preset: elementwise.InsecureElementwise11}); err == nil {
		t.Error("an insecure preset was accepted without AllowInsecure")
	}
	if _, err := NewClient(m.Client, ClientConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true, Length: 10000}); err == nil {
		t.Error("a padded length over the model's was accepted")
	}
}

// TestMalformedSession: garbage where the server expects the session
// request or the public key gets an abort with a reason on the client side
// and an error in the server's log, never a panic.
func TestMalformedSession(t *testing.T) {
	m := loadShipped(t)
	// Room for every connection below: a refused session's slot is freed
	// only once the server's goroutine has logged it, which may be after
	// the next connection arrives.
	addr, logs := startServer(t, m, ServerConfig{MaxSessions: 4})
	ctx := testCtx(t)

	conn := rawClient(t, m, addr)
	if err := conn.Send(ctx, MsgSession, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgAccept); !errors.Is(err, wire.ErrPeerAborted) {
		t.Errorf("garbage request: got %v, want an abort", err)
	}

	conn = rawClient(t, m, addr)
	if err := conn.Send(ctx, MsgSession, sessionRequest{length: 9999}.marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgAccept); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("long request: got %v", err)
	}

	conn = rawClient(t, m, addr)
	if err := conn.Send(ctx, MsgSession, sessionRequest{length: 16, labelOnly: true}.marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgAccept); err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(ctx, MsgPublicKey, bytes.Repeat([]byte{0xff}, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(ctx, MsgReport); err == nil {
		t.Error("garbage public key: no error")
	}
	waitLog(t, logs, "public key")
}

// FuzzDecodeSessionRequest: the decoder never panics and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeSessionRequest(f *testing.F) {
	f.Add(sessionRequest{length: 16, prune: true, reduce: true}.marshal())
	f.Add(sessionRequest{length: 512}.marshal())
	f.Add(sessionRequest{length: 64, prune: true, hideLength: 8}.marshal())
	f.Add(sessionRequest{length: 16, labelOnly: true}.marshal())
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeSessionRequest(p)
		if err != nil {
			return
		}
		if q := r.marshal(); !bytes.Equal(p, q) {
			t.Fatalf("decode(%x) = %+v re-encodes to %x", p, r, q)
		}
	})
}

// FuzzDecodeSessionAccept: the decoder never panics and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeSessionAccept(f *testing.F) {
	f.Add(testAccept(sessionRequest{length: 32, prune: true}, []bool{true, false}).marshal())
	f.Add(testAccept(sessionRequest{length: 1}, make([]bool, 9)).marshal())
	all := testAccept(sessionRequest{length: 16}, []bool{true, true, false})
	all.allRowsLast = true
	f.Add(all.marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := decodeSessionAccept(p)
		if err != nil {
			return
		}
		if q := a.marshal(); !bytes.Equal(p, q) {
			t.Fatalf("decode(%x) re-encodes to %x", p, q)
		}
	})
}

// FuzzDecodeServerReport: the decoder never panics, accepts only finite
// non-negative times, and round-trips.
func FuzzDecodeServerReport(f *testing.F) {
	f.Add(serverReport{layers: []serverLayer{{1.5, 0.25}, {2, 0}}, head: 0.5}.marshal())
	f.Add(serverReport{}.marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeServerReport(p)
		if err != nil {
			return
		}
		for _, l := range r.layers {
			if !(l.seconds >= 0 && l.step >= 0) {
				t.Fatalf("accepted times %v", l)
			}
		}
		if q := r.marshal(); !bytes.Equal(p, q) {
			t.Fatalf("decode(%x) re-encodes to %x", p, q)
		}
	})
}

// TestMessagesRoundTrip checks the codecs on a few values and refusals.
func TestMessagesRoundTrip(t *testing.T) {
	for _, r := range []sessionRequest{{length: 128, prune: true}, {length: 64, prune: true, reduce: true, hideLength: 4}, {length: 16, labelOnly: true}} {
		if got, err := decodeSessionRequest(r.marshal()); err != nil || got != r {
			t.Errorf("request round trip: %+v, %v", got, err)
		}
	}
	req := sessionRequest{length: 128, prune: true}
	acc := testAccept(req, []bool{false, true, true})
	got, err := decodeSessionAccept(acc.marshal())
	if err != nil || got.logBoundOut != acc.logBoundOut || len(got.prunes) != 3 || !got.prunes[1] || got.prunes[0] || got.levels[approx.GELU][approx.Low] != 5 ||
		!slices.Equal(got.oneRecipe, acc.oneRecipe) || got.allRowsLast {
		t.Errorf("accept round trip: %+v, %v", got, err)
	}
	acc.allRowsLast = true
	if got, err := decodeSessionAccept(acc.marshal()); err != nil || !got.allRowsLast {
		t.Errorf("accept round trip with every row of the last layer: %+v, %v", got, err)
	}
	acc.allRowsLast = false
	for name, p := range map[string][]byte{
		"zero length":   sessionRequest{}.marshal(),
		"unknown flag":  {1, 16, 0, 0, 0, 0, 0, 1},
		"version":       {2, 0, 0, 0, 0, 0, 0, 1},
		"short request": {1, 0, 0},
	} {
		if _, err := decodeSessionRequest(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	for name, edit := range map[string]func([]byte) []byte{
		"reserved":        func(p []byte) []byte { p[11] = 1; return p },
		"last-layer flag": func(p []byte) []byte { p[10] = 2; return p },
		"no sums bound":   func(p []byte) []byte { p[9] = 0; return p },
		"stray bit":       func(p []byte) []byte { p[len(p)-1] |= 0x80; return p },
		"recipe bits":     func(p []byte) []byte { p[acceptFixed-3] |= 0x80; return p },
		"truncated":       func(p []byte) []byte { return p[:len(p)-1] },
		"layers overrun":  func(p []byte) []byte { p[acceptFixed-1] = 200; return p },
	} {
		if _, err := decodeSessionAccept(edit(acc.marshal())); !errors.Is(err, ErrMalformed) {
			t.Errorf("accept %s: got %v", name, err)
		}
	}
}

// testAccept returns an answer to req with made-up bounds and levels.
func testAccept(req sessionRequest, prunes []bool) sessionAccept {
	lv := layers.PolyLevels{}
	for _, fn := range approx.Funcs() {
		lv[fn] = map[approx.Degree]int{approx.High: 6, approx.Low: 5}
	}
	return sessionAccept{request: req, logBoundOut: 12, sumsLogBound: 6, levels: lv, oneRecipe: []approx.Func{approx.Reciprocal, approx.Tanh}, prunes: prunes}
}

// FuzzDecodeClose: the decoder never panics and accepts the one byte
// closeMessage alone.
func FuzzDecodeClose(f *testing.F) {
	f.Add(closeMessage())
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		if err := decodeClose(p); (err == nil) != bytes.Equal(p, closeMessage()) {
			t.Fatalf("decodeClose(%x) = %v", p, err)
		}
	})
}
