package approx

import (
	"fmt"
	"sync"
)

// Registry holds the resolved recipes of every function and variant. It is
// immutable and safe for concurrent use; build it with NewRegistry.
type Registry struct {
	lit     RegistryLiteral
	recipes [numFuncs][numDegrees]*Recipe
}

// NewRegistry validates lit, interpolates every polynomial and measures its
// errors. It fails if the literal is invalid or if Newton steps would diverge
// from the polynomial initial guess.
func NewRegistry(lit RegistryLiteral) (*Registry, error) {
	if err := lit.Validate(); err != nil {
		return nil, fmt.Errorf("cannot NewRegistry: %w", err)
	}
	reg := &Registry{lit: lit}
	for _, fn := range Funcs() {
		fl := lit.Func(fn)
		for _, d := range Degrees() {
			if d == Low && fl.Low == (VariantLiteral{}) {
				reg.recipes[fn][Low] = reg.recipes[fn][High].withVariant(Low)
				continue
			}
			rec, err := newRecipe(fn, d, fl, fl.Variant(d))
			if err != nil {
				return nil, fmt.Errorf("cannot NewRegistry: %w", err)
			}
			reg.recipes[fn][d] = rec
		}
	}
	return reg, nil
}

// withVariant returns a copy of r labelled d (coefficients shared: immutable).
func (r *Recipe) withVariant(d Degree) *Recipe {
	c := *r
	c.deg = d
	return &c
}

var (
	defaultOnce sync.Once
	defaultReg  *Registry
)

// Default returns the registry of DefaultLiteral, built once.
func Default() *Registry {
	defaultOnce.Do(func() {
		reg, err := NewRegistry(DefaultLiteral())
		if err != nil {
			panic(fmt.Sprintf("approx: default literal is invalid: %v", err))
		}
		defaultReg = reg
	})
	return defaultReg
}

// Literal returns the literal the registry was built from.
func (reg *Registry) Literal() RegistryLiteral { return reg.lit }

// Recipe returns the recipe of fn, variant d. It panics on an undefined fn or d.
func (reg *Registry) Recipe(fn Func, d Degree) *Recipe {
	if !fn.Valid() || !d.Valid() {
		panic(fmt.Sprintf("approx: no recipe for %v/%v", fn, d))
	}
	return reg.recipes[fn][d]
}

// Interval returns the interval [A, B] of fn (shared by both variants).
func (reg *Registry) Interval(fn Func) (a, b float64) { return reg.Recipe(fn, High).Interval() }

// Contains reports whether x lies in the interval of fn.
func (reg *Registry) Contains(fn Func, x float64) bool { return reg.Recipe(fn, High).Contains(x) }

// CheckRange counts xs against the interval of fn.
func (reg *Registry) CheckRange(fn Func, xs []float64) RangeStats {
	return reg.Recipe(fn, High).Range(xs)
}

// Eval evaluates fn, variant d, at x in float64 (clamping x to the interval).
func (reg *Registry) Eval(fn Func, d Degree, x float64) float64 { return reg.Recipe(fn, d).Eval(x) }

// EvalVec writes the approximation of fn, variant d, of in[i] to out[i] and
// returns how many inputs were clamped (outside the interval, or NaN).
func (reg *Registry) EvalVec(fn Func, d Degree, in, out []float64) (clamped int) {
	return reg.Recipe(fn, d).EvalVec(in, out)
}
