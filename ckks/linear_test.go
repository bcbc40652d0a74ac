package ckks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models"
)

func plainLinear(x models.Matrix, l *models.Linear, scale, shift float64) models.Matrix {
	y, err := models.MulTransBNew(x, l.Weight)
	if err != nil {
		panic(err)
	}
	for i := 0; i < y.Rows; i++ {
		for j := 0; j < y.Cols; j++ {
			y.Data[i*y.Cols+j] = scale*(y.Data[i*y.Cols+j]+l.Bias[j]) + shift
		}
	}
	return y
}

func TestLinear(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	r := rand.New(rand.NewPCG(1, 2))
	slots := tc.params.MaxSlots()
	for _, shape := range []struct{ n, in, out, headDim int }{
		{13, 128, 128, 64}, {16, 128, 512, 64}, {16, 512, 128, 64}, {5, 128, 2, 64}, {30, 96, 40, 32},
	} {
		t.Run(fmt.Sprintf("n=%d/%dx%d", shape.n, shape.in, shape.out), func(t *testing.T) {
			block, err := BlockFor(slots, shape.n, shape.headDim, shape.in/shape.headDim)
			if err != nil {
				t.Fatal(err)
			}
			lay, err := NewLayout(slots, shape.n, shape.in, block)
			if err != nil {
				t.Fatal(err)
			}
			lin := &models.Linear{Weight: randMatrix(r, shape.out, shape.in, 0.1), Bias: randMatrix(r, 1, shape.out, 0.1).Data}
			el, err := NewEncodedLinear(lin, block, slots, 0.5, 0.25)
			if err != nil {
				t.Fatal(err)
			}
			ev := tc.evaluator(t, tc.galEls(el.Rotations()), 2)
			x := randMatrix(r, shape.n, shape.in, 1)
			ctx, err := tc.client.EncryptMatrix(x, lay, tc.params.MaxLevel())
			if err != nil {
				t.Fatal(err)
			}
			y, err := ev.Linear(bg(), ctx, el)
			if err != nil {
				t.Fatal(err)
			}
			if y.Level() != tc.params.MaxLevel()-1 {
				t.Errorf("level %d, want %d", y.Level(), tc.params.MaxLevel()-1)
			}
			got, err := tc.client.DecryptMatrix(y)
			if err != nil {
				t.Fatal(err)
			}
			want := plainLinear(x, lin, 0.5, 0.25)
			if d := maxAbsDiff(got, want); d > 1e-5 {
				t.Errorf("max error %g > 1e-5", d)
			}
			// Padding slots stay zero.
			v, _ := tc.client.DecryptVector(y.Cts[0])
			for i := shape.n; i < block; i++ {
				if abs(v[i]) > 1e-5 {
					t.Fatalf("padding slot %d = %g", i, v[i])
				}
			}
			// Cached plaintexts give the same result.
			if err := ev.Precompute(bg(), el, shape.n, tc.params.MaxLevel()); err != nil {
				t.Fatal(err)
			}
			y2, err := ev.Linear(bg(), ctx, el)
			if err != nil {
				t.Fatal(err)
			}
			got2, _ := tc.client.DecryptMatrix(y2)
			if d := maxAbsDiff(got2, want); d > 1e-5 {
				t.Errorf("cached: max error %g > 1e-5", d)
			}
			// A capped matmul level: the inputs are dropped first, the
			// result is the same.
			evLow, err := NewEvaluator(tc.params, ev.workers[0].eval.EvaluationKeySet, nil, 2, WithReserve(2), WithLinearLevel(1))
			if err != nil {
				t.Fatal(err)
			}
			y3, err := evLow.Linear(bg(), ctx, el)
			if err != nil {
				t.Fatal(err)
			}
			if y3.Level() != 2 { // the cap never goes below reserve + 1
				t.Errorf("capped: level %d, want 2", y3.Level())
			}
			got3, _ := tc.client.DecryptMatrix(y3)
			if d := maxAbsDiff(got3, want); d > 1e-5 {
				t.Errorf("capped: max error %g > 1e-5", d)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
