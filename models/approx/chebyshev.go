package approx

import "math"

// ChangeOfBasis returns the affine map t = scalar*x + constant that sends
// [a, b] onto [-1, 1]: scalar = 2/(b-a), constant = -(a+b)/(b-a). It is the
// float64 value of Lattigo's bignum.Polynomial.ChangeOfBasis for the Chebyshev
// basis, and the float64 evaluator uses exactly this form.
func ChangeOfBasis(a, b float64) (scalar, constant float64) {
	d := b - a
	return 2 / d, -(a + b) / d
}

// ChebyshevNodes returns the n Chebyshev nodes of the first kind mapped to
// [a, b]: x_j = (a+b)/2 + (b-a)/2 * cos(pi*(j+1/2)/n), j = 0..n-1 (decreasing).
func ChebyshevNodes(n int, a, b float64) []float64 {
	nodes := make([]float64, n)
	mid, half := (a+b)/2, (b-a)/2
	for j := range nodes {
		nodes[j] = mid + float64(half*cosPiFrac(2*j+1, 2*n))
	}
	return nodes
}

// ChebyshevInterpolate returns the coefficients c_0..c_deg of the polynomial
// of degree deg, in the Chebyshev basis on [a, b], that interpolates f at the
// deg+1 Chebyshev nodes of the first kind. A polynomial of degree <= deg is
// reproduced exactly (up to rounding). The computation is deterministic: the
// cosines are taken of angles reduced exactly in integer arithmetic.
func ChebyshevInterpolate(f func(float64) float64, deg int, a, b float64) []float64 {
	n := deg + 1
	nodes := ChebyshevNodes(n, a, b)
	fv := make([]float64, n)
	for j, x := range nodes {
		fv[j] = f(x)
	}
	coeffs := make([]float64, n)
	for k := range coeffs {
		// T_k(x_j) = cos(pi*k*(2j+1)/(2n)).
		var s float64
		for j := range fv {
			s += float64(fv[j] * cosPiFrac(k*(2*j+1), 2*n))
		}
		coeffs[k] = 2 * s / float64(n)
	}
	coeffs[0] /= 2
	return coeffs
}

// cosPiFrac returns cos(pi*p/q) for integers p >= 0, q > 0, with the angle
// reduced to [0, pi/2] exactly before calling math.Cos/math.Sin, so that the
// symmetric values come out exactly symmetric.
func cosPiFrac(p, q int) float64 {
	// cos has period 2q in p.
	p %= 2 * q
	// cos(pi*p/q) = cos(pi*(2q-p)/q).
	if p > q {
		p = 2*q - p
	}
	// Now p in [0, q]. cos(pi*p/q) = -cos(pi*(q-p)/q).
	sign := 1.0
	if 2*p > q {
		p = q - p
		sign = -1
	}
	// Now p/q in [0, 1/2].
	if 4*p > q {
		// cos(theta) = sin(pi/2 - theta), keeps the argument below pi/4.
		return sign * math.Sin(math.Pi*float64(q-2*p)/float64(2*q))
	}
	return sign * math.Cos(math.Pi*float64(p)/float64(q))
}

// Clenshaw evaluates sum_k c_k T_k(t) at t (t in [-1, 1] for the interval's
// points; values outside are extrapolated). The float64 conversions forbid
// fused multiply-adds, so every platform rounds the same way.
func Clenshaw(coeffs []float64, t float64) float64 {
	if len(coeffs) == 0 {
		return 0
	}
	var b1, b2 float64
	t2 := 2 * t
	for k := len(coeffs) - 1; k >= 1; k-- {
		b1, b2 = coeffs[k]+float64(t2*b1)-b2, b1
	}
	return coeffs[0] + float64(t*b1) - b2
}

// clenshaw4 is Clenshaw at four points at once, with the same operations per
// point (so the same results); the independent chains fill the pipeline.
func clenshaw4(coeffs []float64, t0, t1, t2, t3 float64) (y0, y1, y2, y3 float64) {
	var a0, a1, a2, a3 float64 // b_{k+1}
	var c0, c1, c2, c3 float64 // b_{k+2}
	u0, u1, u2, u3 := 2*t0, 2*t1, 2*t2, 2*t3
	for k := len(coeffs) - 1; k >= 1; k-- {
		c := coeffs[k]
		a0, c0 = c+float64(u0*a0)-c0, a0
		a1, c1 = c+float64(u1*a1)-c1, a1
		a2, c2 = c+float64(u2*a2)-c2, a2
		a3, c3 = c+float64(u3*a3)-c3, a3
	}
	c := coeffs[0]
	return c + float64(t0*a0) - c0, c + float64(t1*a1) - c1, c + float64(t2*a2) - c2, c + float64(t3*a3) - c3
}
