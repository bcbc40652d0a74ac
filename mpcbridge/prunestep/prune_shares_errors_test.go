package prunestep

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// sharesInput returns the server's and the client's Rows of a random
// 6 x 16 input of layer 2.
func sharesInput(t *testing.T, tc *testContext) (srv, cli Rows) {
	t.Helper()
	r := rand.New(rand.NewPCG(6, 16))
	return shareRows(r, tc.p, 2, randomRows(r, 6, 16, 1), []float64{0, 0.2, 0.4, 0.05, 0.5, 0})
}

// wide is a share of MaxShareBits+1 bits.
var wide = share.Int128{Hi: 1 << (MaxShareBits - 64)}

// TestPruneSharesRefused: inputs of a bad shape, layer or share width, and
// bad thresholds, are refused before any I/O; shares of exactly
// MaxShareBits bits pass.
func TestPruneSharesRefused(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	in, _ := sharesInput(t, tc)
	srv, _ := connPair(t, "pipe")
	bad := map[string]func(r *Rows){
		"no columns": func(r *Rows) { r.Cols = 0 },
		"short X":    func(r *Rows) { r.X = r.X[1:] },
		"no rows":    func(r *Rows) { r.X, r.Scores = nil, nil },
		"too many": func(r *Rows) {
			r.Scores = make(share.Vector, tc.p.MaxRows()+1)
			r.X = make(share.Vector, len(r.Scores)*r.Cols)
		},
		"wide feature": func(r *Rows) { r.X[40] = wide },
		"wide score":   func(r *Rows) { r.Scores[3] = wide.Neg() },
		"layer":        func(r *Rows) { r.Layer = -1 },
		"big layer":    func(r *Rows) { r.Layer = maxLayer },
	}
	for name, f := range bad {
		r := in
		r.X, r.Scores = append(share.Vector(nil), in.X...), append(share.Vector(nil), in.Scores...)
		f(&r)
		if _, _, err := tc.server.PruneShares(testCtx(t), srv, r, 0.1, 0.3); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, _, err := tc.server.PruneShares(testCtx(t), srv, in, MinTheta, 0.3); err == nil {
		t.Error("θ = MinTheta accepted")
	}
	if _, _, err := tc.server.PruneShares(testCtx(t), nil, in, 0.1, 0.3); err == nil {
		t.Error("nil connection accepted")
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("refused calls sent %d bytes", s.BytesSent)
	}
	edge := in
	edge.X = append(share.Vector(nil), in.X...)
	edge.X[0] = share.Int128{Hi: 1<<(MaxShareBits-64) - 1, Lo: ^uint64(0)}
	if err := edge.check(tc.p); err != nil {
		t.Errorf("a share of %d bits refused: %v", edge.X[0].BitLen(), err)
	}
}

// TestPruneSharesMismatch: a client whose input differs from the request
// (rows, columns, layer) or is malformed refuses it with the reason; both
// sides fail at once.
func TestPruneSharesMismatch(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	sIn, cIn := sharesInput(t, tc)
	for name, c := range map[string]struct {
		f    func(r *Rows)
		want string
	}{
		"rows":    {func(r *Rows) { r.Scores = r.Scores[1:]; r.X = r.X[r.Cols:] }, "5 x 16"},
		"columns": {func(r *Rows) { r.Cols = 32; r.X = append(r.X, r.X...) }, "6 x 32"},
		"layer":   {func(r *Rows) { r.Layer = 3 }, "layer 3"},
		"wide":    {func(r *Rows) { r.Scores[0] = wide }, "exceeds 2^120"},
	} {
		t.Run(name, func(t *testing.T) {
			r := cIn
			r.X, r.Scores = append(share.Vector(nil), cIn.X...), append(share.Vector(nil), cIn.Scores...)
			c.f(&r)
			srv, cli := connPair(t, "pipe")
			serr, cerr := pruneSharesSides(tc, sIn, r)(testCtx(t), srv, cli)
			// The refusal reaches the server at its MsgAccept as the
			// client's Abort, or, if the client's close wins the race with
			// it (as on a net.Pipe the server is writing to), as a closed
			// connection.
			if cerr == nil || !strings.Contains(cerr.Error(), c.want) || serr == nil {
				t.Errorf("server: %v\nclient: %v\nwant both to fail, the client naming %q", serr, cerr, c.want)
			}
			t.Logf("server: %v", serr)
			if name != "wide" && !errors.Is(cerr, ErrMismatch) {
				t.Errorf("client: %v, want ErrMismatch", cerr)
			}
		})
	}
}

// pruneSharesSides is the sidesFunc of PruneShares of tc on sIn and cIn.
func pruneSharesSides(tc *testContext, sIn, cIn Rows) sidesFunc {
	return func(ctx context.Context, srv, cli *wire.Conn) (error, error) {
		return nettest.Both(func() error { _, _, err := tc.server.PruneShares(ctx, srv, sIn, 0.1, 0.3); return err },
			func() error { _, _, err := tc.client.PruneShares(ctx, cli, cIn); return err })
	}
}

// TestPruneSharesWrongRequest: the step on shares and the other calls do
// not answer each other's requests.
func TestPruneSharesWrongRequest(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	sIn, cIn := sharesInput(t, tc)
	for name, c := range map[string]struct {
		server, client func(ctx context.Context, conn *wire.Conn) error
		want           error
	}{
		"RevealShares to PruneShares": {func(ctx context.Context, conn *wire.Conn) error { return tc.server.RevealShares(ctx, conn, sIn.Scores) },
			func(ctx context.Context, conn *wire.Conn) error {
				_, _, err := tc.client.PruneShares(ctx, conn, cIn)
				return err
			}, ErrMismatch},
		"PruneShares to RevealShares": {func(ctx context.Context, conn *wire.Conn) error {
			_, _, err := tc.server.PruneShares(ctx, conn, sIn, 0.1, 0.3)
			return err
		},
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealShares(ctx, conn, cIn.Scores)
				return err
			}, ErrMismatch},
		"PruneShares to RevealLabelShares": {func(ctx context.Context, conn *wire.Conn) error {
			_, _, err := tc.server.PruneShares(ctx, conn, sIn, 0.1, 0.3)
			return err
		},
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealLabelShares(ctx, conn, cIn.Scores)
				return err
			}, ErrMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			srv, cli := connPair(t, "pipe")
			ctx := testCtx(t)
			serr, cerr := nettest.Both(func() error { return c.server(ctx, srv) }, func() error { return c.client(ctx, cli) })
			if !errors.Is(cerr, c.want) {
				t.Errorf("client: %v, want %v", cerr, c.want)
			}
			t.Logf("server: %v\nclient: %v", serr, cerr)
		})
	}
}

// TestPruneSharesMalformedRequest: a client refuses malformed requests
// (ErrMalformed) and tells the server.
func TestPruneSharesMalformedRequest(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	_, cIn := sharesInput(t, tc)
	good := (&request{op: RequestPruneShares, fp: tc.server.Fingerprint(), layer: 2, rows: 6, cols: 16}).marshal()
	zeroRows := append([]byte(nil), good...)
	zeroRows[43] = 0
	for name, p := range map[string][]byte{
		"truncated": good[:len(good)-1],
		"long":      append(append([]byte(nil), good...), 0),
		"zero rows": zeroRows,
		"trailing":  append(append([]byte(nil), good[:requestSize-1]...), 1),
	} {
		t.Run(name, func(t *testing.T) {
			srv, cli := connPair(t, "pipe")
			ctx := testCtx(t)
			serr, cerr := nettest.Both(func() error {
				if err := srv.Send(ctx, MsgRequest, p); err != nil {
					return err
				}
				_, err := srv.Recv(ctx, MsgIntShares)
				return err
			}, func() error { _, _, err := tc.client.PruneShares(ctx, cli, cIn); return err })
			if !errors.Is(cerr, ErrMalformed) || serr == nil {
				t.Errorf("server: %v; client: %v, want ErrMalformed", serr, cerr)
			}
		})
	}
}

// TestPruneSharesDisconnect cuts either party's connection at several
// points of the step on shares: both sides fail, nothing leaks.
func TestPruneSharesDisconnect(t *testing.T) {
	defer noLeaks(t)()
	lit := defaultLiteral
	lit.KeepGroup = 4
	tc := newTestContext(t, lit)
	sIn, cIn := sharesInput(t, tc)
	checkDisconnects(t, pruneSharesSides(tc, sIn, cIn))
}

// TestPruneSharesMalformedAccept: a server whose client sends a non-empty
// MsgAccept refuses it (ErrMalformed) before reading any shuffle byte.
func TestPruneSharesMalformedAccept(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	sIn, _ := sharesInput(t, tc)
	srv, cli := connPair(t, "tcp")
	ctx := testCtx(t)
	serr, cerr := nettest.Both(func() error { _, _, err := tc.server.PruneShares(ctx, srv, sIn, 0.1, 0.3); return err },
		func() error {
			if _, err := cli.Recv(ctx, MsgRequest); err != nil {
				return err
			}
			if err := cli.Send(ctx, MsgAccept, []byte{1}); err != nil {
				return err
			}
			_, err := cli.Recv(ctx, MsgIntShares)
			return err
		})
	if !errors.Is(serr, ErrMalformed) || cerr == nil {
		t.Errorf("server: %v, want ErrMalformed; client: %v", serr, cerr)
	}
}
