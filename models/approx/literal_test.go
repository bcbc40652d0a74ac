package approx

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestLiteralValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(l *RegistryLiteral)
		errHas string // substring of the error; "" means valid
	}{
		{"default", func(l *RegistryLiteral) {}, ""},
		{"empty interval", func(l *RegistryLiteral) { l.GELU.Interval = [2]float64{3, 3} }, "gelu.interval = [3, 3]: empty interval"},
		{"reversed interval", func(l *RegistryLiteral) { l.Tanh.Interval = [2]float64{5, -5} }, "tanh.interval = [5, -5]: empty interval"},
		{"zero interval", func(l *RegistryLiteral) { l.Exp.Interval = [2]float64{} }, "exp.interval = [0, 0]: empty interval"},
		{"NaN bound", func(l *RegistryLiteral) { l.GELU.Interval[0] = math.NaN() }, "gelu.interval = [NaN, 12]: bounds must be finite"},
		{"Inf bound", func(l *RegistryLiteral) { l.Exp.Interval[1] = math.Inf(1) }, "exp.interval = [-32, +Inf]: bounds must be finite"},
		{"invsqrt touches 0", func(l *RegistryLiteral) { l.InvSqrt.Interval = [2]float64{0, 1000} }, "invsqrt.interval = [0, 1000]: must be strictly positive"},
		{"invsqrt negative", func(l *RegistryLiteral) { l.InvSqrt.Interval = [2]float64{-1, 1} }, "invsqrt.interval = [-1, 1]: must be strictly positive"},
		{"reciprocal touches 0", func(l *RegistryLiteral) { l.Reciprocal.Interval = [2]float64{0, 1} }, "reciprocal.interval = [0, 1]: must be strictly positive"},
		{"degree 0", func(l *RegistryLiteral) { l.GELU.High.Degree = 0 }, "gelu.high.degree = 0: must be in [1, 1023]"},
		{"negative degree", func(l *RegistryLiteral) { l.Tanh.High.Degree = -3 }, "tanh.high.degree = -3"},
		{"degree too large", func(l *RegistryLiteral) { l.GELU.High.Degree = 4096 }, "gelu.high.degree = 4096"},
		{"low degree 0 with squarings", func(l *RegistryLiteral) { l.Exp.Low = VariantLiteral{Squarings: 2} }, "exp.low.degree = 0"},
		{"negative low degree", func(l *RegistryLiteral) { l.GELU.Low.Degree = -1 }, "gelu.low.degree = -1"},
		{"negative squarings", func(l *RegistryLiteral) { l.Exp.High.Squarings = -1 }, "exp.high.squarings = -1"},
		{"too many squarings", func(l *RegistryLiteral) { l.Exp.Low.Squarings = 17 }, "exp.low.squarings = 17"},
		{"squarings on gelu", func(l *RegistryLiteral) { l.GELU.High.Squarings = 1 }, "gelu.high.squarings = 1: squarings apply only to exp"},
		{"negative newton", func(l *RegistryLiteral) { l.InvSqrt.High.Newton = -1 }, "invsqrt.high.newton = -1"},
		{"too many newton", func(l *RegistryLiteral) { l.Reciprocal.High.Newton = 9 }, "reciprocal.high.newton = 9"},
		{"newton on tanh", func(l *RegistryLiteral) { l.Tanh.High.Newton = 1 }, "tanh.high.newton = 1: Newton steps apply only"},
		{"negative scale", func(l *RegistryLiteral) { l.InvSqrt.Scale = -2 }, "invsqrt.scale = -2: must be finite and > 0"},
		{"NaN scale", func(l *RegistryLiteral) { l.Reciprocal.Scale = math.NaN() }, "reciprocal.scale = NaN"},
		{"scale on gelu", func(l *RegistryLiteral) { l.GELU.Scale = 2 }, "gelu.scale = 2: a pre-scale applies only"},
		{"bad basis", func(l *RegistryLiteral) { l.Exp.Basis = Basis(7) }, "exp.basis = Basis(7): only chebyshev"},
		{"zero literal", func(l *RegistryLiteral) { *l = RegistryLiteral{} }, "gelu.interval = [0, 0]: empty interval"},
		{"valid newton", func(l *RegistryLiteral) {
			l.Reciprocal = FuncLiteral{Interval: [2]float64{1, 128}, Scale: 0.5, High: VariantLiteral{Degree: 31, Newton: 2}}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lit := DefaultLiteral()
			tc.edit(&lit)
			err := lit.Validate()
			_, nerr := NewRegistry(lit)
			if tc.errHas == "" {
				if err != nil || nerr != nil {
					t.Fatalf("unexpected errors: Validate %v, NewRegistry %v", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Validate error %v, want one containing %q", err, tc.errHas)
			}
			if nerr == nil || !strings.HasPrefix(nerr.Error(), "cannot NewRegistry: ") || !strings.Contains(nerr.Error(), tc.errHas) {
				t.Fatalf("NewRegistry error %v, want one containing %q", nerr, tc.errHas)
			}
		})
	}
}

// Newton steps from an initial guess whose residual is >= 1 diverge (or
// converge to the wrong root). Interpolants never do that (see checkNewton),
// so the check is exercised on a recipe whose polynomial is doubled.
func TestCheckNewton(t *testing.T) {
	for _, fn := range []Func{Reciprocal, InvSqrt} {
		fl := FuncLiteral{Interval: [2]float64{1, 16}, High: VariantLiteral{Degree: 7, Newton: 2}}
		r, err := newRecipe(fn, High, fl, fl.High)
		if err != nil {
			t.Fatal(err)
		}
		if res := r.Stats().InitialResidual; !(res > 0 && res < 1) {
			t.Errorf("%v: residual of the interpolant %g, want in (0, 1)", fn, res)
		}
		bad := *r
		bad.coeffs = append([]float64(nil), r.coeffs...)
		for k := range bad.coeffs {
			bad.coeffs[k] *= 2.5 // |1 - x*y0| ~ 1.5, |1 - x*y0^2| ~ 5
		}
		bad.stats = bad.measure()
		if err := bad.checkNewton(); err == nil || !strings.Contains(err.Error(), "Newton steps diverge") {
			t.Errorf("%v: checkNewton = %v, want a divergence error", fn, err)
		}
		bad.steps = 0
		bad.stats = bad.measure()
		if err := bad.checkNewton(); err != nil || bad.Stats().InitialResidual != 0 {
			t.Errorf("%v without steps: checkNewton = %v, residual %g", fn, err, bad.Stats().InitialResidual)
		}
	}
	// Even on a hopeless interval the interpolant's residual stays below 1.
	lit := DefaultLiteral()
	lit.InvSqrt = FuncLiteral{Interval: [2]float64{1e-3, 1e3}, High: VariantLiteral{Degree: 7, Newton: 3}}
	reg, err := NewRegistry(lit)
	if err != nil {
		t.Fatal(err)
	}
	if st := reg.Recipe(InvSqrt, High).Stats(); !(st.InitialResidual < 1 && st.MaxRelErr > 0.5) {
		t.Errorf("stats %+v: want residual < 1 and a useless approximation", st)
	}
}

func TestNewRegistryRejectsNonFinite(t *testing.T) {
	lit := DefaultLiteral()
	lit.Exp.Interval = [2]float64{-32, 800} // exp(800) overflows float64
	if _, err := NewRegistry(lit); err == nil || !strings.Contains(err.Error(), "exp.high") {
		t.Fatalf("err = %v, want a non-finite error for exp.high", err)
	}
}

func TestLowDefaultsToHigh(t *testing.T) {
	fl := FuncLiteral{Interval: [2]float64{-1, 1}, High: VariantLiteral{Degree: 15}}
	if fl.Variant(Low) != fl.High {
		t.Errorf("Variant(Low) = %+v, want High %+v", fl.Variant(Low), fl.High)
	}
	reg := Default()
	hi, lo := reg.Recipe(Tanh, High), reg.Recipe(Tanh, Low)
	if lo.Variant() != Low || hi.Variant() != High {
		t.Errorf("variants labelled %v/%v", hi.Variant(), lo.Variant())
	}
	if lo.PolyDegree() != hi.PolyDegree() || lo.Stats() != hi.Stats() || lo.Cost() != hi.Cost() {
		t.Errorf("tanh low differs from high although the literal's Low is zero")
	}
}

func TestParseLiteralJSON(t *testing.T) {
	lit := DefaultLiteral()
	lit.InvSqrt.Scale = 0.25
	lit.InvSqrt.High.Newton = 1
	data, err := json.Marshal(lit)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseLiteralJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if back != lit {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, lit)
	}

	// A hand-written literal: basis may be omitted, low may be omitted.
	hand := `{
		"gelu": {"interval": [-8, 8], "high": {"degree": 63}, "low": {"degree": 15}},
		"exp": {"interval": [-20, 2], "basis": "chebyshev", "high": {"degree": 15, "squarings": 3}},
		"reciprocal": {"interval": [1, 64], "scale": 0.125, "high": {"degree": 31, "newton": 2}},
		"invsqrt": {"interval": [0.5, 50], "high": {"degree": 63, "newton": 1}},
		"tanh": {"interval": [-6, 6], "high": {"degree": 31}}
	}`
	l, err := ParseLiteralJSON([]byte(hand))
	if err != nil {
		t.Fatal(err)
	}
	if l.Exp.Variant(Low) != (VariantLiteral{Degree: 15, Squarings: 3}) || l.Reciprocal.Scale != 0.125 || l.GELU.Low.Degree != 15 {
		t.Errorf("parsed %+v", l)
	}
	if _, err := NewRegistry(l); err != nil {
		t.Errorf("NewRegistry(hand-written): %v", err)
	}

	for name, bad := range map[string]string{
		"unknown field": `{"gelu": {"interval": [-8, 8], "degre": 3}}`,
		"unknown basis": `{"gelu": {"interval": [-8, 8], "basis": "minimax"}}`,
		"trailing data": `{} {}`,
		"not json":      `gelu=63`,
	} {
		if _, err := ParseLiteralJSON([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "cannot ParseLiteralJSON") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	huge := make([]byte, MaxLiteralJSON+1)
	if _, err := ParseLiteralJSON(huge); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized: err = %v", err)
	}
}
