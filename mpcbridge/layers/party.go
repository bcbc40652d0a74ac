package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
)

// party is one side of the calls a stage makes, so that a stage written
// against it is the same code for both parties: the server passes its
// weights and its constants, the client ignores them. Every method is one
// call of a primitive (one round trip) or a local step.
type party interface {
	params() Parameters
	// client reports whether this is the client's side.
	client() bool
	// linear is a product by the server's weights w (nil for the client).
	linear(ctx context.Context, conn Conn, lay polymat.Layout, w *matmul.Weights, x share.Vector) (share.Vector, error)
	// rowSums returns shares of the row sums of x (lay: Rows x In by In x 1).
	rowSums(ctx context.Context, conn Conn, lay polymat.Layout, x share.Vector) (share.Vector, error)
	// scores and context are the shared products Q·Kᵀ and A·V, every
	// head in one call (sharedmul.Layout).
	scores(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error)
	context(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error)
	// polys evaluates the registry's fn of degree degs[i] on xs[i], every
	// item in one call (elementwise's Polys: one round trip).
	polys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, xs []share.Vector) ([]share.Vector, error)
	// mulScaledPolys is w[i] ⊙ xs[i] ⊙ fn(ys[i]) of degree degs[i], every
	// item in one call (elementwise's MulScaledPolys), w the server's
	// plaintexts (nil for the client).
	mulScaledPolys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, w [][]float64, xs, ys []share.Vector) ([]share.Vector, error)
	// mul is the Hadamard product, square x ⊙ x.
	mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error)
	square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error)
	// mulScaled is w ⊙ x ⊙ y with the server's plaintext w (nil for the
	// client).
	mulScaled(ctx context.Context, conn Conn, w []float64, x, y share.Vector) (share.Vector, error)
	// constant adds round(2^F·c[k % len(c)]) to the server's share x in
	// place; the client's share is left as it is.
	constant(x share.Vector, c []float64) error
	// mark ends a step of the benchmark's breakdown (server only).
	mark(step string)
}

type serverParty struct{ *Server }

func (s serverParty) params() Parameters { return s.p }

func (serverParty) client() bool { return false }

func (s serverParty) linear(ctx context.Context, conn Conn, lay polymat.Layout, w *matmul.Weights, x share.Vector) (share.Vector, error) {
	return s.mm.MatMul(ctx, conn, lay, w, x)
}

func (s serverParty) rowSums(ctx context.Context, conn Conn, lay polymat.Layout, x share.Vector) (share.Vector, error) {
	ones := make([]float64, lay.In)
	for k := range ones {
		ones[k] = 1
	}
	w, err := matmul.NewWeightsOnTheFly(s.p.sums, lay, ones, nil)
	if err != nil {
		return nil, err
	}
	return s.sums.MatMul(ctx, conn, lay, w, x)
}

func (s serverParty) scores(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error) {
	return s.Server.scores.Mul(ctx, conn, lay, x, y)
}

func (s serverParty) context(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error) {
	return s.values.Mul(ctx, conn, lay, x, y)
}

func (s serverParty) polys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, xs []share.Vector) ([]share.Vector, error) {
	items := make([]elementwise.PolyItem, len(xs))
	for i, x := range xs {
		items[i] = elementwise.PolyItem{Fn: fn, Deg: degs[i], X: x}
	}
	return s.ew.Polys(ctx, conn, items)
}

func (s serverParty) mulScaledPolys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, w [][]float64, xs, ys []share.Vector) ([]share.Vector, error) {
	items := make([]elementwise.ScaledPolyItem, len(xs))
	for i := range xs {
		items[i] = elementwise.ScaledPolyItem{Fn: fn, Deg: degs[i], W: w[i], X: xs[i], Y: ys[i]}
	}
	return s.ew.MulScaledPolys(ctx, conn, items)
}

func (s serverParty) mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	return s.ew.Mul(ctx, conn, x, y)
}

func (s serverParty) square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error) {
	return s.ew.Square(ctx, conn, x)
}

func (s serverParty) mulScaled(ctx context.Context, conn Conn, w []float64, x, y share.Vector) (share.Vector, error) {
	return s.ew.MulScaled(ctx, conn, w, x, y)
}

func (s serverParty) constant(x share.Vector, c []float64) error {
	return addConst(x, c, s.p.FracBits())
}

type clientParty struct{ *Client }

func (c clientParty) params() Parameters { return c.p }

func (clientParty) client() bool { return true }

func (c clientParty) linear(ctx context.Context, conn Conn, lay polymat.Layout, _ *matmul.Weights, x share.Vector) (share.Vector, error) {
	return c.mm.MatMul(ctx, conn, lay, x)
}

func (c clientParty) rowSums(ctx context.Context, conn Conn, lay polymat.Layout, x share.Vector) (share.Vector, error) {
	return c.sums.MatMul(ctx, conn, lay, x)
}

func (c clientParty) scores(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error) {
	return c.Client.scores.Mul(ctx, conn, lay, x, y)
}

func (c clientParty) context(ctx context.Context, conn Conn, lay sharedmul.Layout, x, y share.Vector) (share.Vector, error) {
	return c.values.Mul(ctx, conn, lay, x, y)
}

func (c clientParty) polys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, xs []share.Vector) ([]share.Vector, error) {
	levels := make([]int, len(degs))
	for i, d := range degs {
		l, ok := c.p.levels[fn][d]
		if !ok {
			return nil, fmt.Errorf("%s/%s: no level", fn, d)
		}
		levels[i] = l
	}
	return c.ew.Polys(ctx, conn, levels, xs)
}

func (c clientParty) mulScaledPolys(ctx context.Context, conn Conn, fn approx.Func, degs []approx.Degree, _ [][]float64, xs, ys []share.Vector) ([]share.Vector, error) {
	levels := make([]int, len(degs))
	for i, d := range degs {
		l, ok := c.p.levels[fn][d]
		if !ok {
			return nil, fmt.Errorf("%s/%s: no level", fn, d)
		}
		levels[i] = l + 1 // elementwise's MulPolyLevel
	}
	return c.ew.MulScaledPolys(ctx, conn, levels, xs, ys)
}

func (c clientParty) mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	return c.ew.Mul(ctx, conn, x, y)
}

func (c clientParty) square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error) {
	return c.ew.Square(ctx, conn, x)
}

func (c clientParty) mulScaled(ctx context.Context, conn Conn, _ []float64, x, y share.Vector) (share.Vector, error) {
	return c.ew.MulScaled(ctx, conn, x, y)
}

func (clientParty) constant(share.Vector, []float64) error { return nil }

func (clientParty) mark(string) {}
