package sharedmul

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// TestRefusals checks the errors a party returns instead of a wrong
// result: a client whose key is not the one the server re-randomizes
// under, a server past its session's masked outputs, a layout whose masks
// do not fit the ring, and operands of the wrong size.
func TestRefusals(t *testing.T) {
	tc := newTestContext(t)
	r := rand.New(rand.NewPCG(9, 10))
	f := tc.p.lit.FracBits
	d := polymat.Dims{Rows: 4, In: 8, Out: 4}
	lay, err := NewLayout(tc.p.ring, d, 1, polymat.Block{D0: 4, D1: 8, D2: 4})
	if err != nil {
		t.Fatal(err)
	}
	x, y := fixed(r, 32, f, 3), fixed(r, 32, f, 3)
	xc, xs := split(r, x, 87)
	yc, ys := split(r, y, 87)

	t.Run("wrong-key", func(t *testing.T) {
		// The server re-randomizes under another key's pk: the client's
		// decryption is off by a uniform polynomial and fails the check.
		_, pk2 := rlwe.NewKeyGenerator(tc.p.ring.RLWE()).GenKeyPairNew()
		srv, err := NewServer(tc.p, pk2, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := NewClient(tc.p, tc.sk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		sc, cc := connPair(t, "pipe")
		serr, cerr := nettest.Both(func() error {
			_, err := srv.Mul(bg(), sc, lay, xs, ys)
			return err
		}, func() error {
			_, err := cli.Mul(bg(), cc, lay, xc, yc)
			return err
		})
		if serr != nil {
			t.Fatal(serr)
		}
		if cerr == nil || !strings.Contains(cerr.Error(), "wrong key or parameters") {
			t.Fatalf("client error %v, want the decryption check", cerr)
		}
	})
	t.Run("session", func(t *testing.T) {
		p, err := NewParameters(tc.p.ring, ParametersLiteral{LogBoundX: 4, LogBoundY: 4, LogMaxValues: 5})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := NewServer(p, tc.pk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		// 16 outputs twice fill 2^5; the third product is refused before
		// anything is read.
		for k := 0; k < 3; k++ {
			sc, cc := connPair(t, "pipe")
			cli, err := NewClient(p, tc.sk, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			serr, cerr := nettest.Both(func() error {
				_, err := srv.Mul(bg(), sc, lay, xs, ys)
				if err != nil {
					sc.Close() // the client is told by the closed connection
				}
				return err
			}, func() error {
				_, err := cli.Mul(bg(), cc, lay, xc, yc)
				return err
			})
			switch {
			case k < 2 && errors.Join(serr, cerr) != nil:
				t.Fatalf("product %d: %v", k, errors.Join(serr, cerr))
			case k == 2 && (serr == nil || !strings.Contains(serr.Error(), "masked outputs")):
				t.Fatalf("product %d: server error %v, want the session's bound", k, serr)
			case k == 2 && cerr == nil:
				t.Fatal("the client got a result from a server that refused")
			}
		}
		if srv.Masked() != 32 {
			t.Fatalf("Masked = %d, want 32", srv.Masked())
		}
	})
	t.Run("layout", func(t *testing.T) {
		// B = 4 on both operands of A·V at n = 128: log2 Q > 116.
		lay2, err := NewLayout(tc.p.ring, polymat.Dims{Rows: 128, In: 128, Out: 64}, 1, polymat.Block{D0: 16, D1: 8, D2: 64})
		if err != nil {
			t.Fatal(err)
		}
		cli, err := NewClient(tc.p, tc.sk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cli.Mul(bg(), nil, lay2, make(share.Vector, 128*128), make(share.Vector, 128*64))
		if err == nil || !strings.Contains(err.Error(), "needs log2 Q > 116") {
			t.Fatalf("error %v, want the ring's refusal", err)
		}
	})
	t.Run("operands", func(t *testing.T) {
		srv, err := NewServer(tc.p, tc.pk, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = srv.Mul(bg(), nil, lay, xs, ys[:31])
		if err == nil || !strings.Contains(err.Error(), "right operand has 31 entries, want 1 x 8x4") {
			t.Fatalf("error %v, want the operand's size", err)
		}
	})
}
