package approx

import (
	"fmt"
	"math"
)

// Func names a non-polynomial function of the model.
type Func uint8

const (
	// GELU is the exact (erf) GELU: 0.5*x*(1 + erf(x/sqrt(2))).
	GELU Func = iota
	// Exp is exp(x), used in softmax on logits minus a public shift.
	Exp
	// Reciprocal is 1/x on a positive interval (softmax row sums).
	Reciprocal
	// InvSqrt is 1/sqrt(x) on a positive interval (LayerNorm variance + eps).
	InvSqrt
	// Tanh is tanh(x) (pooler).
	Tanh

	numFuncs = iota
)

// Funcs returns every Func, in registry order (a fresh slice).
func Funcs() []Func { return []Func{GELU, Exp, Reciprocal, InvSqrt, Tanh} }

var funcNames = [numFuncs]string{"gelu", "exp", "reciprocal", "invsqrt", "tanh"}

// Valid reports whether f is one of the defined functions.
func (f Func) Valid() bool { return int(f) < numFuncs }

// String returns the lower-case name used in JSON ("gelu", "exp", ...).
func (f Func) String() string {
	if !f.Valid() {
		return fmt.Sprintf("Func(%d)", int(f))
	}
	return funcNames[f]
}

// MarshalText implements encoding.TextMarshaler.
func (f Func) MarshalText() ([]byte, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("cannot MarshalText: invalid Func %d", int(f))
	}
	return []byte(funcNames[f]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Func) UnmarshalText(b []byte) error {
	for i, n := range funcNames {
		if string(b) == n {
			*f = Func(i)
			return nil
		}
	}
	return fmt.Errorf("cannot UnmarshalText: unknown function %q", b)
}

// Exact evaluates the exact function f at x in float64 (the reference the
// approximations are measured against).
func (f Func) Exact(x float64) float64 {
	switch f {
	case GELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case Exp:
		return math.Exp(x)
	case Reciprocal:
		return 1 / x
	case InvSqrt:
		return 1 / math.Sqrt(x)
	case Tanh:
		return math.Tanh(x)
	}
	panic(fmt.Sprintf("approx: invalid Func %d", int(f)))
}

// positiveDomain reports whether f needs a strictly positive interval.
func (f Func) positiveDomain() bool { return f == Reciprocal || f == InvSqrt }

// odd reports whether f is an odd function.
func (f Func) odd() bool { return f == Tanh }

// relativeErrorMeaningful reports whether f stays away from zero on every
// valid interval, so that a relative error is well defined.
func (f Func) relativeErrorMeaningful() bool { return f == Exp || f == Reciprocal || f == InvSqrt }

// Degree selects the high- or low-degree variant of a function. CipherPrune
// evaluates less important tokens with the low-degree variant.
type Degree uint8

const (
	// High is the accurate variant (used for the CLS token and important tokens).
	High Degree = iota
	// Low is the cheaper variant.
	Low

	numDegrees = iota
)

// Degrees returns both variants, High first (a fresh slice).
func Degrees() []Degree { return []Degree{High, Low} }

var degreeNames = [numDegrees]string{"high", "low"}

// Valid reports whether d is High or Low.
func (d Degree) Valid() bool { return int(d) < numDegrees }

// String returns "high" or "low".
func (d Degree) String() string {
	if !d.Valid() {
		return fmt.Sprintf("Degree(%d)", int(d))
	}
	return degreeNames[d]
}

// MarshalText implements encoding.TextMarshaler.
func (d Degree) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("cannot MarshalText: invalid Degree %d", int(d))
	}
	return []byte(degreeNames[d]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Degree) UnmarshalText(b []byte) error {
	for i, n := range degreeNames {
		if string(b) == n {
			*d = Degree(i)
			return nil
		}
	}
	return fmt.Errorf("cannot UnmarshalText: unknown degree variant %q", b)
}

// Basis is the polynomial basis of a Recipe.
type Basis uint8

const (
	// Chebyshev is the Chebyshev basis of the first kind on an interval [A, B]
	// (Lattigo's bignum.Chebyshev).
	Chebyshev Basis = iota
)

// String returns "chebyshev".
func (b Basis) String() string {
	if b == Chebyshev {
		return "chebyshev"
	}
	return fmt.Sprintf("Basis(%d)", int(b))
}

// MarshalText implements encoding.TextMarshaler.
func (b Basis) MarshalText() ([]byte, error) {
	if b != Chebyshev {
		return nil, fmt.Errorf("cannot MarshalText: invalid Basis %d", int(b))
	}
	return []byte("chebyshev"), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. The empty string means
// Chebyshev.
func (b *Basis) UnmarshalText(t []byte) error {
	switch string(t) {
	case "", "chebyshev":
		*b = Chebyshev
		return nil
	}
	return fmt.Errorf("cannot UnmarshalText: unknown basis %q (supported: chebyshev)", t)
}

// Post is the fixed post-processing a Recipe applies to the polynomial's output.
type Post uint8

const (
	// PostNone: the output is p(x).
	PostNone Post = iota
	// PostSquare: r squarings, y <- y*y (exp range reduction).
	PostSquare
	// PostNewtonInverse: k Newton steps for 1/u, y <- y*(2 - u*y).
	PostNewtonInverse
	// PostNewtonInvSqrt: k Newton steps for 1/sqrt(u), y <- 1.5*y - (h*y)*(y*y), h = u/2.
	PostNewtonInvSqrt

	numPosts = iota
)

var postNames = [numPosts]string{"none", "square", "newton_inverse", "newton_invsqrt"}

// String returns the name used in JSON ("none", "square", "newton_inverse", "newton_invsqrt").
func (p Post) String() string {
	if int(p) >= numPosts {
		return fmt.Sprintf("Post(%d)", int(p))
	}
	return postNames[p]
}

// MarshalText implements encoding.TextMarshaler.
func (p Post) MarshalText() ([]byte, error) {
	if int(p) >= numPosts {
		return nil, fmt.Errorf("cannot MarshalText: invalid Post %d", int(p))
	}
	return []byte(postNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Post) UnmarshalText(b []byte) error {
	for i, n := range postNames {
		if string(b) == n {
			*p = Post(i)
			return nil
		}
	}
	return fmt.Errorf("cannot UnmarshalText: unknown post-processing %q", b)
}

// postFor returns the post-processing kind of fn.
func postFor(fn Func) Post {
	switch fn {
	case Exp:
		return PostSquare
	case Reciprocal:
		return PostNewtonInverse
	case InvSqrt:
		return PostNewtonInvSqrt
	}
	return PostNone
}
