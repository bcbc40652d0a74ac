package approx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// maxErrors measures recipe r against the exact function on its own grid:
// the end points and n points drawn uniformly (and, for positive intervals,
// log-uniformly) from [A, B], independent of the grid ErrorStats uses.
func maxErrors(r *Recipe, n int, seed uint64) (abs, rel float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	a, b := r.Interval()
	xs := []float64{a, b}
	for i := 0; i < n; i++ {
		xs = append(xs, a+(b-a)*rng.Float64())
		if a > 0 {
			xs = append(xs, a*math.Pow(b/a, rng.Float64()))
		}
	}
	for _, x := range xs {
		want := r.Func().Exact(x)
		e := math.Abs(r.Eval(x) - want)
		abs = math.Max(abs, e)
		rel = math.Max(rel, e/math.Abs(want))
	}
	return abs, rel
}

// errorBounds states, per function and variant, the largest error each
// configuration may have on its interval. maxAbs/maxRel of 0 are not checked.
var errorBounds = []struct {
	name           string
	lit            func() RegistryLiteral
	fn             Func
	deg            Degree
	maxAbs, maxRel float64
}{
	// Defaults (see DefaultLiteral).
	{"default", DefaultLiteral, GELU, High, 3e-7, 0},
	{"default", DefaultLiteral, GELU, Low, 1e-2, 0},
	{"default", DefaultLiteral, Exp, High, 3e-7, 2e-5},
	{"default", DefaultLiteral, Exp, Low, 1e-2, 1e-2},
	{"default", DefaultLiteral, Reciprocal, High, 1e-6, 3e-7},
	{"default", DefaultLiteral, Reciprocal, Low, 1e-6, 3e-7},
	{"default", DefaultLiteral, InvSqrt, High, 1e-4, 2e-5},
	{"default", DefaultLiteral, InvSqrt, Low, 1e-4, 2e-5},
	{"default", DefaultLiteral, Tanh, High, 1e-4, 0},
	{"default", DefaultLiteral, Tanh, Low, 1e-4, 0},
	// Newton recipes and other trade-offs.
	{"newton", newtonLiteral, Reciprocal, High, 5e-6, 2e-6},
	{"newton", newtonLiteral, Reciprocal, Low, 2e-8, 2e-8},
	{"newton", newtonLiteral, InvSqrt, High, 1e-6, 1e-7},
	{"newton", newtonLiteral, InvSqrt, Low, 1e-5, 1e-6},
	{"newton", newtonLiteral, Exp, High, 1e-10, 1e-10},
	{"newton", newtonLiteral, Exp, Low, 1e-3, 1e-3},
	{"newton", newtonLiteral, GELU, High, 1e-9, 0},
	{"newton", newtonLiteral, GELU, Low, 2e-3, 0},
}

// newtonLiteral uses Newton steps (with pre-scales) for Reciprocal and
// InvSqrt, more squarings for Exp and a narrower GELU interval.
func newtonLiteral() RegistryLiteral {
	l := DefaultLiteral()
	l.GELU.Interval = [2]float64{-10, 10}
	l.Exp.High = VariantLiteral{Degree: 15, Squarings: 3}
	l.Exp.Low = VariantLiteral{Degree: 7, Squarings: 4}
	l.Reciprocal = FuncLiteral{Interval: [2]float64{0.5, 512}, Scale: 1.0 / 64,
		High: VariantLiteral{Degree: 63, Newton: 2}, Low: VariantLiteral{Degree: 127, Newton: 2}}
	l.InvSqrt = FuncLiteral{Interval: [2]float64{0.1, 100}, Scale: 0.01,
		High: VariantLiteral{Degree: 63, Newton: 2}, Low: VariantLiteral{Degree: 31, Newton: 3}}
	return l
}

func TestErrorBounds(t *testing.T) {
	regs := map[string]*Registry{}
	for _, tc := range errorBounds {
		reg := regs[tc.name]
		if reg == nil {
			var err error
			if reg, err = NewRegistry(tc.lit()); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			regs[tc.name] = reg
		}
		r := reg.Recipe(tc.fn, tc.deg)
		a, b := r.Interval()
		t.Run(fmt.Sprintf("%s/%v/%v/deg=%d/[%g,%g]", tc.name, tc.fn, tc.deg, r.PolyDegree(), a, b), func(t *testing.T) {
			abs, rel := maxErrors(r, 20000, 1)
			st := r.Stats()
			if abs > tc.maxAbs || st.MaxAbsErr > tc.maxAbs {
				t.Errorf("max abs error %.3g (stats %.3g) > bound %.3g", abs, st.MaxAbsErr, tc.maxAbs)
			}
			if tc.maxRel > 0 && (rel > tc.maxRel || st.MaxRelErr > tc.maxRel) {
				t.Errorf("max rel error %.3g (stats %.3g) > bound %.3g", rel, st.MaxRelErr, tc.maxRel)
			}
			if st.RelDefined != (tc.maxRel > 0) {
				t.Errorf("RelDefined = %v", st.RelDefined)
			}
			// The stats' dense grid must not miss the worst error by much.
			if abs > 1.5*st.MaxAbsErr+1e-15 {
				t.Errorf("random points found error %.3g, stats only %.3g", abs, st.MaxAbsErr)
			}
		})
	}
}

// The low-degree variants are noticeably cheaper where they differ.
func TestLowIsCheaper(t *testing.T) {
	reg := Default()
	for _, fn := range []Func{GELU, Exp} {
		hi, lo := reg.Recipe(fn, High).Cost(), reg.Recipe(fn, Low).Cost()
		if lo.CtCtMuls >= hi.CtCtMuls || lo.Depth > hi.Depth {
			t.Errorf("%v: low costs %d products at depth %d, high %d at depth %d", fn, lo.CtCtMuls, lo.Depth, hi.CtCtMuls, hi.Depth)
		}
	}
}

// Every default degree is of the form 2^k - 1 (no wasted level).
func TestDefaultDegreesFillTheirLevels(t *testing.T) {
	for _, row := range Default().Table() {
		if d := row.Degree + 1; d&(d-1) != 0 {
			t.Errorf("%v/%v: degree %d is not 2^k - 1", row.Func, row.Variant, row.Degree)
		}
	}
}

func TestRecipeStructure(t *testing.T) {
	reg := Default()
	// Exp: p interpolates exp(x/2^r), then r squarings.
	e := reg.Recipe(Exp, High)
	if e.Post() != PostSquare || e.Steps() != 2 {
		t.Fatalf("exp post %v x%d", e.Post(), e.Steps())
	}
	for _, x := range []float64{-30, -3.3, 0, 1.7, 4} {
		y := e.Poly(x)
		if math.Abs(y-math.Exp(x/4)) > 5e-8 {
			t.Errorf("exp p(%g) = %g, want exp(x/4) = %g", x, y, math.Exp(x/4))
		}
		if got, want := e.Eval(x), (y*y)*(y*y); got != want {
			t.Errorf("exp Eval(%g) = %g, want p^4 = %g", x, got, want)
		}
	}
	// Tanh is odd on a symmetric interval: even coefficients are exactly 0.
	th := reg.Recipe(Tanh, High)
	if odd, even := th.Parity(); !odd || even {
		t.Errorf("tanh parity (odd %v, even %v), want (true, false)", odd, even)
	}
	for k, c := range th.Coeffs() {
		if k%2 == 0 && c != 0 {
			t.Errorf("tanh c_%d = %g, want 0", k, c)
		}
	}
	if th.Eval(0) != 0 || th.Eval(3) != -th.Eval(-3) {
		t.Errorf("tanh approximation is not exactly odd")
	}
	if odd, even := reg.Recipe(GELU, High).Parity(); !odd || !even {
		t.Errorf("gelu parity (odd %v, even %v), want generic (true, true)", odd, even)
	}
	// Newton recipes: the same formulas the HE side runs.
	nreg, err := NewRegistry(newtonLiteral())
	if err != nil {
		t.Fatal(err)
	}
	rc := nreg.Recipe(Reciprocal, High)
	if rc.InputScale() != 1.0/64 || rc.OutputScale() != 1.0/64 || rc.Post() != PostNewtonInverse || rc.Steps() != 2 {
		t.Fatalf("reciprocal recipe %v x%d, scales %g %g", rc.Post(), rc.Steps(), rc.InputScale(), rc.OutputScale())
	}
	is := nreg.Recipe(InvSqrt, High)
	if is.InputScale() != 0.01 || is.OutputScale() != 0.1 || is.Post() != PostNewtonInvSqrt || is.Steps() != 2 {
		t.Fatalf("invsqrt recipe %v x%d, scales %g %g", is.Post(), is.Steps(), is.InputScale(), is.OutputScale())
	}
	for _, x := range []float64{0.5, 0.7, 3, 55, 100} { // inside both intervals
		y := rc.Poly(x)
		u := x / 64
		y = y * (2 - u*y)
		y = y * (2 - u*y)
		if got := rc.Eval(x); got != y/64 {
			t.Errorf("reciprocal Eval(%g) = %g, want %g", x, got, y/64)
		}
		y = is.Poly(x)
		h := 0.005 * x
		for i := 0; i < 2; i++ {
			y = 1.5*y - (h*y)*(y*y)
		}
		if got := is.Eval(x); got != y*0.1 {
			t.Errorf("invsqrt Eval(%g) = %g, want %g", x, got, y*0.1)
		}
	}
}

func TestClamping(t *testing.T) {
	reg := Default()
	for _, fn := range Funcs() {
		for _, d := range Degrees() {
			r := reg.Recipe(fn, d)
			a, b := r.Interval()
			span := b - a
			for _, x := range []float64{a - 1, a - span, a - 1e6, math.Inf(-1)} {
				if fn.positiveDomain() && x <= 0 {
					x = a / 2 // stay positive: below A but meaningful
				}
				if r.Contains(x) || reg.Contains(fn, x) {
					t.Errorf("%v: Contains(%g) for [%g, %g]", fn, x, a, b)
				}
				if got, want := reg.Eval(fn, d, x), r.Eval(a); got != want {
					t.Errorf("%v/%v: Eval(%g) = %g, want the value at A = %g", fn, d, x, got, want)
				}
			}
			for _, x := range []float64{b + 1e-9, b + span, math.Inf(1)} {
				if r.Contains(x) {
					t.Errorf("%v: Contains(%g) for [%g, %g]", fn, x, a, b)
				}
				if got, want := r.Eval(x), r.Eval(b); got != want {
					t.Errorf("%v/%v: Eval(%g) = %g, want the value at B = %g", fn, d, x, got, want)
				}
			}
			if !r.Contains(a) || !r.Contains(b) || !r.Contains((a+b)/2) || r.Contains(math.NaN()) {
				t.Errorf("%v: Contains wrong at the end points, middle or NaN", fn)
			}
			if !math.IsNaN(r.Eval(math.NaN())) {
				t.Errorf("%v: Eval(NaN) is not NaN", fn)
			}
		}
	}
	// What HE would compute outside the interval: the unclamped polynomial
	// leaves the function quickly.
	g := reg.Recipe(GELU, High)
	if y := g.EvalUnclamped(16); math.Abs(y-GELU.Exact(16)) < 1 {
		t.Errorf("GELU p(16) = %g: expected the polynomial to diverge outside [-12, 12]", y)
	}
	if g.EvalUnclamped(5) != g.Eval(5) {
		t.Errorf("EvalUnclamped differs from Eval inside the interval")
	}
}

func TestEvalVec(t *testing.T) {
	reg := Default()
	in := []float64{-40, -12, -1.5, 0, 0.3, 7, 12, 13, math.NaN()}
	for _, fn := range Funcs() {
		for _, d := range Degrees() {
			out := make([]float64, len(in)+3)
			for i := range out {
				out[i] = 42
			}
			clamped := reg.EvalVec(fn, d, in, out)
			want := 0
			for i, x := range in {
				if !reg.Contains(fn, x) {
					want++
				}
				e := reg.Eval(fn, d, x)
				if out[i] != e && !(math.IsNaN(e) && math.IsNaN(out[i])) {
					t.Errorf("%v/%v: EvalVec[%d] = %g, Eval = %g", fn, d, i, out[i], e)
				}
			}
			if clamped != want {
				t.Errorf("%v/%v: clamped %d, want %d", fn, d, clamped, want)
			}
			if out[len(in)] != 42 {
				t.Errorf("EvalVec wrote past len(in)")
			}
			// In place.
			buf := append([]float64(nil), in...)
			reg.EvalVec(fn, d, buf, buf)
			for i := range in {
				if buf[i] != out[i] && !(math.IsNaN(buf[i]) && math.IsNaN(out[i])) {
					t.Errorf("%v/%v: in-place EvalVec[%d] = %g, want %g", fn, d, i, buf[i], out[i])
				}
			}
		}
	}
	// Bit-identical to Eval on the four-wide path and the tail alike.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, fn := range Funcs() {
		for _, d := range Degrees() {
			a, b := reg.Interval(fn)
			span := b - a
			xs := make([]float64, 103)
			for i := range xs {
				xs[i] = a - span/4 + 1.5*span*rng.Float64()
			}
			ys := make([]float64, len(xs))
			reg.EvalVec(fn, d, xs, ys)
			for i, x := range xs {
				if e := reg.Eval(fn, d, x); math.Float64bits(e) != math.Float64bits(ys[i]) {
					t.Fatalf("%v/%v: EvalVec(%g) = %.17g, Eval = %.17g", fn, d, x, ys[i], e)
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("EvalVec with a short output did not panic")
		}
	}()
	reg.EvalVec(GELU, High, in, make([]float64, 2))
}

func TestCheckRange(t *testing.T) {
	reg := Default()
	s := reg.CheckRange(GELU, []float64{-13, -12, 0, 11.9, 12, 12.5, 100, math.NaN()})
	want := RangeStats{N: 8, Below: 1, Above: 2, NaN: 1, Min: -13, Max: 100}
	if s != want {
		t.Errorf("CheckRange = %+v, want %+v", s, want)
	}
	if s.OutOfRange() != 4 {
		t.Errorf("OutOfRange = %d, want 4", s.OutOfRange())
	}
	s2 := reg.CheckRange(GELU, []float64{-20, 3})
	m := s.Merge(s2)
	if m.N != 10 || m.Below != 2 || m.Above != 2 || m.NaN != 1 || m.Min != -20 || m.Max != 100 {
		t.Errorf("Merge = %+v", m)
	}
	if got := (RangeStats{}).Merge(s2); got != s2 {
		t.Errorf("empty.Merge = %+v, want %+v", got, s2)
	}
	if got := s2.Merge(RangeStats{}); got != s2 {
		t.Errorf("Merge(empty) = %+v, want %+v", got, s2)
	}
	e := reg.CheckRange(InvSqrt, nil)
	if e.N != 0 || e.OutOfRange() != 0 {
		t.Errorf("CheckRange(nil) = %+v", e)
	}
}

func TestDefaultRegistry(t *testing.T) {
	reg, err := NewRegistry(DefaultLiteral())
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if d != Default() {
		t.Errorf("Default is rebuilt on every call")
	}
	if d.Literal() != DefaultLiteral() {
		t.Errorf("Default().Literal() differs from DefaultLiteral()")
	}
	for _, fn := range Funcs() {
		for _, v := range Degrees() {
			a, b := reg.Recipe(fn, v), d.Recipe(fn, v)
			ca, cb := a.Coeffs(), b.Coeffs()
			for k := range ca {
				if math.Float64bits(ca[k]) != math.Float64bits(cb[k]) {
					t.Fatalf("%v/%v: c_%d differs between two builds", fn, v, k)
				}
			}
		}
	}
	// Coeffs returns a copy.
	c := d.Recipe(GELU, High).Coeffs()
	c[1] = 1e9
	if d.Recipe(GELU, High).Coeffs()[1] == 1e9 {
		t.Errorf("Coeffs exposes the recipe's storage")
	}
}

func TestRecipePanicsOnInvalidKey(t *testing.T) {
	for _, k := range []struct {
		fn Func
		d  Degree
	}{{Func(9), High}, {GELU, Degree(5)}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Recipe(%v, %v) did not panic", k.fn, k.d)
				}
			}()
			Default().Recipe(k.fn, k.d)
		}()
	}
}

func TestConcurrentEval(t *testing.T) {
	reg := Default()
	in := make([]float64, 256)
	for i := range in {
		in[i] = -12 + 24*float64(i)/255
	}
	want := make([]float64, len(in))
	reg.EvalVec(GELU, Low, in, want)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float64, len(in))
			reg.EvalVec(GELU, Low, in, out)
			for i := range out {
				if out[i] != want[i] {
					t.Errorf("concurrent EvalVec differs at %d", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestTable(t *testing.T) {
	tab := Default().Table()
	if len(tab) != len(Funcs())*len(Degrees()) {
		t.Fatalf("%d rows", len(tab))
	}
	for _, row := range tab {
		r := Default().Recipe(row.Func, row.Variant)
		a, b := r.Interval()
		if row.A != a || row.B != b || row.Degree != r.PolyDegree() || row.Cost != r.Cost() || row.Stats != r.Stats() {
			t.Errorf("%v/%v: row %+v disagrees with the recipe", row.Func, row.Variant, row)
		}
		if row.Cost.Depth < 1 || row.Cost.CtCtMuls < 1 || row.CoeffsL1 <= 0 {
			t.Errorf("%v/%v: implausible row %+v", row.Func, row.Variant, row)
		}
	}
	s := tab.String()
	for _, want := range []string{"func", "max abs err", "gelu", "invsqrt", "square x2", "[-12, 12]"} {
		if !strings.Contains(s, want) {
			t.Errorf("table text lacks %q:\n%s", want, s)
		}
	}
	t.Logf("default registry:\n%s", s)
}

func TestEnumText(t *testing.T) {
	for _, fn := range Funcs() {
		b, err := fn.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Func
		if err := back.UnmarshalText(b); err != nil || back != fn || fn.String() != string(b) {
			t.Errorf("Func %v: %q -> %v, %v", fn, b, back, err)
		}
	}
	for _, d := range Degrees() {
		b, _ := d.MarshalText()
		var back Degree
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("Degree %v: %q -> %v, %v", d, b, back, err)
		}
	}
	for p := Post(0); p < numPosts; p++ {
		b, _ := p.MarshalText()
		var back Post
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Errorf("Post %v: %q -> %v, %v", p, b, back, err)
		}
	}
	var f Func
	var d Degree
	var p Post
	var bs Basis
	if f.UnmarshalText([]byte("relu")) == nil || d.UnmarshalText([]byte("medium")) == nil ||
		p.UnmarshalText([]byte("cube")) == nil || bs.UnmarshalText([]byte("minimax")) == nil {
		t.Errorf("unknown names accepted")
	}
	if _, err := Func(9).MarshalText(); err == nil {
		t.Errorf("invalid Func marshalled")
	}
	if Func(9).String() != "Func(9)" || Degree(4).String() != "Degree(4)" || Post(9).String() != "Post(9)" {
		t.Errorf("String of invalid values")
	}
}
