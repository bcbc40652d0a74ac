package ckks

import (
	"context"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/utils/bignum"

	"github.com/cipherprune/cipherprune/models/approx"
)

// recipeDepth returns the levels rec consumes from its input when the
// change of basis is (folded) or is not (!folded) already applied.
func recipeDepth(rec *approx.Recipe, folded bool) int {
	c := rec.Cost()
	if folded {
		return c.Depth - c.ChangeOfBasisDepth
	}
	return c.Depth
}

// funcDepth returns the levels fn consumes on tokens of the given degrees:
// the deeper variant, plus one level to merge the variants when both occur.
func (ev *Evaluator) funcDepth(fn approx.Func, degs DegreeSet, folded bool) int {
	d := 0
	used := effectiveDegrees(ev.reg, fn, degs)
	for _, dg := range used {
		if x := recipeDepth(ev.reg.Recipe(fn, dg), folded); x > d {
			d = x
		}
	}
	if len(used) > 1 {
		d++
	}
	return d
}

// sameRecipe reports whether two recipes compute the same function (the
// registry's Low is often a copy of High).
func sameRecipe(a, b *approx.Recipe) bool {
	if a.Post() != b.Post() || a.Steps() != b.Steps() || a.InputScale() != b.InputScale() || a.PolyDegree() != b.PolyDegree() {
		return false
	}
	ca, cb := a.Coeffs(), b.Coeffs()
	for i := range ca {
		if ca[i] != cb[i] {
			return false
		}
	}
	return true
}

// effectiveDegrees returns the variants fn needs for degs: one when every
// token uses the same variant or when both variants are the same recipe.
func effectiveDegrees(reg *approx.Registry, fn approx.Func, degs DegreeSet) []approx.Degree {
	used := degs.used()
	if len(used) == 2 && sameRecipe(reg.Recipe(fn, approx.High), reg.Recipe(fn, approx.Low)) {
		return used[:1]
	}
	return used
}

// changeOfBasis returns scalar·x + constant with the recipe's map onto
// [-1, 1], rescaled if the scalar is not an integer.
func (w *worker) changeOfBasis(rec *approx.Recipe, x *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	scalar, constant := rec.ChangeOfBasis()
	t, err := w.mulConstNew(x, scalar)
	if err != nil {
		return nil, err
	}
	if err := w.eval.Add(t, constant, t); err != nil {
		return nil, err
	}
	return t, nil
}

// evalRecipe evaluates rec on t = scalar·x + constant (the change of basis
// already applied, possibly folded into a plaintext layer). x, the raw
// input, is used only by Newton steps and may be nil without them.
func (w *worker) evalRecipe(rec *approx.Recipe, t, x *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	y, err := w.evalPoly(rec, t)
	if err != nil {
		return nil, err
	}
	return w.evalPost(rec, x, y)
}

// evalPoly evaluates rec's polynomial alone on t = scalar·x + constant.
func (w *worker) evalPoly(rec *approx.Recipe, t *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	a, b := rec.Interval()
	poly := bignum.NewPolynomial(bignum.Chebyshev, rec.Coeffs(), [2]float64{a, b})
	poly.IsOdd, poly.IsEven = rec.Parity()
	y, err := w.poly.Evaluate(t, poly, w.params.DefaultScale())
	if err != nil {
		return nil, fmt.Errorf("cannot evaluate %s/%s polynomial: %w", rec.Func(), rec.Variant(), err)
	}
	return y, nil
}

// evalPost applies rec's post-processing (squarings, or Newton steps on the
// raw input x, and the output constant) to the polynomial's output y.
func (w *worker) evalPost(rec *approx.Recipe, x, y *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	var err error
	s := rec.InputScale()
	switch rec.Post() {
	case approx.PostSquare:
		for i := 0; i < rec.Steps(); i++ {
			if y, err = w.mulRelinNew(y, y); err != nil {
				return nil, err
			}
		}
	case approx.PostNewtonInverse:
		if rec.Steps() > 0 {
			if x == nil {
				return nil, fmt.Errorf("cannot evaluate %s: Newton steps need the raw input", rec.Func())
			}
			u := x
			if s != 1 {
				if u, err = w.mulConstNew(x, s); err != nil {
					return nil, err
				}
			}
			for i := 0; i < rec.Steps(); i++ {
				uy, err := w.mulRelinNew(u, y)
				if err != nil {
					return nil, err
				}
				if err := w.eval.Mul(uy, -1, uy); err != nil {
					return nil, err
				}
				if err := w.eval.Add(uy, 2, uy); err != nil {
					return nil, err
				}
				if y, err = w.mulRelinNew(y, uy); err != nil {
					return nil, err
				}
			}
		}
		if rec.OutputScale() != 1 {
			if y, err = w.mulConstNew(y, rec.OutputScale()); err != nil {
				return nil, err
			}
		}
	case approx.PostNewtonInvSqrt:
		if rec.Steps() > 0 {
			if x == nil {
				return nil, fmt.Errorf("cannot evaluate %s: Newton steps need the raw input", rec.Func())
			}
			h, err := w.mulConstNew(x, s/2)
			if err != nil {
				return nil, err
			}
			for i := 0; i < rec.Steps(); i++ {
				hy, err := w.mulRelinNew(h, y)
				if err != nil {
					return nil, err
				}
				yy, err := w.mulRelinNew(y, y)
				if err != nil {
					return nil, err
				}
				tt, err := w.mulRelinNew(hy, yy)
				if err != nil {
					return nil, err
				}
				// 1.5·y with a constant whose scale lands on tt's scale.
				pt := hefloat.NewPlaintext(w.params, y.Level())
				pt.Scale = tt.Scale.Mul(rlwe.NewScale(w.params.Q()[y.Level()])).Div(y.Scale)
				c := make([]float64, w.params.MaxSlots())
				for j := range c {
					c[j] = 1.5
				}
				if err := w.enc.Encode(c, pt); err != nil {
					return nil, err
				}
				y1, err := w.eval.MulNew(y, pt)
				if err != nil {
					return nil, err
				}
				if err := w.rescale(y1); err != nil {
					return nil, err
				}
				if err := w.eval.Sub(y1, tt, y1); err != nil {
					return nil, err
				}
				y = y1
			}
		}
		if rec.OutputScale() != 1 {
			if y, err = w.mulConstNew(y, rec.OutputScale()); err != nil {
				return nil, err
			}
		}
	}
	return y, nil
}

// DegreeSet is the degree of each token row (slot offset within a block):
// nil or empty means every token uses High.
type DegreeSet []approx.Degree

// Mixed reports whether both variants occur.
func (d DegreeSet) Mixed() bool {
	hi, lo := d.counts()
	return hi > 0 && lo > 0
}

func (d DegreeSet) counts() (hi, lo int) {
	for _, x := range d {
		if x == approx.Low {
			lo++
		} else {
			hi++
		}
	}
	if len(d) == 0 {
		hi = 1
	}
	return
}

// used returns the variants that occur, High first.
func (d DegreeSet) used() []approx.Degree {
	hi, lo := d.counts()
	var out []approx.Degree
	if hi > 0 {
		out = append(out, approx.High)
	}
	if lo > 0 {
		out = append(out, approx.Low)
	}
	return out
}

// evalByDegree evaluates fn on t (change of basis applied; x the raw input
// for Newton steps, may be nil) with each token's variant: one polynomial
// when every token of the layout uses the same variant, otherwise both,
// merged with 0/1 token masks (one more level).
func (w *worker) evalByDegree(reg *approx.Registry, fn approx.Func, degs DegreeSet, lay Layout, t, x *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	used := effectiveDegrees(reg, fn, degs)
	if len(used) == 1 {
		return w.evalRecipe(reg.Recipe(fn, used[0]), t, x)
	}
	var out *rlwe.Ciphertext
	for _, dg := range used {
		y, err := w.evalRecipe(reg.Recipe(fn, dg), t, x)
		if err != nil {
			return nil, err
		}
		mask := lay.TokenVector(func(i int) float64 {
			if i < len(degs) && degs[i] == dg {
				return 1
			}
			return 0
		})
		if dg == approx.High { // rows beyond degs (block padding) follow High
			for b := 0; b < lay.Slots; b += lay.Block {
				for i := len(degs); i < lay.Block; i++ {
					mask[b+i] = 1
				}
			}
		}
		ym, err := w.mulVecNew(y, mask)
		if err != nil {
			return nil, err
		}
		if err := w.addInto(&out, ym); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ApplyFunc evaluates the registry's approximation of fn on every entry of
// x, token i with variant degs[i] (nil: all High). It applies the change of
// basis itself (one level unless its scalar is an integer); the layer
// evaluator folds it into the preceding plaintext layer instead. It consumes
// FuncDepth(fn, degs, false) levels and does not refresh.
func (ev *Evaluator) ApplyFunc(ctx context.Context, fn approx.Func, x *CtMatrix, degs DegreeSet) (*CtMatrix, error) {
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("cannot ApplyFunc: %w", err)
	}
	if need := ev.funcDepth(fn, degs, false); x.Level() < need {
		return nil, fmt.Errorf("cannot ApplyFunc: %s needs %d levels, input has %d", fn, need, x.Level())
	}
	out := &CtMatrix{Layout: x.Layout, Cts: make([]*rlwe.Ciphertext, len(x.Cts))}
	rec := ev.reg.Recipe(fn, approx.High) // the interval is shared by both variants
	err := ev.parallel(ctx, len(x.Cts), func(w *worker, i int) error {
		t, err := w.changeOfBasis(rec, x.Cts[i])
		if err != nil {
			return err
		}
		out.Cts[i], err = w.evalByDegree(ev.reg, fn, degs, x.Layout, t, x.Cts[i])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot ApplyFunc: %w", err)
	}
	return out, nil
}

// FuncDepth returns the levels ApplyFunc consumes for fn on tokens of the
// given degrees (folded: with the change of basis already applied).
func (ev *Evaluator) FuncDepth(fn approx.Func, degs DegreeSet, folded bool) int {
	return ev.funcDepth(fn, degs, folded)
}
