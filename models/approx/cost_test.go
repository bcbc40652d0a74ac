package approx

import (
	"fmt"
	"testing"
)

// Known answers recorded from Lattigo v5.0.7: hefloat.PolynomialEvaluator.Evaluate
// on a Chebyshev bignum.Polynomial, with an evaluator wrapper counting
// ciphertext-ciphertext Mul*/MulRelin* calls, and input level minus output
// level. "odd" is IsOdd = true, IsEven = false (even coefficients zero).
// Degrees 1-300, 509-513 and 1022-1023 all matched polyMuls/polyDepth; these
// are a sample.
var lattigoPolyKAT = []struct {
	deg         int
	odd         bool
	depth, muls int
}{
	{1, false, 1, 0}, {1, true, 1, 0}, {2, false, 2, 2}, {3, false, 2, 2}, {3, true, 2, 2},
	{4, false, 3, 4}, {5, false, 3, 4}, {6, false, 3, 4}, {7, false, 3, 5}, {7, true, 3, 5},
	{8, false, 4, 6}, {11, false, 4, 6}, {12, false, 4, 7}, {15, false, 4, 8}, {15, true, 4, 8},
	{16, false, 5, 10}, {31, false, 5, 13}, {31, true, 5, 12}, {32, false, 6, 13},
	{63, false, 6, 18}, {63, true, 6, 17}, {64, false, 7, 21}, {100, false, 7, 23},
	{127, false, 7, 28}, {127, true, 7, 25}, {128, false, 8, 26}, {255, false, 8, 37},
	{255, true, 8, 34}, {256, false, 9, 42}, {300, false, 9, 43}, {511, false, 9, 54},
	{511, true, 9, 47}, {512, false, 10, 51}, {1023, false, 10, 71}, {1023, true, 10, 64},
}

func TestPolyCostMatchesLattigo(t *testing.T) {
	for _, kat := range lattigoPolyKAT {
		even := !kat.odd
		if got := polyDepth(kat.deg); got != kat.depth {
			t.Errorf("deg %d: depth %d, Lattigo consumed %d", kat.deg, got, kat.depth)
		}
		if got := polyMuls(kat.deg, true, even); got != kat.muls {
			t.Errorf("deg %d (odd only %v): %d products, Lattigo did %d", kat.deg, kat.odd, got, kat.muls)
		}
	}
}

func TestRecipeCost(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   Func
		fl   FuncLiteral
		want Cost
	}{
		{"gelu63", GELU, FuncLiteral{Interval: [2]float64{-12, 12}, High: VariantLiteral{Degree: 63}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, Depth: 7, PolyMuls: 18, CtCtMuls: 18}},
		{"gelu_integer_scalar", GELU, FuncLiteral{Interval: [2]float64{-0.5, 0.5}, High: VariantLiteral{Degree: 31}},
			Cost{PolyDepth: 5, Depth: 5, PolyMuls: 13, CtCtMuls: 13}},
		{"tanh_odd", Tanh, FuncLiteral{Interval: [2]float64{-10, 10}, High: VariantLiteral{Degree: 63}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, Depth: 7, PolyMuls: 17, CtCtMuls: 17}},
		{"exp15_r2", Exp, FuncLiteral{Interval: [2]float64{-32, 4}, High: VariantLiteral{Degree: 15, Squarings: 2}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 4, PostDepth: 2, Depth: 7, PolyMuls: 8, PostMuls: 2, CtCtMuls: 10}},
		{"recip63_k2", Reciprocal, FuncLiteral{Interval: [2]float64{0.5, 512}, High: VariantLiteral{Degree: 63, Newton: 2}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, PostDepth: 4, Depth: 11, PolyMuls: 18, PostMuls: 4, CtCtMuls: 22}},
		{"recip63_k2_scaled", Reciprocal, FuncLiteral{Interval: [2]float64{0.5, 512}, Scale: 1.0 / 64, High: VariantLiteral{Degree: 63, Newton: 2}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, PrepDepth: 1, PostDepth: 4, OutputScaleDepth: 1, Depth: 12, PolyMuls: 18, PostMuls: 4, CtCtMuls: 22}},
		{"invsqrt63_k2_scaled", InvSqrt, FuncLiteral{Interval: [2]float64{0.1, 100}, Scale: 0.01, High: VariantLiteral{Degree: 63, Newton: 2}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, PrepDepth: 1, PostDepth: 4, OutputScaleDepth: 1, Depth: 12, PolyMuls: 18, PostMuls: 6, CtCtMuls: 24}},
		{"invsqrt_scale4_integer", InvSqrt, FuncLiteral{Interval: [2]float64{0.1, 100}, Scale: 4, High: VariantLiteral{Degree: 63, Newton: 1}},
			Cost{ChangeOfBasisDepth: 1, PolyDepth: 6, PostDepth: 2, Depth: 9, PolyMuls: 18, PostMuls: 3, CtCtMuls: 21}},
		// The prep level (h = x/2) dominates when the polynomial is shallow.
		{"invsqrt_deg1_prep", InvSqrt, FuncLiteral{Interval: [2]float64{1, 2}, High: VariantLiteral{Degree: 1, Newton: 1}},
			Cost{PolyDepth: 1, PrepDepth: 1, PostDepth: 2, Depth: 3, PostMuls: 3, CtCtMuls: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lit := DefaultLiteral()
			lit.SetFunc(tc.fn, tc.fl)
			reg, err := NewRegistry(lit)
			if err != nil {
				t.Fatal(err)
			}
			if got := reg.Recipe(tc.fn, High).Cost(); got != tc.want {
				t.Errorf("cost\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func ExampleRecipe_Cost() {
	rec := Default().Recipe(GELU, High)
	c := rec.Cost()
	fmt.Printf("depth %d = %d (change of basis) + %d (degree %d), %d ct-ct products\n",
		c.Depth, c.ChangeOfBasisDepth, c.PolyDepth, rec.PolyDegree(), c.CtCtMuls)
	// Output: depth 7 = 1 (change of basis) + 6 (degree 63), 18 ct-ct products
}
