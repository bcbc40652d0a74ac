package approx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Limits enforced by Validate. They keep the interpolation well conditioned
// and reject configurations no CKKS level budget could carry.
const (
	MaxPolyDegree = 1023
	MaxSquarings  = 16
	MaxNewton     = 8
	// MaxLiteralJSON is the largest literal ParseLiteralJSON accepts.
	MaxLiteralJSON = 1 << 20
)

// RegistryLiteral is the unchecked, serializable description of a registry:
// one FuncLiteral per function. NewRegistry validates it and computes the
// coefficients. The zero value is invalid; start from DefaultLiteral.
type RegistryLiteral struct {
	GELU       FuncLiteral `json:"gelu"`
	Exp        FuncLiteral `json:"exp"`
	Reciprocal FuncLiteral `json:"reciprocal"`
	InvSqrt    FuncLiteral `json:"invsqrt"`
	Tanh       FuncLiteral `json:"tanh"`
}

// FuncLiteral describes both variants of one function.
type FuncLiteral struct {
	// Interval is [A, B], on the raw input x; A < B, both finite. For
	// Reciprocal and InvSqrt, A > 0.
	Interval [2]float64 `json:"interval"`
	// Basis is the polynomial basis; the zero value (JSON "" or absent) is Chebyshev.
	Basis Basis `json:"basis"`
	// Scale is the public input pre-scale s of the Newton steps (Reciprocal
	// and InvSqrt only): they run on u = s*x and the output is rescaled by s
	// (Reciprocal) or sqrt(s) (InvSqrt). 0 means 1. Must be finite and > 0 otherwise.
	Scale float64 `json:"scale,omitempty"`
	// High is the accurate variant; required.
	High VariantLiteral `json:"high"`
	// Low is the cheaper variant. A zero Low (Degree 0) means "same as High".
	Low VariantLiteral `json:"low"`
}

// VariantLiteral describes one variant.
type VariantLiteral struct {
	// Degree of the polynomial, >= 1 (at most MaxPolyDegree). Prefer 2^k - 1:
	// the depth is ceil(log2(Degree+1)).
	Degree int `json:"degree"`
	// Squarings is r for Exp (the polynomial approximates exp(x/2^r), then r
	// squarings); 0 for the other functions.
	Squarings int `json:"squarings,omitempty"`
	// Newton is the number of Newton steps after the polynomial initial guess
	// (Reciprocal and InvSqrt only).
	Newton int `json:"newton,omitempty"`
}

// DefaultLiteral returns the default registry description. The intervals
// are meant to be safe for small trained BERT models (refine them from
// observed activation ranges: the HE evaluator cannot clamp). Degrees are of
// the form 2^k - 1 and were chosen from the errors measured by Table:
//
//   - GELU on [-12, 12]: high 63 (max error ~2e-7), low 31 (~7e-3);
//     degree 15 would cost 8 products instead of 13 but errs by ~0.2.
//   - Exp on [-32, 4] (logits minus the public shift): high exp(x/4)^4 with
//     degree 15 (~2e-7), low exp(x/8)^8 with degree 7 (~9e-3); same depth, fewer products.
//   - Reciprocal on [0.5, 512] and InvSqrt on [0.1, 1000]: one polynomial, no
//     Newton step (rel. error ~2e-7 and ~2e-5). These run on one value per
//     softmax row or token, so depth matters more than products: doubling
//     the degree costs one level and squares the error, a Newton step costs
//     two levels for the same gain. Low is the same as High.
//   - Tanh on [-10, 10]: degree 63 (~6e-5), odd; Low is the same as High.
func DefaultLiteral() RegistryLiteral {
	return RegistryLiteral{
		GELU: FuncLiteral{
			Interval: [2]float64{-12, 12},
			High:     VariantLiteral{Degree: 63},
			Low:      VariantLiteral{Degree: 31},
		},
		Exp: FuncLiteral{
			Interval: [2]float64{-32, 4},
			High:     VariantLiteral{Degree: 15, Squarings: 2},
			Low:      VariantLiteral{Degree: 7, Squarings: 3},
		},
		Reciprocal: FuncLiteral{
			Interval: [2]float64{0.5, 512},
			High:     VariantLiteral{Degree: 255},
		},
		InvSqrt: FuncLiteral{
			Interval: [2]float64{0.1, 1000},
			High:     VariantLiteral{Degree: 511},
		},
		Tanh: FuncLiteral{
			Interval: [2]float64{-10, 10},
			High:     VariantLiteral{Degree: 63},
		},
	}
}

// Func returns the literal of fn (a copy).
func (l RegistryLiteral) Func(fn Func) FuncLiteral {
	return *l.funcPtr(fn)
}

// SetFunc replaces the literal of fn.
func (l *RegistryLiteral) SetFunc(fn Func, fl FuncLiteral) {
	*l.funcPtr(fn) = fl
}

func (l *RegistryLiteral) funcPtr(fn Func) *FuncLiteral {
	switch fn {
	case GELU:
		return &l.GELU
	case Exp:
		return &l.Exp
	case Reciprocal:
		return &l.Reciprocal
	case InvSqrt:
		return &l.InvSqrt
	case Tanh:
		return &l.Tanh
	}
	panic(fmt.Sprintf("approx: invalid Func %d", int(fn)))
}

// Variant returns the resolved literal of variant d: Low with Degree 0 is High.
func (f FuncLiteral) Variant(d Degree) VariantLiteral {
	if d == Low && f.Low == (VariantLiteral{}) {
		return f.High
	}
	if d == Low {
		return f.Low
	}
	return f.High
}

// Validate checks the literal; the error names the offending field.
func (l RegistryLiteral) Validate() error {
	for _, fn := range Funcs() {
		if err := l.Func(fn).validate(fn); err != nil {
			return err
		}
	}
	return nil
}

func (f FuncLiteral) validate(fn Func) error {
	a, b := f.Interval[0], f.Interval[1]
	if !isFinite(a) || !isFinite(b) {
		return fmt.Errorf("%s.interval = [%v, %v]: bounds must be finite", fn, a, b)
	}
	if !(a < b) {
		return fmt.Errorf("%s.interval = [%v, %v]: empty interval, need A < B", fn, a, b)
	}
	if fn.positiveDomain() && !(a > 0) {
		return fmt.Errorf("%s.interval = [%v, %v]: must be strictly positive (A > 0), %s is singular at 0", fn, a, b, fn)
	}
	if f.Basis != Chebyshev {
		return fmt.Errorf("%s.basis = %v: only chebyshev is supported", fn, f.Basis)
	}
	if f.Scale != 0 {
		if !fn.positiveDomain() {
			return fmt.Errorf("%s.scale = %v: a pre-scale applies only to reciprocal and invsqrt", fn, f.Scale)
		}
		if !isFinite(f.Scale) || !(f.Scale > 0) {
			return fmt.Errorf("%s.scale = %v: must be finite and > 0 (or 0 for 1)", fn, f.Scale)
		}
	}
	if err := f.High.validate(fn, "high", false); err != nil {
		return err
	}
	return f.Low.validate(fn, "low", true)
}

func (v VariantLiteral) validate(fn Func, name string, zeroOK bool) error {
	if zeroOK && v == (VariantLiteral{}) {
		return nil
	}
	if v.Degree < 1 || v.Degree > MaxPolyDegree {
		return fmt.Errorf("%s.%s.degree = %d: must be in [1, %d]", fn, name, v.Degree, MaxPolyDegree)
	}
	if v.Squarings < 0 || v.Squarings > MaxSquarings {
		return fmt.Errorf("%s.%s.squarings = %d: must be in [0, %d]", fn, name, v.Squarings, MaxSquarings)
	}
	if v.Squarings != 0 && fn != Exp {
		return fmt.Errorf("%s.%s.squarings = %d: squarings apply only to exp", fn, name, v.Squarings)
	}
	if v.Newton < 0 || v.Newton > MaxNewton {
		return fmt.Errorf("%s.%s.newton = %d: must be in [0, %d]", fn, name, v.Newton, MaxNewton)
	}
	if v.Newton != 0 && !fn.positiveDomain() {
		return fmt.Errorf("%s.%s.newton = %d: Newton steps apply only to reciprocal and invsqrt", fn, name, v.Newton)
	}
	return nil
}

// ParseLiteralJSON decodes a RegistryLiteral, rejecting unknown fields,
// trailing data and inputs over MaxLiteralJSON bytes. It does not validate;
// NewRegistry does.
func ParseLiteralJSON(data []byte) (RegistryLiteral, error) {
	var l RegistryLiteral
	if len(data) > MaxLiteralJSON {
		return l, fmt.Errorf("cannot ParseLiteralJSON: %d bytes > limit %d", len(data), MaxLiteralJSON)
	}
	if err := decodeStrict(data, &l); err != nil {
		return RegistryLiteral{}, fmt.Errorf("cannot ParseLiteralJSON: %w", err)
	}
	return l, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
