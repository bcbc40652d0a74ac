package models

import (
	"fmt"
	"math"
)

// Degree selects which variant of a nonlinearity's polynomial approximation
// a token uses: the schedule gives important tokens DegreeHigh and the others
// DegreeLow (docs/design.md, "Approximations"). The exact forward ignores it.
type Degree uint8

// The two degrees. DegreeHigh is the zero value, so a nil or zeroed degree
// slice means "every token high".
const (
	DegreeHigh Degree = iota
	DegreeLow
)

// String returns "high" or "low".
func (d Degree) String() string {
	switch d {
	case DegreeHigh:
		return "high"
	case DegreeLow:
		return "low"
	}
	return fmt.Sprintf("Degree(%d)", uint8(d))
}

// Nonlinearities are the non-polynomial functions of a BERT forward pass.
// The forward pass calls them and nothing else that is not a polynomial, so
// an implementation that evaluates the registry's polynomials (package
// models/approx) turns the exact forward into the approximate one, the
// plaintext twin of the encrypted computation.
//
// Every method receives the Degree of the token whose row it computes. The
// pooler's Tanh is applied to the CLS token only and so always receives
// DegreeHigh.
//
// One forward pass calls the methods from a single goroutine, in a fixed
// order; an implementation shared by concurrent forward passes must be safe
// for concurrent use.
type Nonlinearities interface {
	// SoftmaxRow writes into dst the attention probabilities of one query
	// row: the softmax of scores (already scaled by 1/√d_h) over the entries
	// whose valid flag is true. Entries with valid false are padding keys:
	// dst must be exactly 0 there and they must not contribute to the
	// normalization. dst, scores and valid have the same length and at
	// least one entry is valid.
	SoftmaxRow(dst, scores []float64, valid []bool, deg Degree)
	// GELU returns x·Φ(x), the feed-forward activation.
	GELU(x float64, deg Degree) float64
	// InvSqrt returns 1/√x for the LayerNorm normalization, where x is a
	// row's variance plus epsilon.
	InvSqrt(x float64, deg Degree) float64
	// Tanh returns tanh(x), the pooler's activation.
	Tanh(x float64, deg Degree) float64
}

// Exact implements Nonlinearities with the math package, in float64. It
// ignores the degree.
type Exact struct{}

var _ Nonlinearities = Exact{}

// SoftmaxRow computes the masked softmax with the row maximum subtracted
// first, for stability.
func (Exact) SoftmaxRow(dst, scores []float64, valid []bool, _ Degree) {
	maxScore := math.Inf(-1)
	for j, s := range scores {
		if valid[j] && s > maxScore {
			maxScore = s
		}
	}
	MaskedSoftmax(dst, scores, valid,
		func(x float64) float64 { return math.Exp(x - maxScore) },
		func(x float64) float64 { return 1 / x })
}

// GELU returns the exact GELU, 0.5·x·(1 + erf(x/√2)), PyTorch's default and
// Hugging Face's "gelu".
func (Exact) GELU(x float64, _ Degree) float64 {
	return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
}

// InvSqrt returns 1/√x.
func (Exact) InvSqrt(x float64, _ Degree) float64 { return 1 / math.Sqrt(x) }

// Tanh returns tanh(x).
func (Exact) Tanh(x float64, _ Degree) float64 { return math.Tanh(x) }

// MaskedSoftmax computes a softmax row the way the encrypted path does,
// from an exponential and a reciprocal: e_j = exp(scores_j) for each valid
// j, r = recip(Σ e_j), dst_j = e_j·r, and dst_j = 0 exactly for invalid j.
// A row with a single valid key is 1 there, exactly, without exp or recip:
// the encrypted path computes nothing for one key (its probability is 1,
// as the public count says), and a polynomial reciprocal of one
// exponential would stretch the calibrated interval of the row sums.
// Approximate Nonlinearities can build SoftmaxRow from it with their
// polynomial exp and reciprocal (folding any input shift into exp).
func MaskedSoftmax(dst, scores []float64, valid []bool, exp, recip func(float64) float64) {
	if single := singleValid(valid); single >= 0 {
		for j := range dst {
			dst[j] = 0
		}
		dst[single] = 1
		return
	}
	var sum float64
	for j, s := range scores {
		if valid[j] {
			e := exp(s)
			dst[j] = e
			sum += e
		} else {
			dst[j] = 0
		}
	}
	r := recip(sum)
	for j := range dst {
		if valid[j] {
			dst[j] *= r
		}
	}
}

// singleValid returns the index of the only true entry of valid, or -1 if
// there are none or several.
func singleValid(valid []bool) int {
	k := -1
	for j, v := range valid {
		if v {
			if k >= 0 {
				return -1
			}
			k = j
		}
	}
	return k
}
