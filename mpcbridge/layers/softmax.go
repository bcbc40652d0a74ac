package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// heads is the public geometry of one attention call: n rows of hidden
// values in h heads of dh, of which the first nq are queries (all n but in
// a model's last layer), and the valid rows (the keys every query attends
// to, and the queries the importance scores average over).
// Scores and probabilities are laid out row by row, then head by head,
// then key by key: (i·h + head)·len(keys) + k, so that a span of rows is
// contiguous and each (row, head) holds its len(keys) keys in a run.
type heads struct {
	n, nq, h, dh, hidden int
	keys                 []int
	// secret is set when the valid rows are the client's secret: keys
	// holds every row, and valid the client's flags (nil for the server).
	secret bool
	valid  []bool
}

// newHeads checks rows for n rows of shape s.
func newHeads(s AttnShape, n int, rows Rows) (heads, error) {
	hd := heads{n: n, nq: n, h: s.Heads, dh: s.HeadDim(), hidden: s.Hidden, secret: rows.Hidden, valid: rows.Valid}
	if rows.Valid != nil && len(rows.Valid) != n {
		return hd, fmt.Errorf("%d valid flags for %d rows", len(rows.Valid), n)
	}
	if rows.Queries < 0 || rows.Queries > n {
		return hd, fmt.Errorf("%d query rows of %d", rows.Queries, n)
	}
	if rows.Queries > 0 {
		hd.nq = rows.Queries
	}
	for i := 0; i < n; i++ {
		if rows.Hidden || rows.Valid == nil || rows.Valid[i] {
			hd.keys = append(hd.keys, i)
		}
	}
	if len(hd.keys) == 0 {
		return hd, fmt.Errorf("no valid row among %d", n)
	}
	return hd, nil
}

// at returns the index of (row i, head, key k) in the scores' layout.
func (hd heads) at(i, head, k int) int { return (i*hd.h+head)*len(hd.keys) + k }

// queries returns every head's scaled queries from qkv (n x 3·hidden): nq
// x hidden, head h in columns h·dh to (h+1)·dh.
func (hd heads) queries(qkv share.Vector) share.Vector {
	out := make(share.Vector, 0, hd.nq*hd.hidden)
	for i := 0; i < hd.nq; i++ {
		base := i * 3 * hd.hidden
		out = append(out, qkv[base:base+hd.hidden]...)
	}
	return out
}

// keysT returns head's keys of the valid rows, transposed: dh x len(keys).
func (hd heads) keysT(qkv share.Vector, head int) share.Vector {
	nk := len(hd.keys)
	out := make(share.Vector, hd.dh*nk)
	for k, j := range hd.keys {
		base := j*3*hd.hidden + hd.hidden + head*hd.dh
		for c := 0; c < hd.dh; c++ {
			out[c*nk+k] = qkv[base+c]
		}
	}
	return out
}

// values returns head's values of the valid rows: len(keys) x dh.
func (hd heads) values(qkv share.Vector, head int) share.Vector {
	out := make(share.Vector, 0, len(hd.keys)*hd.dh)
	for _, j := range hd.keys {
		base := j*3*hd.hidden + 2*hd.hidden + head*hd.dh
		out = append(out, qkv[base:base+hd.dh]...)
	}
	return out
}

// softmax returns shares of the attention probabilities of every row,
// head and valid key (the layout of heads): the scores Q_h·K_hᵀ per head
// (the queries carry 1/√dh), minus the public shift (the server's share
// only), exp of each row's degree, the row sums by a product with public
// all-ones weights (the sums' shares would outgrow the slot codec if added
// locally), their reciprocal, and the normalization, a Hadamard product
// with the reciprocal repeated over the keys. With a single key there is
// nothing to compute: every probability is 1 (the approximate forward's
// e·(1/e) is 1 within its polynomials' error).
func softmax(ctx context.Context, pt party, conn Conn, hd heads, sp []span, qkv share.Vector) (share.Vector, error) {
	p := pt.params()
	nk := len(hd.keys)
	if nk == 1 {
		// One key: every probability is 1, which the public count says.
		a := make(share.Vector, hd.nq*hd.h)
		if !pt.client() {
			for k := range a {
				a[k] = share.Int128FromInt64(1 << p.FracBits())
			}
		}
		return a, nil
	}
	// Every head in one call: [Q_1 | ... | Q_h]·diag(K_1ᵀ, ..., K_hᵀ) is
	// n x h·nk, row by row, then head by head, then key by key: the
	// scores' layout.
	lay, err := p.scores.ChooseBlock(polymat.Dims{Rows: hd.nq, In: hd.dh, Out: nk}, hd.h)
	if err != nil {
		return nil, fmt.Errorf("scores: %w", err)
	}
	keys := make(share.Vector, 0, hd.h*hd.dh*nk)
	for head := 0; head < hd.h; head++ {
		keys = append(keys, hd.keysT(qkv, head)...)
	}
	s, err := pt.scores(ctx, conn, lay, hd.queries(qkv), keys)
	if err != nil {
		return nil, fmt.Errorf("scores: %w", err)
	}
	pt.mark("scores")
	if err := pt.constant(s, []float64{-p.lit.SoftmaxShift}); err != nil {
		return nil, err
	}
	e, err := polySpans(ctx, pt, conn, approx.Exp, sp, hd.h*nk, s)
	if err != nil {
		return nil, fmt.Errorf("exp: %w", err)
	}
	pt.mark("exp")
	if hd.secret {
		if e, err = pt.mul(ctx, conn, e, hd.keyMask(pt)); err != nil {
			return nil, fmt.Errorf("key mask: %w", err)
		}
		pt.mark("keymask")
	}
	sums, err := rowSums(ctx, pt, conn, hd.nq*hd.h, nk, e)
	if err != nil {
		return nil, fmt.Errorf("softmax sums: %w", err)
	}
	pt.mark("sums")
	r, err := polySpans(ctx, pt, conn, approx.Reciprocal, sp, hd.h, sums)
	if err != nil {
		return nil, fmt.Errorf("1/Σ: %w", err)
	}
	pt.mark("reciprocal")
	a, err := pt.mul(ctx, conn, e, repeat(r, nk))
	if err != nil {
		return nil, fmt.Errorf("normalization: %w", err)
	}
	pt.mark("normalize")
	return a, nil
}

// rowSums returns shares of the sums of the rows of x (rows x cols).
func rowSums(ctx context.Context, pt party, conn Conn, rows, cols int, x share.Vector) (share.Vector, error) {
	sums := pt.params().sums
	d := polymat.Dims{Rows: rows, In: cols, Out: 1}
	c, err := sums.ChooseBlock(d, 0)
	if err != nil {
		return nil, err
	}
	lay, err := polymat.NewLayout(sums.Ring(), d, c.Block)
	if err != nil {
		return nil, err
	}
	return pt.rowSums(ctx, conn, lay, x)
}

// contextVectors returns shares of concat_h(A_h·V_h) (n x hidden) from the
// probabilities (the layout of heads) and qkv; with a single key, whose
// probabilities are 1, the key's values themselves.
func contextVectors(ctx context.Context, pt party, conn Conn, hd heads, probs, qkv share.Vector) (share.Vector, error) {
	nk := len(hd.keys)
	if nk == 1 {
		// Every probability is 1: each row's context is the key's value.
		out := make(share.Vector, hd.nq*hd.hidden)
		for head := 0; head < hd.h; head++ {
			v := hd.values(qkv, head)
			for i := 0; i < hd.nq; i++ {
				copy(out[i*hd.hidden+head*hd.dh:], v)
			}
		}
		return out, nil
	}
	// Every head in one call: the probabilities are [A_1 | ... | A_h]
	// (n x h·nk) as they are laid out, and [A_1·V_1 | ... | A_h·V_h] the
	// context vectors, n x hidden.
	lay, err := pt.params().values.ChooseBlock(polymat.Dims{Rows: hd.nq, In: nk, Out: hd.dh}, hd.h)
	if err != nil {
		return nil, fmt.Errorf("A·V: %w", err)
	}
	vals := make(share.Vector, 0, hd.h*nk*hd.dh)
	for head := 0; head < hd.h; head++ {
		vals = append(vals, hd.values(qkv, head)...)
	}
	out, err := pt.context(ctx, conn, lay, probs, vals)
	if err != nil {
		return nil, fmt.Errorf("A·V: %w", err)
	}
	pt.mark("context")
	return out, nil
}

// keyMask returns the party's share of the key mask in the scores'
// layout: the client's is round(2^F·valid_j), the server's zero.
func (hd heads) keyMask(pt party) share.Vector {
	out := make(share.Vector, hd.nq*hd.h*len(hd.keys))
	if !pt.client() {
		return out
	}
	one := share.Int128FromInt64(1 << pt.params().FracBits())
	for k := range out {
		if hd.valid[k%hd.n] {
			out[k] = one
		}
	}
	return out
}

// importance returns each row's share of its score, the attention it
// receives averaged over the heads and the valid query rows, at
// ScoreFracBits (F + 4) fractional bits. With public valid rows each party
// rounds its own sum, round(2^4·Σ_head Σ_{i valid} A[i, head, j] / (h·m))
// (the two roundings err by one unit at most). With secret ones each party
// first divides its share of Σ_head A by h (one unit of error per entry,
// which the average over the rows dilutes), then the average over the
// queries is a shared product of these means, transposed (n x n, entries
// at most 1), by the client's weights 2^4·valid_i/m (its share, at most
// 2^4; the server's is zero): the product's F-bit output is the score at
// F + 4 bits. Padding rows score 0 (exactly with public rows, up to the
// noise with secret ones).
func importance(ctx context.Context, pt party, conn Conn, hd heads, probs share.Vector) (share.Vector, error) {
	if !hd.secret {
		return hd.localImportance(probs), nil
	}
	p := pt.params()
	lay, err := p.values.ChooseBlock(polymat.Dims{Rows: hd.n, In: hd.n, Out: 1}, 1)
	if err != nil {
		return nil, fmt.Errorf("importance: %w", err)
	}
	// mean[j·n + i] = Σ_head A[i, head, j] / h: row j holds key j's column.
	mean := make(share.Vector, hd.n*hd.n)
	for i := 0; i < hd.n; i++ {
		for head := 0; head < hd.h; head++ {
			for j, v := range probs[hd.at(i, head, 0):hd.at(i, head, hd.n)] {
				mean[j*hd.n+i] = mean[j*hd.n+i].Add(v)
			}
		}
	}
	for k := range mean {
		mean[k] = divRound(mean[k], uint64(hd.h))
	}
	w := make(share.Vector, hd.n)
	if pt.client() {
		m := 0
		for _, v := range hd.valid {
			if v {
				m++
			}
		}
		for i, v := range hd.valid {
			if v {
				w[i] = divRound(share.Int128FromInt64(1<<p.ScoreFracBits()), uint64(m))
			}
		}
	}
	s, err := pt.context(ctx, conn, lay, mean, w)
	if err != nil {
		return nil, fmt.Errorf("importance: %w", err)
	}
	pt.mark("importance")
	return s, nil
}

// localImportance is importance with public valid rows: local sums, at
// ScoreFracBits.
func (hd heads) localImportance(probs share.Vector) share.Vector {
	out := make(share.Vector, hd.n)
	d := uint64(hd.h * len(hd.keys))
	for k, j := range hd.keys {
		var s share.Int128
		for _, i := range hd.keys {
			for head := 0; head < hd.h; head++ {
				s = s.Add(probs[hd.at(i, head, k)])
			}
		}
		out[j] = divRound(shiftLeft(s, ScoreExtraBits), d)
	}
	return out
}

// shiftLeft returns 2^k·x (x and the result within 127 bits).
func shiftLeft(x share.Int128, k int) share.Int128 {
	for ; k > 0; k-- {
		x = x.Add(x)
	}
	return x
}
