package ckks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// TestApplyFunc checks every recipe, both variants and a mixed token group,
// against the registry's float64 evaluation.
func TestApplyFunc(t *testing.T) {
	for _, name := range []string{InsecureTest11, InsecureTest12} {
		t.Run(name, func(t *testing.T) { testApplyFunc(t, name) })
	}
}

func testApplyFunc(t *testing.T, preset string) {
	tc := newTestContext(t, preset)
	ev := tc.evaluator(t, 2)
	reg := ev.Registry()
	slots := tc.params.MaxSlots()
	n := 12
	lay := Layout{Rows: n, Cols: 64, Block: 16, Slots: slots}
	if err := lay.Validate(); err != nil {
		t.Fatal(err)
	}
	mixed := make(DegreeSet, n)
	for i := n / 2; i < n; i++ {
		mixed[i] = approx.Low
	}
	// Thresholds on |error|/max(1, |f|).
	// With Interactive14's 2^33 scale the degree-511 InvSqrt loses about 2
	// more bits than with Interactive15's 2^40.
	tol := map[approx.Func]float64{approx.GELU: 1e-4, approx.Exp: 1e-4, approx.Reciprocal: 1e-4, approx.InvSqrt: 1e-4, approx.Tanh: 1e-4}
	if tc.params.LogDefaultScale() < 40 {
		tol[approx.InvSqrt] = 1e-3
		// The reciprocal's Goldschmidt steps measure 0.9e-4 to 1.0e-4 here.
		tol[approx.Reciprocal] = 2e-4
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, fn := range approx.Funcs() {
		a, b := reg.Interval(fn)
		x := models.NewMatrix(n, 64)
		for i := range x.Data {
			u := r.Float64()
			if fn == approx.Reciprocal || fn == approx.InvSqrt {
				x.Data[i] = a * math.Pow(b/a, u) // log-uniform
			} else {
				x.Data[i] = a + (b-a)*u
			}
		}
		for _, degs := range []DegreeSet{nil, {approx.Low}, mixed} {
			name := "high"
			if len(degs) == 1 {
				name = "low"
				degs = make(DegreeSet, n)
				for i := range degs {
					degs[i] = approx.Low
				}
			} else if degs != nil {
				name = "mixed"
			}
			t.Run(fmt.Sprintf("%s/%s", fn, name), func(t *testing.T) {
				ct, err := tc.client.EncryptMatrix(x, lay, tc.params.MaxLevel())
				if err != nil {
					t.Fatal(err)
				}
				y, err := ev.ApplyFunc(bg(), fn, ct, degs)
				if err != nil {
					t.Fatal(err)
				}
				if used := tc.params.MaxLevel() - y.Level(); used != ev.FuncDepth(fn, degs, false) {
					t.Errorf("used %d levels, FuncDepth says %d", used, ev.FuncDepth(fn, degs, false))
				}
				got, err := tc.client.DecryptMatrix(y)
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for i := 0; i < n; i++ {
					dg := approx.High
					if degs != nil {
						dg = degs[i]
					}
					for j := 0; j < 64; j++ {
						want := reg.Eval(fn, dg, x.At(i, j))
						e := math.Abs(got.At(i, j)-want) / math.Max(1, math.Abs(want))
						worst = math.Max(worst, e)
					}
				}
				if worst > tol[fn] {
					t.Errorf("error %g > %g", worst, tol[fn])
				}
			})
		}
	}
}
