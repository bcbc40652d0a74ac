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

// BothAborting is Both for two parties on wire connections: a party whose
// function fails aborts its connection with the error as the reason, so
// that the other, waiting for a message that will never come, returns too.
func BothAborting(srv, cli *wire.Conn, f, g func() error) (ferr, gerr error) {
	abortOn := func(c *wire.Conn, h func() error) func() error {
		return func() error {
			err := h()
			if err != nil {
				_ = c.Abort(context.Background(), err.Error())
			}
			return err
		}
	}
	return Both(abortOn(srv, f), abortOn(cli, g))
}
