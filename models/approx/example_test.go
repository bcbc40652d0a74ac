package approx_test

import (
	"fmt"

	"github.com/cipherprune/cipherprune/models/approx"
)

// Refine the default intervals from observed activation ranges, build the
// registry, and evaluate the low-degree GELU as the approximate forward does.
func Example() {
	lit := approx.DefaultLiteral()
	lit.GELU.Interval = [2]float64{-10, 10} // e.g. measured range [-8.1, 7.4] plus margin
	reg, err := approx.NewRegistry(lit)
	if err != nil {
		panic(err)
	}

	acts := []float64{-2, -0.5, 0, 0.5, 2, 11}
	out := make([]float64, len(acts))
	clamped := reg.EvalVec(approx.GELU, approx.Low, acts, out)
	fmt.Printf("GELU low: %.3f (clamped %d)\n", out, clamped)

	rec := reg.Recipe(approx.GELU, approx.Low)
	a, b := rec.Interval()
	c := rec.Cost()
	fmt.Printf("degree %d on [%g, %g], depth %d, %d ct-ct products, max error %.0e\n",
		rec.PolyDegree(), a, b, c.Depth, c.CtCtMuls, rec.Stats().MaxAbsErr)

	// The HE side builds the same polynomial from plain numbers:
	//   bignum.NewPolynomial(bignum.Chebyshev, rec.Coeffs(), [2]float64{a, b})
	fmt.Println(len(rec.Coeffs()), "Chebyshev coefficients,", rec.Post())
	// Output:
	// GELU low: [-0.044 -0.154 0.001 0.346 1.956 10.000] (clamped 1)
	// degree 31 on [-10, 10], depth 6, 13 ct-ct products, max error 1e-03
	// 32 Chebyshev coefficients, none
}
