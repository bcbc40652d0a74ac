// Package approx is the one registry of polynomial approximations shared by
// the plaintext approximate forward (float64, in models/) and the homomorphic
// evaluator (ckks/), so that an encrypted run equals the float64 reference up
// to CKKS noise.
//
// Every non-polynomial function of BERT inference (GELU, exp in softmax, the
// reciprocal of softmax row sums, 1/sqrt in LayerNorm, tanh in the pooler)
// has a High and a Low Recipe. A Recipe is a Chebyshev-basis polynomial p on
// an interval [A, B], followed by a fixed post-processing that uses
// multiplications only:
//
//	PostNone:          f(x) ≈ p(x)                                  (GELU, Tanh)
//	PostSquare:        p ≈ exp(x/2^r) on [A, B], then r squarings y <- y*y
//	PostNewtonInverse: u = s*x, y0 = p(x) ≈ 1/u, then k steps y <- y*(2 - u*y),
//	                   f(x) = s*y
//	PostNewtonInvSqrt: h = (s/2)*x, y0 = p(x) ≈ 1/sqrt(s*x), then k steps
//	                   y <- 1.5*y - (h*y)*(y*y), f(x) = sqrt(s)*y
//
// r and k may be 0; s (Recipe.InputScale) is a public constant, 1 by default.
//
// # The polynomial, and how ckks/ builds it in Lattigo
//
// p(x) = sum_k c_k T_k(t) with t = scalar*x + constant, scalar = 2/(B-A),
// constant = -(A+B)/(B-A): the Chebyshev basis on an interval exactly as
// Lattigo's bignum.Polynomial (Basis Chebyshev, Interval {A, B}) defines it.
// The coefficients are computed by interpolation at the Chebyshev nodes of the
// first kind, deterministically. So ckks/ does:
//
//	a, b := rec.Interval()
//	poly := bignum.NewPolynomial(bignum.Chebyshev, rec.Coeffs(), [2]float64{a, b})
//	poly.IsOdd, poly.IsEven = rec.Parity()
//	scalar, constant := poly.ChangeOfBasis() // = rec.ChangeOfBasis()
//	// ct <- scalar*ct + constant, rescale: hefloat's Evaluate does NOT do it
//	y, err := hefloat.NewPolynomialEvaluator(params, eval).Evaluate(ct, poly, params.DefaultScale())
//
// then the post-processing with MulRelin and Rescale (testdata/lattigo_reference.go.txt
// is a checked implementation).
//
// # Cost
//
// Recipe.Cost gives the depth (levels consumed from x to the output) and the
// number of ciphertext-ciphertext products, following Lattigo v5 exactly for
// the polynomial (depth ceil(log2(degree+1)); products counted by replaying
// its baby-step giant-step evaluation), plus one level for a non-integer change
// of basis, r levels/products for squarings, 2 levels and 2 (inverse) or 3
// (inverse square root) products per Newton step, and one level each for a
// non-integer pre-scale or output scale when they are on the critical path.
// The change of basis and the output scale are constants that ckks/ can fold
// into neighbouring plaintext multiplications to save those levels.
//
// # Clamping
//
// The float64 evaluator clamps its input to [A, B] before anything else (the
// polynomial and the Newton steps both see the clamped value). The HE
// evaluator cannot clamp: a polynomial leaves its interval fast, so an
// interval must cover the observed inputs with a margin. Use
// Registry.CheckRange (or the count EvalVec returns) to count out-of-range
// inputs, and Recipe.EvalUnclamped to see what HE would compute for them.
//
// # Configuration and export
//
// A RegistryLiteral (JSON) is the unchecked description: per function an
// interval, and per variant a degree, squarings or Newton steps. NewRegistry
// validates it and resolves it into an immutable *Registry. Registry.MarshalJSON
// exports the resolved registry, coefficients included, for the Python
// training code; ParseRegistryJSON reads it back and checks it.
//
// This package knows nothing of encryption and does not import Lattigo.
package approx
