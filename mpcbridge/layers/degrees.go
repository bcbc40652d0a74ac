package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// span is a maximal run of rows [lo, hi) with one degree: each is one call
// of a polynomial (one round trip). After a pruning step the rows come
// grouped (CLS and the high-degree rows, then the low-degree rows), so a
// stage makes at most two calls per polynomial.
type span struct {
	deg    approx.Degree
	lo, hi int
}

// spans splits rows by degree; nil degs means every row at approx.High.
// The degrees are public (the per-layer count of low-degree tokens is
// allowed leakage), both parties pass the same.
func spans(degs []approx.Degree, rows int) ([]span, error) {
	if degs == nil {
		return []span{{approx.High, 0, rows}}, nil
	}
	if len(degs) != rows {
		return nil, fmt.Errorf("%d degrees for %d rows", len(degs), rows)
	}
	var out []span
	for i, d := range degs {
		if !d.Valid() {
			return nil, fmt.Errorf("row %d: invalid degree %d", i, d)
		}
		if len(out) > 0 && out[len(out)-1].deg == d {
			out[len(out)-1].hi = i + 1
			continue
		}
		out = append(out, span{d, i, i + 1})
	}
	return out, nil
}

// polySpans evaluates fn on x, which holds per values of each row, rows in
// order: one call per span, each at its degree, or one call for all the
// rows when fn's two degrees are one recipe (Parameters' OneRecipe).
func polySpans(ctx context.Context, pt party, conn Conn, fn approx.Func, sp []span, per int, x share.Vector) (share.Vector, error) {
	if len(sp) > 1 && pt.params().oneRecipe[fn] {
		sp = []span{{approx.High, sp[0].lo, sp[len(sp)-1].hi}}
	}
	out := make(share.Vector, len(x))
	for _, s := range sp {
		y, err := pt.poly(ctx, conn, fn, s.deg, x[s.lo*per:s.hi*per])
		if err != nil {
			return nil, err
		}
		copy(out[s.lo*per:], y)
	}
	return out, nil
}
