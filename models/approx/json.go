package approx

import (
	"encoding/json"
	"fmt"
	"math"
)

// FormatVersion names the layout of the resolved registry JSON.
const FormatVersion = "cipherprune-approx-registry/v1"

// MaxRegistryJSON is the largest resolved registry ParseRegistryJSON accepts.
const MaxRegistryJSON = 16 << 20

// registryJSON is the resolved registry as written by MarshalJSON: the
// literal it came from and every recipe with its coefficients, so that other
// tools (the Python training code) evaluate exactly the same polynomials.
type registryJSON struct {
	Format  string          `json:"format"`
	Literal RegistryLiteral `json:"literal"`
	Recipes []recipeJSON    `json:"recipes"`
}

// recipeJSON is one recipe. To evaluate it at x:
//
//	x = min(max(x, interval[0]), interval[1])      (float64 reference only)
//	t = scalar*x + constant
//	y = sum_k coeffs[k] * T_k(t)                  (Clenshaw)
//	post "square":         repeat steps times: y = y*y
//	post "newton_inverse": u = input_scale*x; repeat: y = y*(2 - u*y); y *= output_scale
//	post "newton_invsqrt": h = (input_scale/2)*x; repeat: y = 1.5*y - (h*y)*(y*y); y *= output_scale
type recipeJSON struct {
	Func        Func       `json:"func"`
	Variant     Degree     `json:"variant"`
	Basis       Basis      `json:"basis"`
	Interval    [2]float64 `json:"interval"`
	Scalar      float64    `json:"scalar"`
	Constant    float64    `json:"constant"`
	Degree      int        `json:"degree"`
	Coeffs      []float64  `json:"coeffs"`
	IsOdd       bool       `json:"is_odd"`
	IsEven      bool       `json:"is_even"`
	Post        Post       `json:"post"`
	Steps       int        `json:"steps"`
	InputScale  float64    `json:"input_scale"`
	OutputScale float64    `json:"output_scale"`
	Cost        Cost       `json:"cost"`
	Stats       ErrorStats `json:"stats"`
}

// MarshalJSON writes the resolved registry: format, literal and every recipe
// (coefficients, change of basis, post-processing, cost, measured errors).
func (reg *Registry) MarshalJSON() ([]byte, error) {
	out := registryJSON{Format: FormatVersion, Literal: reg.lit}
	for _, fn := range Funcs() {
		for _, d := range Degrees() {
			r := reg.Recipe(fn, d)
			out.Recipes = append(out.Recipes, recipeJSON{
				Func: fn, Variant: d, Basis: Chebyshev,
				Interval: [2]float64{r.a, r.b}, Scalar: r.scalar, Constant: r.constant,
				Degree: r.PolyDegree(), Coeffs: r.coeffs, IsOdd: r.odd, IsEven: r.even,
				Post: r.post, Steps: r.steps, InputScale: r.scale, OutputScale: r.outScale,
				Cost: r.cost, Stats: r.stats,
			})
		}
	}
	return json.Marshal(out)
}

// ParseRegistryJSON rebuilds a registry from the output of MarshalJSON: it
// validates the embedded literal, recomputes every recipe and checks that
// the file's coefficients and post-processing match (coefficients to a
// relative 1e-12 of their sum of magnitudes, to allow for another platform's
// rounding). The recomputed registry is returned.
func ParseRegistryJSON(data []byte) (*Registry, error) {
	if len(data) > MaxRegistryJSON {
		return nil, fmt.Errorf("cannot ParseRegistryJSON: %d bytes > limit %d", len(data), MaxRegistryJSON)
	}
	var in registryJSON
	if err := decodeStrict(data, &in); err != nil {
		return nil, fmt.Errorf("cannot ParseRegistryJSON: %w", err)
	}
	if in.Format != FormatVersion {
		return nil, fmt.Errorf("cannot ParseRegistryJSON: format %q, want %q", in.Format, FormatVersion)
	}
	reg, err := NewRegistry(in.Literal)
	if err != nil {
		return nil, fmt.Errorf("cannot ParseRegistryJSON: %w", err)
	}
	if len(in.Recipes) != numFuncs*numDegrees {
		return nil, fmt.Errorf("cannot ParseRegistryJSON: %d recipes, want %d", len(in.Recipes), numFuncs*numDegrees)
	}
	seen := map[[2]int]bool{}
	for i, rj := range in.Recipes {
		if !rj.Func.Valid() || !rj.Variant.Valid() {
			return nil, fmt.Errorf("cannot ParseRegistryJSON: recipes[%d]: invalid func/variant", i)
		}
		key := [2]int{int(rj.Func), int(rj.Variant)}
		if seen[key] {
			return nil, fmt.Errorf("cannot ParseRegistryJSON: recipes[%d]: duplicate %s/%s", i, rj.Func, rj.Variant)
		}
		seen[key] = true
		if err := rj.matches(reg.Recipe(rj.Func, rj.Variant)); err != nil {
			return nil, fmt.Errorf("cannot ParseRegistryJSON: recipes[%d] (%s/%s): %w", i, rj.Func, rj.Variant, err)
		}
	}
	return reg, nil
}

// matches reports how rj differs from the recomputed recipe r.
func (rj recipeJSON) matches(r *Recipe) error {
	if rj.Basis != Chebyshev || rj.Interval != [2]float64{r.a, r.b} {
		return fmt.Errorf("basis/interval %v %v differ from the literal's %v [%v, %v]", rj.Basis, rj.Interval, Chebyshev, r.a, r.b)
	}
	if rj.Post != r.post || rj.Steps != r.steps || rj.InputScale != r.scale {
		return fmt.Errorf("post-processing %v x%d (scale %v) differs from the literal's %v x%d (scale %v)",
			rj.Post, rj.Steps, rj.InputScale, r.post, r.steps, r.scale)
	}
	if rj.IsOdd != r.odd || rj.IsEven != r.even {
		return fmt.Errorf("parity (odd %v, even %v) differs from the recomputed (%v, %v)", rj.IsOdd, rj.IsEven, r.odd, r.even)
	}
	if rj.Degree != r.PolyDegree() || len(rj.Coeffs) != len(r.coeffs) {
		return fmt.Errorf("degree %d with %d coefficients, want %d", rj.Degree, len(rj.Coeffs), r.PolyDegree())
	}
	var l1, diff float64
	for k, c := range r.coeffs {
		l1 += math.Abs(c)
		diff = math.Max(diff, math.Abs(c-rj.Coeffs[k]))
	}
	if !(diff <= 1e-12*l1) {
		return fmt.Errorf("coefficients differ from the recomputed ones by up to %.3g", diff)
	}
	return nil
}
