package nettest

import (
	"context"
	"errors"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// WireConns returns a server's and a client's wire.Conn over
// Pair(tb, transport), with version 1 and the session parameters params;
// both close when the test ends. With handshake, both ends have completed
// the wire handshake, so that a protocol's statistics exclude it.
func WireConns(tb testing.TB, transport, params string, handshake bool) (srv, cli *wire.Conn) {
	tb.Helper()
	a, b := Pair(tb, transport)
	var err error
	if srv, err = wire.NewConn(a, wire.Config{Role: wire.RoleServer, Version: 1, Params: []byte(params)}); err != nil {
		tb.Fatal(err)
	}
	if cli, err = wire.NewConn(b, wire.Config{Role: wire.RoleClient, Version: 1, Params: []byte(params)}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close(); cli.Close() })
	if handshake {
		ctx := context.Background()
		if err := errors.Join(Both(func() error { return srv.Handshake(ctx) }, func() error { return cli.Handshake(ctx) })); err != nil {
			tb.Fatal(err)
		}
	}
	return srv, cli
}
