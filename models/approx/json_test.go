package approx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRegistryJSONRoundTrip(t *testing.T) {
	for name, lit := range map[string]RegistryLiteral{"default": DefaultLiteral(), "newton": newtonLiteral()} {
		t.Run(name, func(t *testing.T) {
			reg, err := NewRegistry(lit)
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(reg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseRegistryJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			if back.Literal() != lit {
				t.Errorf("literal changed in the round trip")
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, again) {
				t.Errorf("second export differs from the first")
			}
		})
	}
}

// The export carries what another evaluator needs; check it by evaluating a
// recipe from the decoded JSON alone.
func TestRegistryJSONContent(t *testing.T) {
	reg := Default()
	data, err := json.Marshal(reg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Format  string
		Recipes []struct {
			Func, Variant, Basis, Post string
			Interval                   [2]float64
			Scalar, Constant           float64
			Degree, Steps              int
			Coeffs                     []float64
			IsOdd                      bool `json:"is_odd"`
			IsEven                     bool `json:"is_even"`
			Cost                       struct{ Depth int }
			Stats                      struct {
				MaxAbsErr float64 `json:"max_abs_err"`
			}
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Format != FormatVersion || len(doc.Recipes) != 10 {
		t.Fatalf("format %q, %d recipes", doc.Format, len(doc.Recipes))
	}
	for _, rj := range doc.Recipes {
		var fn Func
		var d Degree
		if err := fn.UnmarshalText([]byte(rj.Func)); err != nil {
			t.Fatal(err)
		}
		if err := d.UnmarshalText([]byte(rj.Variant)); err != nil {
			t.Fatal(err)
		}
		r := reg.Recipe(fn, d)
		if rj.Basis != "chebyshev" || rj.Degree != len(rj.Coeffs)-1 || rj.Cost.Depth != r.Cost().Depth ||
			rj.Stats.MaxAbsErr != r.Stats().MaxAbsErr || rj.Post != r.Post().String() || rj.Steps != r.Steps() {
			t.Errorf("%v/%v: exported %+v", fn, d, rj)
		}
		if odd, even := r.Parity(); rj.IsOdd != odd || rj.IsEven != even {
			t.Errorf("%v/%v: parity", fn, d)
		}
		// Evaluate from the JSON fields: clamp, change of basis, Clenshaw, post.
		for _, x := range []float64{rj.Interval[0], 0.37*rj.Interval[0] + 0.63*rj.Interval[1], rj.Interval[1]} {
			y := Clenshaw(rj.Coeffs, rj.Scalar*x+rj.Constant)
			if rj.Post == "square" {
				for i := 0; i < rj.Steps; i++ {
					y *= y
				}
			}
			if got := r.Eval(x); got != y {
				t.Errorf("%v/%v at %g: from JSON %g, Eval %g", fn, d, x, y, got)
			}
		}
	}
}

func TestParseRegistryJSONRejects(t *testing.T) {
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	recipe := func(m map[string]any, i int) map[string]any { return m["recipes"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name, errHas string
		data         []byte
	}{
		{"wrong format", "format", edit(func(m map[string]any) { m["format"] = "v0" })},
		{"tampered coefficient", "recipes[0] (gelu/high): coefficients differ", edit(func(m map[string]any) {
			recipe(m, 0)["coeffs"].([]any)[3] = 0.125
		})},
		{"wrong degree", "recipes[2] (exp/high): degree", edit(func(m map[string]any) {
			r := recipe(m, 2)
			r["coeffs"] = r["coeffs"].([]any)[:5]
		})},
		{"wrong interval", "recipes[9] (tanh/low): basis/interval", edit(func(m map[string]any) {
			recipe(m, 9)["interval"] = []any{-9, 9}
		})},
		{"wrong steps", "recipes[3] (exp/low): post-processing", edit(func(m map[string]any) { recipe(m, 3)["steps"] = 1 })},
		{"wrong parity", "recipes[8] (tanh/high): parity", edit(func(m map[string]any) { recipe(m, 8)["is_even"] = true })},
		{"duplicate", "duplicate gelu/high", edit(func(m map[string]any) {
			rs := m["recipes"].([]any)
			rs[1] = rs[0]
		})},
		{"missing recipe", "9 recipes, want 10", edit(func(m map[string]any) {
			m["recipes"] = m["recipes"].([]any)[:9]
		})},
		{"invalid literal", "gelu.high.degree = 0", edit(func(m map[string]any) {
			m["literal"].(map[string]any)["gelu"].(map[string]any)["high"].(map[string]any)["degree"] = 0
		})},
		{"unknown field", "unknown field", edit(func(m map[string]any) { m["extra"] = 1 })},
		{"unknown function", "unknown function", edit(func(m map[string]any) { recipe(m, 0)["func"] = "relu" })},
		{"truncated", "unexpected EOF", data[:len(data)/2]},
		{"oversized", "limit", make([]byte, MaxRegistryJSON+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRegistryJSON(tc.data)
			if err == nil || !strings.HasPrefix(err.Error(), "cannot ParseRegistryJSON") || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one containing %q", err, tc.errHas)
			}
		})
	}
}
