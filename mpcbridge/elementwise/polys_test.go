package elementwise

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// polysItem is one item of a Polys test: fn of degree deg on n values.
type polysItem struct {
	fn  approx.Func
	deg approx.Degree
	n   int
}

// TestPolys evaluates several items in one call (a layer's degree spans:
// one function at both degrees; and unrelated functions of other depths)
// and checks each against its recipe, the messages (one round trip:
// ceil(K/Chunk) messages each way for K ciphertexts over all items, one
// MsgScales) and the session's count of masked coefficients (what separate
// Poly calls would mask: ceil(n/Slots)·N per item).
func TestPolys(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct {
		name  string
		items []polysItem
	}{
		{"one", []polysItem{{approx.GELU, approx.High, 1000}}},
		{"gelu-spans", []polysItem{{approx.GELU, approx.High, 2048 + 3}, {approx.GELU, approx.Low, 700}}},
		{"invsqrt-rows", []polysItem{{approx.InvSqrt, approx.High, 1}, {approx.InvSqrt, approx.Low, 1}}},
		{"mixed", []polysItem{{approx.Tanh, approx.High, 5}, {approx.Exp, approx.High, 3 * 2048}, {approx.Reciprocal, approx.High, 2048}, {approx.GELU, approx.Low, 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			rs, rc := record(sc), record(cc)
			srv, cli := polysParties(t, tc, reg)
			var err error
			ins := make([][]float64, len(c.items))
			items := make([]PolyItem, len(c.items))
			levels := make([]int, len(c.items))
			xas := make([]share.Vector, len(c.items))
			k := 0
			for i, it := range c.items {
				lo, hi := inputRange(reg, it.fn)
				ins[i] = uniform(r, it.n, lo, hi)
				xa, xb := splitShares(r, fixed(p, ins[i]), 82)
				items[i], xas[i] = PolyItem{Fn: it.fn, Deg: it.deg, X: xb}, xa
				if levels[i], err = srv.PolyLevel(it.fn, it.deg); err != nil {
					t.Fatal(err)
				}
				k += p.Ciphertexts(it.n)
			}
			var sres, cres []share.Vector
			serr, cerr := nettest.Both(func() (err error) {
				sres, err = srv.Polys(bg(), rs, items)
				return err
			}, func() (err error) {
				cres, err = cli.Polys(bg(), rc, levels, xas)
				return err
			})
			if err := errors.Join(serr, cerr); err != nil {
				t.Fatal(err)
			}
			for i, it := range c.items {
				got, err := share.Reconstruct(p.Share(), cres[i], sres[i])
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != it.n {
					t.Fatalf("item %d: %d values, want %d", i, len(got), it.n)
				}
				checkClose(t, reg.Recipe(it.fn, it.deg), quantized(p, ins[i]), nil, got)
			}
			msgs := (k + p.Chunk() - 1) / p.Chunk()
			if len(rc.sent[MsgInput]) != msgs || len(rs.sent[MsgOutput]) != msgs || len(rs.sent[MsgScales]) != 1 {
				t.Fatalf("%d input, %d output and %d scales messages, want %d, %d and 1", len(rc.sent[MsgInput]), len(rs.sent[MsgOutput]), len(rs.sent[MsgScales]), msgs, msgs)
			}
			if got, want := srv.Masked(), int64(k*p.Params().N()); got != want {
				t.Fatalf("Masked = %d, want %d (%d ciphertexts)", got, want, k)
			}
		})
	}
}

// TestPolysErrors checks the refusals of a Polys call: the parties
// disagree on the items (order, count, lengths), or the call is malformed;
// every case ends in an error that says what, never a hang.
func TestPolysErrors(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(43, 44))
	lo, hi := inputRange(reg, approx.GELU)
	xa, xb := splitShares(r, fixed(p, uniform(r, 100, lo, hi)), 82)
	gh, _ := p.PolyLevel(reg, approx.GELU, approx.High)
	gl, _ := p.PolyLevel(reg, approx.GELU, approx.Low)
	both := []PolyItem{{approx.GELU, approx.High, xb}, {approx.GELU, approx.Low, xb[:40]}}
	for _, c := range []struct {
		name    string
		server  []PolyItem
		levels  []int
		client  []share.Vector
		want    string
		noPeer  bool // refused before any message: the peer is not run
		refuser string
	}{
		{"client swaps the items", both, []int{gl, gh}, []share.Vector{xa[:40], xa}, "group 0 has values 100, want 40", false, "client"},
		{"client swaps the levels", both, []int{gl, gh}, []share.Vector{xa, xa[:40]}, "group 0, operand 0 at level 7, want 8", false, "server"},
		{"client sends one item", both, []int{gh}, []share.Vector{xa}, "scales message has 2 groups, want 1", false, "client"},
		{"client's lengths differ", both, []int{gh, gl}, []share.Vector{xa, xa[:41]}, "group 1 has values 40, want 41", false, "client"},
		{"levels and items", nil, []int{gh}, []share.Vector{xa, xa}, "1 levels for 2 items", true, "client"},
		{"no item", nil, nil, nil, "0 groups not in [1, 255]", true, "client"},
		{"empty item", nil, []int{gh, gl}, []share.Vector{xa, nil}, "group 1: 0 values", true, "client"},
		{"too many items", nil, repeat(gh, MaxGroups+1), repeatVec(xa[:1], MaxGroups+1), "256 groups not in [1, 255]", true, "client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, cli := polysParties(t, tc, reg)
			var err error
			var serr, cerr error
			if c.noPeer {
				_, cerr = cli.Polys(bg(), failConn{}, c.levels, c.client)
			} else {
				sc, cc := connPair(t, "pipe")
				serr, cerr = nettest.BothAborting(sc, cc, func() error {
					_, err := srv.Polys(bg(), sc, c.server)
					return err
				}, func() error {
					_, err := cli.Polys(bg(), cc, c.levels, c.client)
					return err
				})
			}
			err = cerr
			if c.refuser == "server" {
				err = serr
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s: error %v (other side %v), want one containing %q", c.refuser, err, errors.Join(serr, cerr), c.want)
			}
			t.Log(err)
		})
	}
	// The server's own refusals, before any message.
	srv, err := NewServer(p, tc.pk, tc.rlk, reg, 2)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]PolyItem, MaxGroups+1)
	for i := range many {
		many[i] = PolyItem{approx.GELU, approx.High, xb[:1]}
	}
	for _, c := range []struct {
		items []PolyItem
		want  string
	}{
		{nil, "0 groups not in [1, 255]"},
		{many, fmt.Sprintf("%d groups not in [1, 255]", MaxGroups+1)},
		{[]PolyItem{{approx.GELU, approx.High, xb}, {approx.Func(99), approx.High, xb}}, "invalid function 99"},
	} {
		if _, err := srv.Polys(bg(), failConn{}, c.items); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("server: %v, want %q", err, c.want)
		}
	}
}

// repeatVec returns n copies of x (one slice, shared).
func repeatVec(x share.Vector, n int) []share.Vector {
	out := make([]share.Vector, n)
	for i := range out {
		out[i] = x
	}
	return out
}

// TestMulScaledPolys computes w ⊙ x ⊙ fn(y) for several items in one
// call (LayerNorm's γ·z·(1/√v) on two degree spans; exp on another
// item) and checks each against its recipe, the messages (one round
// trip) and the masked coefficients (ceil(n/Slots)·N per item).
func TestMulScaledPolys(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(45, 46))
	for _, c := range []struct {
		name  string
		items []polysItem
	}{
		{"one", []polysItem{{approx.InvSqrt, approx.High, 1}}},
		{"invsqrt-spans", []polysItem{{approx.InvSqrt, approx.High, 1000}, {approx.InvSqrt, approx.Low, 2*2048 + 5}}},
		{"mixed", []polysItem{{approx.Exp, approx.High, 300}, {approx.InvSqrt, approx.Low, 7}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, cc := connPair(t, "tcp")
			rs, rc := record(sc), record(cc)
			srv, cli := polysParties(t, tc, reg)
			var err error
			items := make([]ScaledPolyItem, len(c.items))
			levels := make([]int, len(c.items))
			xas, yas := make([]share.Vector, len(c.items)), make([]share.Vector, len(c.items))
			ys, factors := make([][]float64, len(c.items)), make([][]float64, len(c.items))
			k := 0
			for i, it := range c.items {
				lo, hi := inputRange(reg, it.fn)
				x, w := uniform(r, it.n, -4, 4), uniform(r, it.n, -2, 2)
				ys[i] = uniform(r, it.n, lo, hi)
				xa, xb := splitShares(r, fixed(p, x), 82)
				ya, yb := splitShares(r, fixed(p, ys[i]), 82)
				items[i], xas[i], yas[i] = ScaledPolyItem{Fn: it.fn, Deg: it.deg, W: w, X: xb, Y: yb}, xa, ya
				factors[i] = quantized(p, x)
				for j := range factors[i] {
					factors[i][j] *= w[j]
				}
				if levels[i], err = srv.MulPolyLevel(it.fn, it.deg); err != nil {
					t.Fatal(err)
				}
				k += p.Ciphertexts(it.n)
			}
			var sres, cres []share.Vector
			serr, cerr := nettest.Both(func() (err error) {
				sres, err = srv.MulScaledPolys(bg(), rs, items)
				return err
			}, func() (err error) {
				cres, err = cli.MulScaledPolys(bg(), rc, levels, xas, yas)
				return err
			})
			if err := errors.Join(serr, cerr); err != nil {
				t.Fatal(err)
			}
			for i, it := range c.items {
				got, err := share.Reconstruct(p.Share(), cres[i], sres[i])
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, reg.Recipe(it.fn, it.deg), quantized(p, ys[i]), factors[i], got)
			}
			msgs := (k + p.Chunk() - 1) / p.Chunk()
			if len(rc.sent[MsgInput]) != msgs || len(rs.sent[MsgOutput]) != msgs || len(rs.sent[MsgScales]) != 1 {
				t.Fatalf("%d input, %d output and %d scales messages, want %d, %d and 1", len(rc.sent[MsgInput]), len(rs.sent[MsgOutput]), len(rs.sent[MsgScales]), msgs, msgs)
			}
			if got, want := srv.Masked(), int64(k*p.Params().N()); got != want {
				t.Fatalf("Masked = %d, want %d (%d ciphertexts)", got, want, k)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		srv, err := NewServer(p, tc.pk, tc.rlk, reg, 1)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := NewClient(p, tc.sk, 1)
		if err != nil {
			t.Fatal(err)
		}
		x := make(share.Vector, 4)
		for _, c := range []struct {
			w    []float64
			fn   approx.Func
			want string
		}{
			{[]float64{1, 2, 3}, approx.InvSqrt, "3 weights for 4 values"},
			{[]float64{1, 2, 3, 1e6}, approx.InvSqrt, "weight 3 is 1e+06"},
			{[]float64{1, math.NaN(), 0, 0}, approx.InvSqrt, "weight 1 is NaN"},
			{[]float64{1, 1, 1, 1}, approx.GELU, "cannot MulPolyLevel"}, // GELU high and the product exceed the levels
		} {
			_, err := srv.MulScaledPolys(bg(), failConn{}, []ScaledPolyItem{{Fn: c.fn, Deg: approx.High, W: c.w, X: x, Y: x}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("server: %v, want %q", err, c.want)
			}
		}
		for _, c := range []struct {
			levels []int
			ys     []share.Vector
			want   string
		}{
			{[]int{2}, []share.Vector{x}, "level 2 not in [3, 8]"},
			{[]int{8, 8}, []share.Vector{x}, "2 levels and 1 y for 1 items"},
		} {
			if _, err := cli.MulScaledPolys(bg(), failConn{}, c.levels, []share.Vector{x}, c.ys); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("client: %v, want %q", err, c.want)
			}
		}
	})
}

// polysParties returns a server of reg and a client on tc's keys, with 2
// workers each.
func polysParties(t *testing.T, tc *testContext, reg *approx.Registry) (*Server, *Client) {
	t.Helper()
	srv, err := NewServer(tc.p, tc.pk, tc.rlk, reg, 2)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(tc.p, tc.sk, 2)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cli
}
