package wire

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Message types for tests, in the private range.
const (
	tA = FirstPrivateType + 1
	tB = FirstPrivateType + 2
)

// testTimeout bounds every blocking call in tests, so a bug shows as a
// failure rather than a hung test binary.
const testTimeout = 10 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testConfig(role Role) Config {
	return Config{Role: role, Version: 7, Params: []byte("preset=InsecureTest;shape=2x64x128")}
}

// transport makes a connected pair of net.Conns: a is the dialer's end.
type transport struct {
	name string
	pair func(t testing.TB) (a, b net.Conn)
}

var transports = []transport{
	{"pipe", func(t testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
	{"tls", tlsPair},
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return a, r.c
}

var (
	certOnce sync.Once
	certPEM  tls.Certificate
	certPool *x509.CertPool
)

// selfSigned returns a self-signed ECDSA certificate for "localhost",
// generated once per test binary.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		certPEM = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	return certPEM, certPool
}

// tlsPair returns the two ends of a TLS 1.3 connection over loopback TCP,
// the client verifying the server's self-signed certificate.
func tlsPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	cert, pool := selfSigned(t)
	a, b := tcpPair(t)
	ca := tls.Client(a, &tls.Config{ServerName: "localhost", RootCAs: pool, MinVersion: tls.VersionTLS13})
	cb := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	return ca, cb
}

// pair returns a client Conn on a and a server Conn on b, closed at the
// end of the test.
func pair(t testing.TB, tr transport, cc, sc Config) (client, server *Conn) {
	t.Helper()
	a, b := tr.pair(t)
	client, err := NewConn(a, cc)
	if err != nil {
		t.Fatal(err)
	}
	server, err = NewConn(b, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// handshakePair returns a client and a server Conn that completed the
// handshake.
func handshakePair(t testing.TB, tr transport) (client, server *Conn) {
	t.Helper()
	client, server = pair(t, tr, testConfig(RoleClient), testConfig(RoleServer))
	cerr, serr := both(func() error { return client.Handshake(testCtx(t)) }, func() error { return server.Handshake(testCtx(t)) })
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	return client, server
}

// both runs f and g concurrently and returns their errors.
func both(f, g func() error) (error, error) {
	ch := make(chan error, 1)
	go func() { ch <- g() }()
	ef := f()
	return ef, <-ch
}

// frame returns the wire encoding of a frame.
func frame(t Type, payload []byte) []byte {
	b := make([]byte, HeaderLen+len(payload))
	header{typ: t, length: uint64(len(payload))}.put(b)
	copy(b[HeaderLen:], payload)
	return b
}

// helloFrame returns the hello frame a Conn with cfg sends.
func helloFrame(cfg Config) []byte {
	cfg, err := cfg.validate()
	if err != nil {
		panic(err)
	}
	h := hello{wireVersion: WireVersion, role: cfg.Role, version: cfg.Version, maxFrame: uint64(cfg.MaxFrame), params: cfg.Params}
	return frame(TypeHello, h.marshal())
}

// rawPeer is a hand-driven peer: the test writes and reads its bytes.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
}

// newRawPeer returns a Conn with cfg and a raw peer on the other end of a
// net.Pipe, which have not exchanged anything yet.
func newRawPeer(t testing.TB, cfg Config) (*Conn, *rawPeer) {
	t.Helper()
	a, b := net.Pipe()
	return newRawPeerOn(t, cfg, a, b)
}

// newRawPeerOn is newRawPeer on the two ends a (the Conn's) and b.
func newRawPeerOn(t testing.TB, cfg Config, a, b net.Conn) (*Conn, *rawPeer) {
	t.Helper()
	c, err := NewConn(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, &rawPeer{t: t, nc: b}
}

// handshakeRawPeer returns a Conn with cfg and a raw peer that completed
// the handshake with it, playing the other role.
func handshakeRawPeer(t testing.TB, cfg Config) (*Conn, *rawPeer) {
	t.Helper()
	c, p := newRawPeer(t, cfg)
	rawHandshake(t, c, p, cfg)
	return c, p
}

// watchedRawPeer is handshakeRawPeer with the Conn's net.Conn watched.
func watchedRawPeer(t testing.TB, cfg Config) (*Conn, *rawPeer, *watchConn) {
	t.Helper()
	a, b := net.Pipe()
	w := &watchConn{Conn: a}
	c, p := newRawPeerOn(t, cfg, w, b)
	rawHandshake(t, c, p, cfg)
	return c, p, w
}

// rawHandshake runs the handshake between c, configured with cfg, and the
// raw peer p, which plays the other role.
func rawHandshake(t testing.TB, c *Conn, p *rawPeer, cfg Config) {
	t.Helper()
	pc := cfg
	pc.Role = RoleClient + RoleServer - cfg.Role
	done := make(chan error, 1)
	go func() { done <- c.Handshake(testCtx(t)) }()
	p.write(helloFrame(pc))
	p.readFrame(TypeHello)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// watchConn is a net.Conn that tells when a Read or a Write starts, so that
// a test can act once a call is under way instead of after a guessed delay.
type watchConn struct {
	net.Conn
	mu               sync.Mutex
	reading, writing chan struct{} // closed by the next Read, Write; nil if not armed
}

// armRead returns a channel that the next Read closes as it starts.
func (w *watchConn) armRead() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reading = make(chan struct{})
	return w.reading
}

// armWrite returns a channel that the next Write closes as it starts.
func (w *watchConn) armWrite() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writing = make(chan struct{})
	return w.writing
}

func (w *watchConn) Read(p []byte) (int, error) {
	w.mu.Lock()
	if w.reading != nil {
		close(w.reading)
		w.reading = nil
	}
	w.mu.Unlock()
	return w.Conn.Read(p)
}

func (w *watchConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.writing != nil {
		close(w.writing)
		w.writing = nil
	}
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// watchedPair is handshakePair with the server's net.Conn watched.
func watchedPair(t testing.TB, tr transport) (client, server *Conn, w *watchConn) {
	t.Helper()
	a, b := tr.pair(t)
	w = &watchConn{Conn: b}
	client, err := NewConn(a, testConfig(RoleClient))
	if err != nil {
		t.Fatal(err)
	}
	server, err = NewConn(w, testConfig(RoleServer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	cerr, serr := both(func() error { return client.Handshake(testCtx(t)) }, func() error { return server.Handshake(testCtx(t)) })
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	return client, server, w
}

// write writes b to the Conn in a goroutine (net.Pipe writes block until
// read) and returns a channel that reports the write's error.
func (p *rawPeer) writeAsync(b []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := p.nc.Write(b)
		ch <- err
	}()
	return ch
}

func (p *rawPeer) write(b []byte) { _ = p.writeAsync(b) }

// readFrame reads one frame of type want from the Conn and returns its
// payload.
func (p *rawPeer) readFrame(want Type) []byte {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(testTimeout))
	var hdr [HeaderLen]byte
	if _, err := io.ReadFull(p.nc, hdr[:]); err != nil {
		p.t.Fatalf("raw peer: cannot read header: %v", err)
	}
	h, err := parseHeader(hdr[:])
	if err != nil {
		p.t.Fatal(err)
	}
	if h.typ != want {
		p.t.Fatalf("raw peer: got %v, want %v", h.typ, want)
	}
	payload := make([]byte, h.length)
	if _, err := io.ReadFull(p.nc, payload); err != nil {
		p.t.Fatalf("raw peer: cannot read payload: %v", err)
	}
	return payload
}

// readAbort reads an Abort frame from the Conn and decodes it.
func (p *rawPeer) readAbort() *AbortError {
	p.t.Helper()
	ae, err := decodeAbort(p.readFrame(TypeAbort))
	if err != nil {
		p.t.Fatal(err)
	}
	return ae
}

// fakeConn is a net.Conn that reads a fixed byte string and discards what
// is written, for fuzzing whole receive paths.
type fakeConn struct {
	r *bytes.Reader
}

func (f *fakeConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// le64 encodes words little-endian.
func le64(v ...uint64) []byte {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}
