package elementwise

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models/approx"
)

// TestParallelPoly checks that parPoly computes, on 2 and 3 goroutines,
// the very ciphertext hefloat.PolynomialEvaluator computes sequentially
// (the same operations on the same operands, in another order), for every
// folded recipe of sentiment-tiny's registry (and the split GELU's
// polynomial in u), and that it decrypts to the recipe.
func TestParallelPoly(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	params := tc.p.Params()
	enc := hefloat.NewEncoder(params)
	encr := rlwe.NewEncryptor(params, tc.sk)
	dec := rlwe.NewDecryptor(params, tc.sk)
	eval := hefloat.NewEvaluator(params, rlwe.NewMemEvaluationKeySet(tc.rlk))
	r := rand.New(rand.NewPCG(71, 72))
	for _, fn := range []approx.Func{approx.GELU, approx.Exp, approx.Reciprocal, approx.InvSqrt, approx.Tanh} {
		for _, d := range []approx.Degree{approx.High, approx.Low} {
			pl := tc.p.plan(reg.Recipe(fn, d))
			poly := pl.polynomial()
			t.Run(fmt.Sprintf("%s/%s/degree=%d", fn, d, poly.Degree()), func(t *testing.T) {
				// The polynomial's input: t (or u) in [-1, 1], at the level
				// the evaluation needs.
				v := uniform(r, tc.p.Slots(), -1, 1)
				pt := hefloat.NewPlaintext(params, tc.p.MaskLevel()+poly.Depth())
				if err := enc.Encode(v, pt); err != nil {
					t.Fatal(err)
				}
				ct, err := encr.EncryptNew(pt)
				if err != nil {
					t.Fatal(err)
				}
				scale := params.DefaultScale()
				want, err := hefloat.NewPolynomialEvaluator(params, eval).Evaluate(ct, poly, scale)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range []int{2, 3} {
					evals := []*hefloat.Evaluator{eval}
					for len(evals) < g {
						evals = append(evals, eval.ShallowCopy())
					}
					got, err := newParPoly(params, evals).Evaluate(ct, poly, scale)
					if err != nil {
						t.Fatal(err)
					}
					if !got.Equal(want) {
						t.Fatalf("%d goroutines: not the sequential ciphertext", g)
					}
				}
				out := make([]float64, tc.p.Slots())
				if err := enc.Decode(dec.DecryptNew(want), out); err != nil {
					t.Fatal(err)
				}
				var worst float64
				for i, x := range v {
					y, _ := poly.Evaluate(x)[0].Float64()
					worst = max(worst, abs(out[i]-y))
				}
				if worst > tolerance {
					t.Fatalf("max error %g against the polynomial", worst)
				}
			})
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
