package ckks

import (
	"context"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// LayerNorm normalizes every token row of x: (x - mean)·InvSqrt(var + eps)
// ·gamma + beta, with the registry's InvSqrt of each token's degree:
//
//	S   = Σ_j x_j                      (rotations, no level)
//	z_s = x/√d - S/(d√d)               (1 level; values stay small)
//	var = Σ_j z_s²                     (1 level)
//	r   = InvSqrt(var + eps)           (change of basis 1 + polynomial)
//	y   = (x·γ - S·γ/d)·r + β          (γ on a parallel level, then 1)
//
// The statistics (one ciphertext per matrix) are refreshed alone when
// levels run out, never the whole matrix.
func (ev *Evaluator) LayerNorm(ctx context.Context, x *CtMatrix, ln *models.LayerNorm, degs DegreeSet, br Refresher, tr *Trace) (*CtMatrix, error) {
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	lay := x.Layout
	d := float64(lay.Cols)
	if len(ln.Gamma) != lay.Cols || len(ln.Beta) != lay.Cols {
		return nil, fmt.Errorf("cannot LayerNorm: %d gammas for %d columns", len(ln.Gamma), lay.Cols)
	}
	c, B := lay.ColsPerCt(), lay.Block
	cts := append([]*rlwe.Ciphertext(nil), x.Cts...)
	if err := ev.ensure(ctx, br, tr, "layernorm stats", 2, cts); err != nil {
		return nil, err
	}
	w0 := ev.workers[0]
	var sum *rlwe.Ciphertext
	for _, ct := range cts {
		if err := w0.addInto(&sum, ct); err != nil {
			return nil, fmt.Errorf("cannot LayerNorm: %w", err)
		}
	}
	S, err := w0.rotateSum(sum, B, c)
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	// Mean-centred, scaled rows and their squares.
	sq := make([]*rlwe.Ciphertext, len(cts))
	sd, err := w0.mulConstNew(S, 1/(d*math.Sqrt(d)))
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	err = ev.parallel(ctx, len(cts), func(w *worker, a int) error {
		zs, err := w.mulConstNew(cts[a], 1/math.Sqrt(d))
		if err != nil {
			return err
		}
		if err := w.eval.Sub(zs, sd, zs); err != nil {
			return err
		}
		sq[a], err = w.eval.MulNew(zs, zs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	var v *rlwe.Ciphertext
	for _, s := range sq {
		if err := w0.addInto(&v, s); err != nil {
			return nil, fmt.Errorf("cannot LayerNorm: %w", err)
		}
	}
	if err := w0.eval.Relinearize(v, v); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	if err := w0.rescale(v); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	if v, err = w0.rotateSum(v, B, c); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	// Block padding rows (i >= n) have variance 0: move them into the
	// interval (their outputs are zeroed by γ below).
	if pad := ghostRows(lay); pad != nil {
		if err := w0.eval.Add(v, pad, v); err != nil {
			return nil, fmt.Errorf("cannot LayerNorm: %w", err)
		}
	}
	if err := w0.eval.Add(v, ln.Eps, v); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	stats := []*rlwe.Ciphertext{v}
	if err := ev.applyRefreshing(ctx, br, tr, "layernorm invsqrt", approx.InvSqrt, degs, lay, 0, stats); err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	r := stats[0]
	// y = (x·γ - S·γ/d)·r + β.
	rs := []*rlwe.Ciphertext{r, S}
	if err := ev.ensure(ctx, br, tr, "layernorm affine", 2, cts, rs[1:]); err != nil {
		return nil, err
	}
	if err := ev.ensure(ctx, br, tr, "layernorm affine", 1, rs[:1]); err != nil {
		return nil, err
	}
	r, S = rs[0], rs[1]
	out := &CtMatrix{Layout: lay, Cts: make([]*rlwe.Ciphertext, len(cts))}
	err = ev.parallel(ctx, len(cts), func(w *worker, a int) error {
		gv, gd, bv := make([]float64, lay.Slots), make([]float64, lay.Slots), make([]float64, lay.Slots)
		for p := 0; p < c; p++ {
			j := a*c + p
			if j >= lay.Cols {
				break
			}
			for i := 0; i < lay.Rows; i++ {
				gv[p*B+i] = ln.Gamma[j]
				gd[p*B+i] = ln.Gamma[j] / d
				bv[p*B+i] = ln.Beta[j]
			}
		}
		level := min(cts[a].Level(), S.Level())
		xa := cts[a]
		if xa.Level() > level {
			xa = w.eval.DropLevelNew(xa, xa.Level()-level)
		}
		sa := S
		if sa.Level() > level {
			sa = w.eval.DropLevelNew(sa, sa.Level()-level)
		}
		ptG, err := w.encode(gv, level, w.levelScale(level))
		if err != nil {
			return err
		}
		// Scale of the S·γ/d plaintext so that both products share x's scale.
		ptD, err := w.encode(gd, level, xa.Scale.Mul(w.levelScale(level)).Div(sa.Scale))
		if err != nil {
			return err
		}
		zg := hefloat.NewCiphertext(w.params, 1, level)
		if err := w.eval.Mul(xa, ptG, zg); err != nil {
			return err
		}
		tmp := hefloat.NewCiphertext(w.params, 1, level)
		if err := w.eval.Mul(sa, ptD, tmp); err != nil {
			return err
		}
		tmp.Scale = zg.Scale
		if err := w.eval.Sub(zg, tmp, zg); err != nil {
			return err
		}
		if err := w.rescale(zg); err != nil {
			return err
		}
		y, err := w.mulRelinNew(zg, r)
		if err != nil {
			return err
		}
		if err := w.eval.Add(y, bv, y); err != nil {
			return err
		}
		out.Cts[a] = y
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot LayerNorm: %w", err)
	}
	return out, nil
}
