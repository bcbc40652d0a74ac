package wire

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
)

func TestTLS(t *testing.T) {
	// The Conn runs over crypto/tls like over TCP: the TLS handshake happens
	// on the first write or read, inside the wire handshake.
	client, server := handshakePair(t, transports[2])
	ctx := testCtx(t)
	msg := randomBytes(5<<20, 11)
	cerr, serr := both(func() error { return client.Send(ctx, tA, msg) }, func() error {
		got, err := server.Recv(ctx, tA)
		if err == nil && !bytes.Equal(got, msg) {
			err = errors.New("message differs")
		}
		return err
	})
	if cerr != nil || serr != nil {
		t.Fatalf("client: %v, server: %v", cerr, serr)
	}
	tc, ok := client.NetConn().(*tls.Conn)
	if !ok {
		t.Fatalf("NetConn is a %T", client.NetConn())
	}
	if st := tc.ConnectionState(); !st.HandshakeComplete || st.Version != tls.VersionTLS13 || st.ServerName != "localhost" {
		t.Errorf("TLS state: complete %v, version %#x, server name %q", st.HandshakeComplete, st.Version, st.ServerName)
	}
	// Stats count the bytes given to TLS, not its records.
	if cs, ss := client.Stats(), server.Stats(); cs.BytesSent != ss.BytesReceived || cs.BytesSent != int64(len(helloFrame(testConfig(RoleClient)))+HeaderLen+len(msg)) {
		t.Errorf("client sent %d, server received %d", cs.BytesSent, ss.BytesReceived)
	}
}

func TestTLSUntrustedCertificate(t *testing.T) {
	// A TLS failure surfaces as the wire handshake's error.
	cert, _ := selfSigned(t)
	a, b := tcpPair(t)
	ca := tls.Client(a, &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS13}) // no RootCAs: the system pool
	cb := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	client, err := NewConn(ca, testConfig(RoleClient))
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewConn(cb, testConfig(RoleServer))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer server.Close()
	ctx := testCtx(t)
	cerr, serr := both(func() error { return client.Handshake(ctx) }, func() error { return server.Handshake(ctx) })
	var verr *tls.CertificateVerificationError
	if !errors.As(cerr, &verr) {
		t.Errorf("client: %v, want a *tls.CertificateVerificationError", cerr)
	}
	if serr == nil {
		t.Error("server: handshake succeeded")
	}
}
