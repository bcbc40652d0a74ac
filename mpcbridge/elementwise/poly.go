package elementwise

import (
	"context"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/utils/bignum"

	"github.com/cipherprune/cipherprune/models/approx"
)

// polyPlan is how the server evaluates one recipe on a call's ciphertexts.
//
// Folded (Parameters.Folded): both parties encode their shares at
// Δ·scalar, so the sum is t - constant at scale Δ; the server adds the
// constant and evaluates the Chebyshev polynomial on t directly, with
// Lattigo's baby-step giant-step evaluator (hefloat.PolynomialEvaluator),
// then the post-processing: one level less than ckks.Evaluator.ApplyFunc,
// which spends one on the change of basis.
//
// Split: a polynomial whose odd part is linear, p(t) = c_1·t + E(t) with E
// even, on a symmetric interval (GELU: GELU(x) - x/2 is even, and the
// interpolant at the symmetric Chebyshev nodes keeps that parity, its odd
// coefficients above c_1 being rounding noise), is evaluated as
// E(t) = Σ_k c_2k·T_k(u) with u = T_2(t) = 2t² - 1 (T_2k = T_k∘T_2):
// one square, then a polynomial of half the degree, plus c_1·t on the side.
// The depth is the same (1 + ceil(log2(d/2 + 1)) = ceil(log2(d + 1))), the
// products about half.
type polyPlan struct {
	rec      *approx.Recipe
	fold     bool
	scalar   float64 // the encoding factor when folded, else 1
	constant float64 // added by the server when folded
	split    bool
	lin      float64   // c_1 when split
	coeffs   []float64 // Chebyshev coefficients in t, or of E in u when split
	odd      bool      // parity flags of the polynomial in t
	even     bool
}

// polynomial returns the plan's polynomial (a fresh one per call: the
// workers share the plan).
func (pl *polyPlan) polynomial() bignum.Polynomial {
	poly := bignum.NewPolynomial(bignum.Chebyshev, pl.coeffs, [2]float64{-1, 1})
	poly.IsOdd, poly.IsEven = pl.odd, pl.even
	return poly
}

// splitTolerance bounds Σ|c_k| over the odd k >= 3 of a recipe the server
// splits: the terms it drops, far below the CKKS noise (about 2^-20).
const splitTolerance = 0x1p-40

// plan returns the evaluation plan of rec.
func (p Parameters) plan(rec *approx.Recipe) *polyPlan {
	pl := &polyPlan{rec: rec, scalar: 1}
	if !p.Folded(rec) {
		return pl
	}
	pl.fold = true
	pl.scalar, pl.constant = rec.ChangeOfBasis()
	cs := rec.Coeffs()
	odd, even := rec.Parity()
	if pl.constant == 0 && len(cs) >= 5 && odd && even {
		var drop float64
		for k := 3; k < len(cs); k += 2 {
			drop += math.Abs(cs[k])
		}
		if drop <= splitTolerance {
			ev := make([]float64, (len(cs)+1)/2)
			for k := range ev {
				ev[k] = cs[2*k]
			}
			pl.split, pl.lin, pl.coeffs = true, cs[1], ev
			pl.odd, pl.even = true, true // E in u has no parity
			return pl
		}
	}
	pl.coeffs, pl.odd, pl.even = cs, odd, even
	return pl
}

// evalPlan evaluates pl on ct: fn(x) for the recipe, at the level ct's
// minus Parameters.PolyDepth.
func (w *serverWorker) evalPlan(ctx context.Context, pl *polyPlan, d approx.Degree, ct *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	if !pl.fold {
		return w.apply(ctx, pl.rec.Func(), d, ct)
	}
	t := ct
	if pl.constant != 0 {
		if err := w.eval.Add(t, pl.constant, t); err != nil {
			return nil, err
		}
	}
	scale := w.eval.GetParameters().DefaultScale()
	var y *rlwe.Ciphertext
	if pl.split {
		u, err := w.mul(t, t)
		if err != nil {
			return nil, err
		}
		if err := w.eval.Mul(u, 2, u); err != nil {
			return nil, err
		}
		if err := w.eval.Add(u, -1, u); err != nil {
			return nil, err
		}
		if y, err = w.evaluate(u, pl.polynomial(), scale); err != nil {
			return nil, fmt.Errorf("cannot evaluate %s/%s: %w", pl.rec.Func(), pl.rec.Variant(), err)
		}
		lin, err := w.mulConst(t, pl.lin)
		if err != nil {
			return nil, err
		}
		w.eval.DropLevel(lin, lin.Level()-y.Level())
		lin.Scale = rlwe.NewScale(&y.Scale.Value) // both Δ, within the rounding of the scales' arithmetic
		if err := w.eval.Add(y, lin, y); err != nil {
			return nil, err
		}
	} else {
		var err error
		if y, err = w.evaluate(t, pl.polynomial(), scale); err != nil {
			return nil, fmt.Errorf("cannot evaluate %s/%s: %w", pl.rec.Func(), pl.rec.Variant(), err)
		}
	}
	return w.post(pl.rec, y)
}

// evaluate returns poly(ct) at scale: Lattigo's baby-step giant-step
// evaluation, on w.par goroutines (parPoly) when the call gives it more
// than one.
func (w *serverWorker) evaluate(ct *rlwe.Ciphertext, poly bignum.Polynomial, scale rlwe.Scale) (*rlwe.Ciphertext, error) {
	if w.par <= 1 {
		return w.pe.Evaluate(ct, poly, scale)
	}
	evals := append([]*hefloat.Evaluator{w.eval}, w.helpers[:w.par-1]...)
	return newParPoly(*w.eval.GetParameters(), evals).Evaluate(ct, poly, scale)
}

// post applies the post-processing of a folded recipe (no Newton step, by
// Parameters.Folded): r squarings, or the output scale.
func (w *serverWorker) post(rec *approx.Recipe, y *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	var err error
	switch rec.Post() {
	case approx.PostSquare:
		for i := 0; i < rec.Steps(); i++ {
			if y, err = w.mul(y, y); err != nil {
				return nil, err
			}
		}
	case approx.PostNewtonInverse, approx.PostNewtonInvSqrt:
		if rec.Steps() != 0 {
			return nil, fmt.Errorf("internal: %s folded with %d Newton steps", rec.Func(), rec.Steps())
		}
		if s := rec.OutputScale(); s != 1 {
			if y, err = w.mulConst(y, s); err != nil {
				return nil, err
			}
		}
	}
	return y, nil
}

// mulConst returns c·ct: an integer c costs no level, any other one level
// (encoded at the scale of the prime it is rescaled by, so the scale stays).
func (w *serverWorker) mulConst(ct *rlwe.Ciphertext, c float64) (*rlwe.Ciphertext, error) {
	if c == math.Trunc(c) && math.Abs(c) < 1<<52 {
		return w.eval.MulNew(ct, int64(c))
	}
	out, err := w.eval.MulNew(ct, c)
	if err != nil {
		return nil, err
	}
	return out, w.eval.Rescale(out, out)
}
