package sharedmul

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// recordConn keeps every payload the client sends and receives.
type recordConn struct {
	Conn
	sent, recv [][]byte
}

func (c *recordConn) Send(ctx context.Context, t wire.Type, b []byte) error {
	c.sent = append(c.sent, append([]byte(nil), b...))
	return c.Conn.Send(ctx, t, b)
}

func (c *recordConn) Recv(ctx context.Context, t wire.Type) ([]byte, error) {
	b, err := c.Conn.Recv(ctx, t)
	if err == nil {
		c.recv = append(c.recv, append([]byte(nil), b...))
	}
	return b, err
}

// spy is a curious client after one product with a single inner block and
// a server whose share of Y is zero: from its own ciphertexts and the
// output's c1 it computes c1 - (c0_A·c1_B + c1_A·c0_B) = Enc(server's
// share of X)·c1_B, divides by c1_B and reports whether that is the
// server's share of X, times 2^G, at every input exponent.
func spy(t *testing.T, p Parameters, lay Layout, rec *recordConn, xs share.Vector) bool {
	t.Helper()
	rp := p.ring
	rq := rp.RingQ()
	var c0s, c1s [2]ring.Poly
	for k := 0; k < 2; k++ {
		c0s[k], c1s[k] = rq.NewPoly(), rq.NewPoly()
		seed, err := decodeInput(rp, lay, k, rec.sent[k], c0s[k])
		if err != nil {
			t.Fatal(err)
		}
		if err := polymat.ExpandC1(rp, seed, c1s[k]); err != nil {
			t.Fatal(err)
		}
	}
	c1 := rq.NewPoly()
	if _, err := p.decodeOutput(lay, 0, rec.recv[0], c1); err != nil {
		t.Fatal(err)
	}
	rq.NTT(c1, c1)
	own := rq.NewPoly()
	rq.MulCoeffsBarrett(c0s[0], c1s[1], own)
	rq.MulCoeffsBarrettThenAdd(c1s[0], c0s[1], own)
	diff := rq.NewPoly()
	rq.Sub(c1, own, diff)
	for l, q := range rp.Moduli() {
		for k, v := range c1s[1].Coeffs[l] {
			inv := ring.ModExp(v, q-2, q)
			hi := ring.BRed(diff.Coeffs[l][k], inv, q, rq.SubRings[l].BRedConstant)
			diff.Coeffs[l][k] = hi
		}
	}
	rq.INTT(diff, diff)
	xr, err := residues(rp, lay.Rows, lay.In, xs, p.lit.GuardBits)
	if err != nil {
		t.Fatal(err)
	}
	wantPt := rq.NewPoly()
	lay.EncodeInput(xr, 0, 0, wantPt)
	return rq.Equal(diff, wantPt)
}

// TestRerandomization checks that the output's c1 is a fresh sample: a
// curious client recovers the server's share of X exactly from a server
// that skips the encryption of zero (so the test can see a leak), and
// does not from the real server. Both send their outputs whole
// (ExactOutputs): the rounding is a function of the message, it could
// only hide more, and the spy needs c1 exactly to show the leak.
func TestRerandomization(t *testing.T) {
	tc := newTestContext(t)
	r := rand.New(rand.NewPCG(3, 4))
	d := polymat.Dims{Rows: 4, In: 8, Out: 4}
	lay, err := NewLayout(tc.p.ring, d, 1, polymat.Block{D0: 4, D1: 8, D2: 4})
	if err != nil {
		t.Fatal(err)
	}
	lit := tc.p.lit
	lit.ExactOutputs = true
	p, err := NewParameters(tc.p.ring, lit)
	if err != nil {
		t.Fatal(err)
	}
	f := p.lit.FracBits
	for _, skip := range []bool{true, false} {
		x := fixed(r, d.Rows*d.In, f, 3)
		y := fixed(r, d.In*d.Out, f, 3)
		xc, xs := split(r, x, 87)
		ys := make(share.Vector, len(y))
		sc, cc := connPair(t, "pipe")
		srv, err := NewServer(p, tc.pk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv.skipRerandomize = skip
		cli, err := NewClient(p, tc.sk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recordConn{Conn: cc}
		serr, cerr := nettest.Both(func() error {
			_, err := srv.Mul(bg(), sc, lay, xs, ys)
			return err
		}, func() error {
			_, err := cli.Mul(bg(), rec, lay, xc, y)
			return err
		})
		if err := errors.Join(serr, cerr); err != nil {
			t.Fatal(err)
		}
		leaked := spy(t, p, lay, rec, xs)
		switch {
		case skip && !leaked:
			t.Fatal("the spy does not recover the share from a server without re-randomization: the test has no teeth")
		case !skip && leaked:
			t.Fatal("the client recovered the server's share of X from the output's c1")
		}
	}
}
