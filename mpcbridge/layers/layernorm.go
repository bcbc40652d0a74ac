package layers

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// checkRows returns the rows of x (rows x cols, row-major).
func checkRows(x share.Vector, cols int) (int, error) {
	if cols < 1 {
		return 0, fmt.Errorf("%d columns", cols)
	}
	if len(x) == 0 || len(x)%cols != 0 {
		return 0, fmt.Errorf("%d values are not rows of %d columns", len(x), cols)
	}
	return len(x) / cols, nil
}

// checkNorm checks the server's LayerNorm weights against B: the scaled
// product refuses |γ| > 2^B, and ε must be a usable constant.
func (p Parameters) checkNorm(ln *models.LayerNorm) error {
	if ln == nil {
		return errors.New("nil LayerNorm")
	}
	if len(ln.Gamma) == 0 || len(ln.Beta) != len(ln.Gamma) {
		return fmt.Errorf("LayerNorm with %d γ and %d β", len(ln.Gamma), len(ln.Beta))
	}
	for j, b := range ln.Beta {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return fmt.Errorf("LayerNorm β[%d] is %v", j, b)
		}
	}
	if !(ln.Eps >= 0 && ln.Eps < 1) {
		return fmt.Errorf("LayerNorm ε = %v not in [0, 1)", ln.Eps)
	}
	return nil
}

// LayerNorm computes shares of LayerNorm(x) row by row,
// (x - mean)·InvSqrt(var + ε)·γ + β with the registry's InvSqrt of each
// row's degree (degs: nil for all approx.High; public), from the server's
// share x (rows x len(ln.Gamma), row-major) and its weights ln. It returns
// the server's share, same layout. The client calls Client.LayerNorm.
// Three round trips (Square, InvSqrt for every degree span, MulScaled), or
// two where the rows fit (fusedNorm: InvSqrt and MulScaled in one); the
// package documentation gives the protocol and the bounds: every centred
// value |x - mean| <= 2^(B/2), var + ε inside the InvSqrt interval,
// |γ| <= 2^B and |LayerNorm(x) - β| <= 2^B.
func (s *Server) LayerNorm(ctx context.Context, conn Conn, ln *models.LayerNorm, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	if err := s.p.checkNorm(ln); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	y, err := layerNorm(ctx, serverParty{s}, conn, ln, len(ln.Gamma), degs, x)
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	return y, nil
}

// LayerNorm runs the client's side of Server.LayerNorm: x is its share
// (rows x cols), degs the rows' public degrees (nil: all approx.High).
func (c *Client) LayerNorm(ctx context.Context, conn Conn, cols int, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	y, err := layerNorm(ctx, clientParty{c}, conn, nil, cols, degs, x)
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	return y, nil
}

// layerNorm is the stage for either party: ln is the server's weights (nil
// for the client), cols the public width.
func layerNorm(ctx context.Context, pt party, conn Conn, ln *models.LayerNorm, cols int, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	rows, err := checkRows(x, cols)
	if err != nil {
		return nil, err
	}
	sp, err := spans(degs, rows)
	if err != nil {
		return nil, err
	}
	var gamma, beta, eps []float64
	if ln != nil {
		gamma, beta, eps = make([]float64, len(x)), ln.Beta, []float64{ln.Eps}
		for k := range gamma {
			gamma[k] = ln.Gamma[k%cols]
		}
	}
	z := centre(x, rowMeans(x, cols), cols)
	k := pt.params().normShift()
	sq, err := pt.square(ctx, conn, shiftDown(z, k))
	if err != nil {
		return nil, fmt.Errorf("variance: %w", err)
	}
	pt.mark("square")
	v := shiftUp(rowMeans(sq, cols), 2*k)
	if err := pt.constant(v, eps); err != nil {
		return nil, err
	}
	var y share.Vector
	if sp = pt.params().merge(approx.InvSqrt, sp); pt.params().fusedNorm(sp, cols) {
		if y, err = normalizeFused(ctx, pt, conn, sp, cols, gamma, z, v); err != nil {
			return nil, fmt.Errorf("normalization with 1/√(var + ε): %w", err)
		}
		pt.mark("invsqrt+mulscaled")
	} else {
		r, err := polySpans(ctx, pt, conn, approx.InvSqrt, sp, 1, v)
		if err != nil {
			return nil, fmt.Errorf("1/√(var + ε): %w", err)
		}
		pt.mark("invsqrt")
		if y, err = pt.mulScaled(ctx, conn, gamma, z, repeat(r, cols)); err != nil {
			return nil, fmt.Errorf("normalization: %w", err)
		}
		pt.mark("mulscaled")
	}
	if err := pt.constant(y, beta); err != nil {
		return nil, err
	}
	return y, nil
}

// fusedNorm reports whether LayerNorm takes 1/√(v + ε) and the
// normalization in one call (normalizeFused) on the spans sp of rows of
// cols values: where repeating each row's variance over its columns adds
// no ciphertext (every span's rows·cols values fit the ciphertexts of its
// rows' values: at Elementwise14 up to 16384/cols rows, 21 of BERT-base,
// 128 of sentiment-tiny), and where the preset has the level for the
// product above 1/√x. Both parties decide alike: everything here is
// public.
func (p Parameters) fusedNorm(sp []span, cols int) bool {
	if len(sp) > elementwise.MaxGroups {
		return false
	}
	for _, s := range sp {
		n := s.hi - s.lo
		if p.ew.Ciphertexts(n*cols) != p.ew.Ciphertexts(n) {
			return false
		}
		if l, ok := p.levels[approx.InvSqrt][s.deg]; !ok || l+1 > p.ew.Params().MaxLevel() {
			return false
		}
	}
	return true
}

// NormMasks returns an upper bound of the coefficients a LayerNorm of rows
// x cols masks (mpcbridge/elementwise's calls; Server.Masked's
// Elementwise) whatever the rows' degrees, in at most two spans: the
// Square's ciphertexts, then those of the fused call, or of InvSqrt and
// MulScaled where some split of the rows is not fused (fusedNorm), one
// more ciphertext for a second span.
func (p Parameters) NormMasks(rows, cols int) int64 {
	n := int64(p.ew.Params().N())
	k := int64(2*p.ew.Ciphertexts(rows*cols)) + 1
	fused := rows*cols <= p.ew.Slots()
	for _, d := range approx.Degrees() {
		if l, ok := p.levels[approx.InvSqrt][d]; !ok || l+1 > p.ew.Params().MaxLevel() {
			fused = false
		}
	}
	if !fused {
		k += int64(p.ew.Ciphertexts(rows))
	}
	return k * n
}

// normalizeFused returns shares of γ_j·z_ij·InvSqrt(v_i) in one call of
// elementwise's MulScaledPolys, one item per span: z and γ (gamma, the
// server's, repeated over the rows; nil for the client) as they are, v
// repeated over each row's cols columns.
func normalizeFused(ctx context.Context, pt party, conn Conn, sp []span, cols int, gamma []float64, z, v share.Vector) (share.Vector, error) {
	degs := make([]approx.Degree, len(sp))
	ws, xs, ys := make([][]float64, len(sp)), make([]share.Vector, len(sp)), make([]share.Vector, len(sp))
	for i, s := range sp {
		degs[i], xs[i], ys[i] = s.deg, z[s.lo*cols:s.hi*cols], repeat(v[s.lo:s.hi], cols)
		if gamma != nil {
			ws[i] = gamma[s.lo*cols : s.hi*cols]
		}
	}
	out, err := pt.mulScaledPolys(ctx, conn, approx.InvSqrt, degs, ws, xs, ys)
	if err != nil {
		return nil, err
	}
	y := make(share.Vector, len(z))
	for i, s := range sp {
		copy(y[s.lo*cols:], out[i])
	}
	return y, nil
}
