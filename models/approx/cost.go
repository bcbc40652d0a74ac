package approx

import "math/bits"

// Cost is what a Recipe costs a CKKS evaluator that follows Lattigo v5
// (hefloat.PolynomialEvaluator.Evaluate for the polynomial, one rescale per
// multiplication level). Depths are in rescales (levels when Lattigo's
// LevelsConsumedPerRescaling is 1).
type Cost struct {
	// ChangeOfBasisDepth is 1 when t = scalar*x + constant needs a rescale
	// (scalar not an integer), else 0. It is foldable: merge scalar and
	// constant into the plaintext weights/bias that produce x to save it.
	ChangeOfBasisDepth int `json:"change_of_basis_depth"`
	// PolyDepth is ceil(log2(degree+1)), what Evaluate consumes (its own
	// up-front check uses the looser ceil(log2(degree))).
	PolyDepth int `json:"poly_depth"`
	// PrepDepth is the depth of the Newton inputs u = s*x (and h = u/2 for
	// InvSqrt), computed from x in parallel with the polynomial; it counts in
	// Depth only if it exceeds ChangeOfBasisDepth + PolyDepth.
	PrepDepth int `json:"prep_depth"`
	// PostDepth is the depth of the post-processing: r for r squarings, 2 per
	// Newton step (both formulas).
	PostDepth int `json:"post_depth"`
	// OutputScaleDepth is 1 when the final constant (s or sqrt(s)) is not an
	// integer, else 0. It is foldable into the next plaintext multiplication.
	OutputScaleDepth int `json:"output_scale_depth"`
	// Depth is the total, input level minus output level, including the
	// foldable levels: max(ChangeOfBasisDepth+PolyDepth, PrepDepth) +
	// PostDepth + OutputScaleDepth.
	Depth int `json:"depth"`
	// PolyMuls is the number of ciphertext-ciphertext multiplications of
	// Lattigo's baby-step giant-step Chebyshev evaluation (power basis plus
	// giant steps); constant multiplications are not counted.
	PolyMuls int `json:"poly_muls"`
	// PostMuls is r for squarings, 2 per Newton step for the inverse, 3 per
	// Newton step for the inverse square root.
	PostMuls int `json:"post_muls"`
	// CtCtMuls is PolyMuls + PostMuls.
	CtCtMuls int `json:"ctct_muls"`
}

// polyDepth is the number of levels Lattigo's Chebyshev/monomial BSGS
// evaluation of a degree-deg polynomial consumes.
func polyDepth(deg int) int { return bits.Len(uint(deg)) }

// optimalSplit mirrors lattigo/v5/utils/bignum.OptimalSplit.
func optimalSplit(logDegree int) (logSplit int) {
	logSplit = logDegree >> 1
	a := (1 << logSplit) + (1 << (logDegree - logSplit)) + logDegree - logSplit - 3
	b := (1 << (logSplit + 1)) + (1 << (logDegree - logSplit - 1)) + logDegree - logSplit - 4
	if a > b {
		logSplit++
	}
	return
}

// splitDegree mirrors lattigo/v5/he.SplitDegree.
func splitDegree(n int) (a, b int) {
	if n&(n-1) == 0 {
		return n / 2, n / 2
	}
	k := bits.Len(uint(n-1)) - 1
	return (1 << k) - 1, n + 1 - (1 << k)
}

// polyMuls counts the ciphertext-ciphertext multiplications of
// lattigo/v5/he.EvaluatePolynomial for a Chebyshev polynomial of degree deg
// with parity flags odd/even as in bignum.Polynomial (both true: generic).
// It replays the power-basis generation (one product per new T_n, including
// the T_|a-b| the Chebyshev recurrence pulls in) and counts one product per
// giant step (number of Paterson-Stockmeyer baby-step polynomials minus one).
func polyMuls(deg int, odd, even bool) int {
	if deg < 1 {
		return 0
	}
	have := map[int]bool{1: true}
	var gen func(n int)
	gen = func(n int) {
		if have[n] {
			return
		}
		a, b := splitDegree(n)
		gen(a)
		gen(b)
		have[n] = true
		if c := a - b; c != 0 {
			if c < 0 {
				c = -c
			}
			gen(c)
		}
	}
	logDegree := bits.Len(uint(deg))
	logSplit := optimalSplit(logDegree)
	gen(1 << (logDegree - 1))
	for i := (1 << logSplit) - 1; i > 2; i-- {
		if !(even || odd) || (i&1 == 0 && even) || (i&1 == 1 && odd) {
			gen(i)
		}
	}
	return len(have) - 1 + psLeaves(logSplit, deg, deg, true) - 1
}

// psLeaves mirrors the splitting of lattigo/v5/he.recursePS and returns the
// number of baby-step polynomials. maxDeg and lead follow he.Polynomial.
func psLeaves(logSplit, deg, maxDeg int, lead bool) int {
	if deg < 1<<logSplit {
		if lead && logSplit > 1 && maxDeg > (1<<bits.Len(uint(maxDeg)))-(1<<(logSplit-1)) {
			return psLeaves(optimalSplit(bits.Len(uint(deg))), deg, maxDeg, lead)
		}
		return 1
	}
	next := 1 << logSplit
	for next < (deg>>1)+1 {
		next <<= 1
	}
	// Factorize(next): quotient of degree deg-next keeps MaxDeg and Lead;
	// remainder of degree next-1 is not lead.
	rMax := next - 1
	if maxDeg != deg {
		rMax = maxDeg - (deg - next + 1)
	}
	return psLeaves(logSplit, deg-next, maxDeg, lead) + psLeaves(logSplit, next-1, rMax, false)
}

// isInteger reports whether a constant multiplication by c is exact in
// Lattigo (a Gaussian integer needs no rescale).
func isInteger(c float64) bool { return c == float64(int64(c)) }
