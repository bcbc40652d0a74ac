package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// span is a maximal run of rows [lo, hi) with one degree: one item of a
// polynomial's call (polySpans), in its own ciphertexts. After a pruning
// step the rows come grouped (CLS and the high-degree rows, then the
// low-degree rows): two items, one round trip.
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
// order: each span at its degree, all the spans in one call (one round
// trip; elementwise.Server.Polys evaluates them on its workers in
// parallel), or the rows as one item when fn's two degrees are one recipe
// (Parameters' OneRecipe). More than elementwise.MaxGroups spans (rows whose
// degrees alternate) take one call per MaxGroups.
func polySpans(ctx context.Context, pt party, conn Conn, fn approx.Func, sp []span, per int, x share.Vector) (share.Vector, error) {
	sp = pt.params().merge(fn, sp)
	out := make(share.Vector, len(x))
	for len(sp) > 0 {
		call := sp[:min(len(sp), elementwise.MaxGroups)]
		sp = sp[len(call):]
		degs, xs := make([]approx.Degree, len(call)), make([]share.Vector, len(call))
		for i, s := range call {
			degs[i], xs[i] = s.deg, x[s.lo*per:s.hi*per]
		}
		ys, err := pt.polys(ctx, conn, fn, degs, xs)
		if err != nil {
			return nil, err
		}
		for i, s := range call {
			copy(out[s.lo*per:], ys[i])
		}
	}
	return out, nil
}

// merge returns sp, or one span of all its rows at approx.High when fn's
// two degrees are one recipe (Parameters' OneRecipe).
func (p Parameters) merge(fn approx.Func, sp []span) []span {
	if len(sp) > 1 && p.oneRecipe[fn] {
		return []span{{approx.High, sp[0].lo, sp[len(sp)-1].hi}}
	}
	return sp
}

// poly evaluates fn of degree d on x: one call of one item.
func poly(ctx context.Context, pt party, conn Conn, fn approx.Func, d approx.Degree, x share.Vector) (share.Vector, error) {
	ys, err := pt.polys(ctx, conn, fn, []approx.Degree{d}, []share.Vector{x})
	if err != nil {
		return nil, err
	}
	return ys[0], nil
}
