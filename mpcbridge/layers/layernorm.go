package layers

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
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
// Three round trips (Square, InvSqrt per degree span, MulScaled); the
// package documentation gives the protocol and the bounds: every centred
// value |x - mean| <= 2^(B/2), var + ε inside the InvSqrt interval,
// |γ| <= 2^B and |LayerNorm(x) - β| <= 2^B.
func (s *Server) LayerNorm(ctx context.Context, conn Conn, ln *models.LayerNorm, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	y, err := s.layerNorm(ctx, conn, ln, degs, x)
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	return y, nil
}

func (s *Server) layerNorm(ctx context.Context, conn Conn, ln *models.LayerNorm, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	if err := s.p.checkNorm(ln); err != nil {
		return nil, err
	}
	cols := len(ln.Gamma)
	rows, err := checkRows(x, cols)
	if err != nil {
		return nil, err
	}
	sp, err := spans(degs, rows)
	if err != nil {
		return nil, err
	}
	f := s.p.FracBits()
	z := centre(x, rowMeans(x, cols), cols)
	sq, err := s.ew.Square(ctx, conn, z)
	if err != nil {
		return nil, fmt.Errorf("variance: %w", err)
	}
	s.mark("square")
	v := rowMeans(sq, cols)
	if err := addConst(v, []float64{ln.Eps}, f); err != nil {
		return nil, err
	}
	r := make(share.Vector, rows)
	for _, p := range sp {
		out, err := s.ew.Poly(ctx, conn, approx.InvSqrt, p.deg, v[p.lo:p.hi])
		if err != nil {
			return nil, fmt.Errorf("1/√(var + ε): %w", err)
		}
		copy(r[p.lo:], out)
	}
	s.mark("invsqrt")
	w := make([]float64, len(x))
	for k := range w {
		w[k] = ln.Gamma[k%cols]
	}
	y, err := s.ew.MulScaled(ctx, conn, w, z, repeat(r, cols))
	if err != nil {
		return nil, fmt.Errorf("normalization: %w", err)
	}
	if err := addConst(y, ln.Beta, f); err != nil {
		return nil, err
	}
	s.mark("mulscaled")
	return y, nil
}

// LayerNorm runs the client's side of Server.LayerNorm: x is its share
// (rows x cols), degs the rows' public degrees (nil: all approx.High).
func (c *Client) LayerNorm(ctx context.Context, conn Conn, cols int, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	y, err := c.layerNorm(ctx, conn, cols, degs, x)
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	return y, nil
}

func (c *Client) layerNorm(ctx context.Context, conn Conn, cols int, degs []approx.Degree, x share.Vector) (share.Vector, error) {
	rows, err := checkRows(x, cols)
	if err != nil {
		return nil, err
	}
	sp, err := spans(degs, rows)
	if err != nil {
		return nil, err
	}
	z := centre(x, rowMeans(x, cols), cols)
	sq, err := c.ew.Square(ctx, conn, z)
	if err != nil {
		return nil, fmt.Errorf("variance: %w", err)
	}
	v := rowMeans(sq, cols)
	r := make(share.Vector, rows)
	for _, p := range sp {
		level, err := c.p.ew.PolyLevel(c.p.reg, approx.InvSqrt, p.deg)
		if err != nil {
			return nil, err
		}
		out, err := c.ew.Poly(ctx, conn, level, v[p.lo:p.hi])
		if err != nil {
			return nil, fmt.Errorf("1/√(var + ε): %w", err)
		}
		copy(r[p.lo:], out)
	}
	y, err := c.ew.MulScaled(ctx, conn, z, repeat(r, cols))
	if err != nil {
		return nil, fmt.Errorf("normalization: %w", err)
	}
	return y, nil
}
