package prunestep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// argmax returns the index of the first largest value of v rounded to 2^-f.
func argmax(v []float64, f int) int {
	best := 0
	for i, x := range v {
		if math.Round(math.Ldexp(x, f)) > math.Round(math.Ldexp(v[best], f)) {
			best = i
		}
	}
	return best
}

// randomLogits returns k logits in (-8, 8) with, in some cases, a tie for
// the maximum or a runner-up 2^-f below it.
func randomLogits(r *rand.Rand, k, f int) []float64 {
	v := make([]float64, k)
	for i := range v {
		v[i] = 16*r.Float64() - 8
	}
	best := argmax(v, f)
	switch other := r.IntN(k); r.IntN(3) {
	case 0:
		v[other] = v[best] // a tie: the first wins
	case 1:
		v[other] = v[best] - math.Ldexp(1, -f)
	}
	return v
}

// TestRevealLabelShares opens the argmax of random logits (ties and
// near-ties included) for 2 to 100 labels, and at the extremes of the
// logits' range.
func TestRevealLabelShares(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	f := tc.p.FracBits()
	r := rand.New(rand.NewPCG(11, 12))
	cases := [][]float64{{-6, -6}, {1, 2}, {math.Ldexp(-1, 46), math.Ldexp(1, 46) - 1, 0}}
	for _, k := range []int{2, 2, 3, 5, 8, 9, 17, 100} {
		cases = append(cases, randomLogits(r, k, f))
	}
	for _, v := range cases {
		t.Run(fmt.Sprintf("k=%d", len(v)), func(t *testing.T) {
			sl, cl := splitShares(r, f, v)
			srv, cli := connPair(t, "tcp")
			label, serr, cerr := revealLabelShares(testCtx(t), tc, srv, cli, sl, cl)
			if serr != nil || cerr != nil {
				t.Fatalf("server: %v; client: %v", serr, cerr)
			}
			if want := argmax(v, f); label != want {
				t.Errorf("label %d, want %d (logits %v)", label, want, v)
			}
			t.Logf("label %d; server sent %d B, client %d B", label, srv.Stats().BytesSent, cli.Stats().BytesSent)
		})
	}
}

// revealLabelShares runs RevealLabelShares of tc on the shares sl and cl.
func revealLabelShares(ctx context.Context, tc *testContext, srv, cli *wire.Conn, sl, cl share.Vector) (label int, serr, cerr error) {
	serr, cerr = nettest.Both(func() error { return tc.server.RevealLabelShares(ctx, srv, sl) },
		func() error { var err error; label, err = tc.client.RevealLabelShares(ctx, cli, cl); return err })
	return label, serr, cerr
}

// TestRevealShares opens random logits to the client to 2^-F.
func TestRevealShares(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	f := tc.p.FracBits()
	r := rand.New(rand.NewPCG(13, 14))
	for _, k := range []int{1, 2, 30, MaxRevealSlots} {
		v := randomLogits(r, max(k, 2), f)[:k]
		sl, cl := splitShares(r, f, v)
		srv, cli := connPair(t, "pipe")
		ctx := testCtx(t)
		var got []float64
		serr, cerr := nettest.Both(func() error { return tc.server.RevealShares(ctx, srv, sl) },
			func() error { var err error; got, err = tc.client.RevealShares(ctx, cli, cl); return err })
		if serr != nil || cerr != nil {
			t.Fatalf("k = %d: server: %v; client: %v", k, serr, cerr)
		}
		for i := range v {
			if d := math.Abs(got[i] - v[i]); d > math.Ldexp(1, -f-1) {
				t.Fatalf("k = %d: logit %d is %g, want %g", k, i, got[i], v[i])
			}
		}
	}
}

// TestRevealLabelSharesHidesLogits: the server's transcript of
// RevealLabelShares holds neither the logits (in fixed point) nor the
// server's shares of them, in either byte order, while that of
// RevealShares, which opens them, holds its shares: the check would catch
// a reveal that sent them. (The client's only output is the label; what it
// sees of the circuit is gc's evaluator-only view, garbled labels.)
func TestRevealLabelSharesHidesLogits(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	f := tc.p.FracBits()
	r := rand.New(rand.NewPCG(15, 16))
	v := randomLogits(r, 6, f)
	sl, cl := splitShares(r, f, v)
	var words []uint64
	for i, x := range v {
		words = append(words, sl[i].Lo, sl[i].Hi, uint64(int64(math.Round(math.Ldexp(x, f)))))
	}
	for _, c := range []struct {
		name  string
		run   func(ctx context.Context, srv, cli *wire.Conn) (error, error)
		holds bool
	}{
		{"RevealLabelShares", func(ctx context.Context, srv, cli *wire.Conn) (error, error) {
			_, serr, cerr := revealLabelShares(ctx, tc, srv, cli, sl, cl)
			return serr, cerr
		}, false},
		{"RevealShares", func(ctx context.Context, srv, cli *wire.Conn) (error, error) {
			return nettest.Both(func() error { return tc.server.RevealShares(ctx, srv, sl) },
				func() error { _, err := tc.client.RevealShares(ctx, cli, cl); return err })
		}, true},
	} {
		transcript := recordServer(t, c.run)
		found := 0
		for _, w := range words {
			for _, enc := range [][]byte{binary.LittleEndian.AppendUint64(nil, w), binary.BigEndian.AppendUint64(nil, w)} {
				if bytes.Contains(transcript, enc) {
					found++
				}
			}
		}
		t.Logf("%s: %d of %d words found in the server's %d-byte transcript", c.name, found, 2*len(words), len(transcript))
		if (found > 0) != c.holds {
			t.Errorf("%s: %d words found, want any: %v", c.name, found, c.holds)
		}
	}
}

// recordServer runs run over a pipe and returns every byte the server
// wrote.
func recordServer(t *testing.T, run sidesFunc) []byte {
	t.Helper()
	a, b := nettest.Pair(t, "pipe")
	rec := &recordConn{Conn: a}
	srv, _ := wire.NewConn(rec, wire.Config{Role: wire.RoleServer})
	cli, _ := wire.NewConn(b, wire.Config{Role: wire.RoleClient})
	defer srv.Close()
	defer cli.Close()
	if serr, cerr := run(testCtx(t), srv, cli); serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return bytes.Clone(rec.buf.Bytes())
}

// TestRevealSharesErrors: bad logits are refused before any I/O; a client
// holding another number of logits, or waiting for the other reveal,
// refuses the request; a malformed MsgRevealShares is refused.
func TestRevealSharesErrors(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(17, 18))
	sl, cl := splitShares(r, tc.p.FracBits(), []float64{1, 2, 3})
	srv, _ := connPair(t, "pipe")
	ctx := testCtx(t)
	wideLogits := append(share.Vector{wide}, sl...)
	for name, err := range map[string]error{
		"label, one logit":  tc.server.RevealLabelShares(ctx, srv, sl[:1]),
		"label, too many":   tc.server.RevealLabelShares(ctx, srv, make(share.Vector, MaxLabels+1)),
		"label, wide":       tc.server.RevealLabelShares(ctx, srv, wideLogits),
		"label, nil conn":   tc.server.RevealLabelShares(ctx, nil, sl),
		"reveal, no logits": tc.server.RevealShares(ctx, srv, nil),
		"reveal, too many":  tc.server.RevealShares(ctx, srv, make(share.Vector, MaxRevealSlots+1)),
		"reveal, wide":      tc.server.RevealShares(ctx, srv, wideLogits),
		"reveal, nil conn":  tc.server.RevealShares(ctx, nil, sl),
		"client, nil conn":  func() error { _, err := tc.client.RevealShares(ctx, nil, cl); return err }(),
		"client label, nil": func() error { _, err := tc.client.RevealLabelShares(ctx, nil, cl); return err }(),
		"client prune, nil": func() error { _, _, err := tc.client.PruneShares(ctx, nil, Rows{}); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("refused calls sent %d bytes", s.BytesSent)
	}
	for name, c := range map[string]struct {
		server func(ctx context.Context, conn *wire.Conn) error
		client func(ctx context.Context, conn *wire.Conn) error
		want   error
	}{
		"k differs": {func(ctx context.Context, conn *wire.Conn) error { return tc.server.RevealLabelShares(ctx, conn, sl) },
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealLabelShares(ctx, conn, cl[:2])
				return err
			}, ErrMismatch},
		"other reveal": {func(ctx context.Context, conn *wire.Conn) error { return tc.server.RevealShares(ctx, conn, sl) },
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealLabelShares(ctx, conn, cl)
				return err
			}, ErrMismatch},
		"label to values": {func(ctx context.Context, conn *wire.Conn) error { return tc.server.RevealLabelShares(ctx, conn, sl) },
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealShares(ctx, conn, cl)
				return err
			}, ErrMismatch},
		"bad shares": {func(ctx context.Context, conn *wire.Conn) error {
			return sendRevealShares(ctx, tc, conn, []int{0, 1, 1}, sl)
		},
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealShares(ctx, conn, cl)
				return err
			}, ErrMalformed},
		"short shares": {func(ctx context.Context, conn *wire.Conn) error {
			return sendRevealShares(ctx, tc, conn, []int{0, 1}, sl)
		},
			func(ctx context.Context, conn *wire.Conn) error {
				_, err := tc.client.RevealShares(ctx, conn, cl)
				return err
			}, ErrMalformed},
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

// sendRevealShares sends a RevealShares request for three logits and then
// the shares of v at idx, as a faulty server would.
func sendRevealShares(ctx context.Context, tc *testContext, conn *wire.Conn, idx []int, v share.Vector) error {
	req := request{op: RequestRevealShares, fp: tc.server.Fingerprint(), count: 3}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		return err
	}
	return conn.Send(ctx, MsgRevealShares, encodeRevealShares(idx, v))
}

// TestRevealLabelSharesDisconnect cuts either party's connection during
// RevealLabelShares: both sides fail, nothing leaks.
func TestRevealLabelSharesDisconnect(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(19, 20))
	sl, cl := splitShares(r, tc.p.FracBits(), randomLogits(r, 10, tc.p.FracBits()))
	checkDisconnects(t, func(ctx context.Context, srv, cli *wire.Conn) (error, error) {
		_, serr, cerr := revealLabelShares(ctx, tc, srv, cli, sl, cl)
		return serr, cerr
	})
}
