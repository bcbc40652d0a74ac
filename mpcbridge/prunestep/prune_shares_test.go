package prunestep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// maskBits is the width of the server's shares in splitShares: uniform on
// 88 bits, as the mpcbridge stages hand over.
const maskBits = 88

// splitShares returns integer shares, the server's then the client's, of
// round(2^f·x) for each x: the server's uniform on maskBits signed bits.
func splitShares(r *rand.Rand, f int, xs []float64) (srv, cli share.Vector) {
	srv, cli = make(share.Vector, len(xs)), make(share.Vector, len(xs))
	for i, x := range xs {
		v := share.Int128FromInt64(int64(math.Round(math.Ldexp(x, f))))
		b := share.Int128{Lo: r.Uint64(), Hi: uint64(int64(r.Uint64()) >> (128 - maskBits))}
		srv[i], cli[i] = b, v.Sub(b)
	}
	return srv, cli
}

// shareRows returns the server's and the client's Rows of x and scores.
func shareRows(r *rand.Rand, p Parameters, layer int, x models.Matrix, scores []float64) (srv, cli Rows) {
	sx, cx := splitShares(r, p.FracBits(), x.Data)
	ss, cs := splitShares(r, p.ScoreFracBits(), scores)
	return Rows{Layer: layer, X: sx, Cols: x.Cols, Scores: ss}, Rows{Layer: layer, X: cx, Cols: x.Cols, Scores: cs}
}

// openRows returns the matrix the two parties' output Rows share.
func openRows(t *testing.T, f int, srv, cli Rows) models.Matrix {
	t.Helper()
	if srv.Cols != cli.Cols || len(srv.X) != len(cli.X) || srv.Cols < 1 || len(srv.X)%srv.Cols != 0 {
		t.Fatalf("outputs of %d x %d and %d x %d shares", len(srv.X), srv.Cols, len(cli.X), cli.Cols)
	}
	m := models.NewMatrix(len(srv.X)/srv.Cols, srv.Cols)
	for i := range m.Data {
		m.Data[i] = math.Ldexp(srv.X[i].Add(cli.X[i]).Float64(), -f)
	}
	return m
}

// pruneSharesStep is the stepFunc of PruneShares on the shares sIn and cIn
// with the thresholds θ and β; it stores the outputs in out, if not nil.
func pruneSharesStep(server *Server, client *Client, sIn, cIn Rows, theta, beta float64, out *[2]Rows) stepFunc {
	return func(ctx context.Context, srv, cli *wire.Conn) (Counts, error) {
		var sr, cr Rows
		var sc, cc Counts
		serr, cerr := nettest.Both(func() error { var err error; sr, sc, err = server.PruneShares(ctx, srv, sIn, theta, beta); return err },
			func() error { var err error; cr, cc, err = client.PruneShares(ctx, cli, cIn); return err })
		if err := errors.Join(serr, cerr); err != nil {
			return Counts{}, err
		}
		if sc != cc {
			return Counts{}, fmt.Errorf("counts: server %v, client %v", sc, cc)
		}
		if out != nil {
			*out = [2]Rows{sr, cr}
		}
		return cc, nil
	}
}

// TestPruneShares runs the step on shares of random rows and scores, with
// and without a KeepGroup, and checks the kept rows, their order and the
// counts against Parameters.Decide, and the widths of the output shares.
func TestPruneShares(t *testing.T) {
	defer noLeaks(t)()
	const theta, beta = 0.1, 0.3
	for _, c := range []struct{ n, d, group, scoreF int }{
		{1, 64, 0, 0}, {2, 16, 0, 0}, {9, 64, 0, 0}, {33, 96, 0, 0}, {33, 64, 8, 0}, {32, 32, 4, 0}, {17, 8, 2, 0},
		{33, 64, 0, 20}, {33, 64, 8, 20},
	} {
		t.Run(fmt.Sprintf("n=%d/d=%d/group=%d/scoreF=%d", c.n, c.d, c.group, c.scoreF), func(t *testing.T) {
			lit := defaultLiteral
			lit.KeepGroup, lit.ScoreFracBits = c.group, c.scoreF
			tc := newTestContext(t, lit)
			r := rand.New(rand.NewPCG(uint64(c.n), uint64(c.d+c.group)))
			x := randomRows(r, c.n, c.d, 1.5)
			scores := make([]float64, c.n)
			for i := range scores {
				scores[i] = scoreGrid[r.IntN(len(scoreGrid))]
			}
			scores[0] = -0.5 // CLS: kept by the public exception
			sIn, cIn := shareRows(r, tc.p, 5, x, scores)
			var out [2]Rows
			srv, cli := connPair(t, "pipe")
			counts, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, &out)(testCtx(t), srv, cli)
			if err != nil {
				t.Fatal(err)
			}
			checkKept(t, tc, x, scores, theta, beta, counts, out)
		})
	}
}

// checkKept checks the outputs of a step of layer 5 on shares with the
// thresholds θ and β against Decide.
func checkKept(t *testing.T, tc *testContext, x models.Matrix, scores []float64, theta, beta float64, counts Counts, out [2]Rows) {
	t.Helper()
	keep, high, err := tc.p.Decide(scores, theta, beta)
	if err != nil {
		t.Fatal(err)
	}
	var wantHigh, wantLow []int
	for i := 1; i < len(keep); i++ {
		switch {
		case high[i]:
			wantHigh = append(wantHigh, i)
		case keep[i]:
			wantLow = append(wantLow, i)
		}
	}
	want := Counts{Layer: 5, In: x.Rows, Kept: 1 + len(wantHigh) + len(wantLow), High: 1 + len(wantHigh)}
	if counts != want {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	got := openRows(t, tc.p.FracBits(), out[0], out[1])
	if got.Rows != want.Kept || out[0].Len() != want.Kept || out[0].Scores != nil || out[0].Layer != 5 {
		t.Fatalf("%d rows out (scores %v, layer %d), want %d", got.Rows, out[0].Scores, out[0].Layer, want.Kept)
	}
	cls, e0 := matchRows(got, x, 0, 1)
	gotHigh, e1 := matchRows(got, x, 1, want.High)
	gotLow, e2 := matchRows(got, x, want.High, want.Kept)
	if cls[0] != 0 || !slices.Equal(gotHigh, wantHigh) || !slices.Equal(gotLow, wantLow) {
		t.Errorf("rows: CLS %v, high %v, low %v; want [0], %v, %v", cls, gotHigh, gotLow, wantHigh, wantLow)
	}
	// Only the input's rounding to 2^-F: the step itself is exact.
	if e := max(e0, e1, e2); e > math.Ldexp(1, -tc.p.FracBits()-1) {
		t.Errorf("entry error %g", e)
	}
	for _, v := range out {
		for i, s := range v.X[x.Cols:] {
			if s.BitLen() > convBits+1 {
				t.Fatalf("output share %d has %d bits", x.Cols+i, s.BitLen())
			}
		}
	}
	t.Logf("%v", counts)
}

// TestPruneSharesBackToBack runs steps on shares and label reveals one
// after the other on one connection, over both transports: each step
// starts after the previous one's garbled circuit (a tunnel, whose end
// marker the client's MsgAccept carries to the server before the
// shuffle's raw bytes).
func TestPruneSharesBackToBack(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(21, 22))
	scores := []float64{0, 0.5, 0.05, 0.2, 0.9, 0}
	x := randomRows(r, len(scores), 8, 1)
	sIn, cIn := shareRows(r, tc.p, 5, x, scores)
	sl, cl := splitShares(r, tc.p.FracBits(), []float64{1, 3, 2})
	for _, transport := range []string{"pipe", "tcp"} {
		srv, cli := connPair(t, transport)
		ctx := testCtx(t)
		for i := range 3 {
			var out [2]Rows
			counts, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, 0.1, 0.3, &out)(ctx, srv, cli)
			if err != nil {
				t.Fatalf("%s: step %d: %v", transport, i, err)
			}
			checkKept(t, tc, x, scores, 0.1, 0.3, counts, out)
			label, serr, cerr := revealLabelShares(ctx, tc, srv, cli, sl, cl)
			if serr != nil || cerr != nil || label != 1 {
				t.Fatalf("%s: label %d after step %d: server %v; client %v", transport, label, i, serr, cerr)
			}
		}
	}
}
