package approx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestChangeOfBasis(t *testing.T) {
	for _, iv := range [][2]float64{{-1, 1}, {-12, 12}, {-32, 4}, {0.5, 512}, {1e-3, 1e3}} {
		a, b := iv[0], iv[1]
		s, c := ChangeOfBasis(a, b)
		if got := s*a + c; math.Abs(got+1) > 1e-12 {
			t.Errorf("[%g, %g]: a maps to %g, want -1", a, b, got)
		}
		if got := s*b + c; math.Abs(got-1) > 1e-12 {
			t.Errorf("[%g, %g]: b maps to %g, want 1", a, b, got)
		}
	}
}

func TestChebyshevNodes(t *testing.T) {
	if got := ChebyshevNodes(1, 2, 6); len(got) != 1 || got[0] != 4 {
		t.Errorf("1 node on [2, 6] = %v, want [4]", got)
	}
	// n = 2: cos(pi/4), cos(3pi/4), exactly symmetric.
	got := ChebyshevNodes(2, -1, 1)
	if math.Abs(got[0]-math.Sqrt2/2) > 1e-16 || got[1] != -got[0] {
		t.Errorf("2 nodes on [-1, 1] = %v, want ±sqrt(2)/2", got)
	}
	// n = 3: sqrt(3)/2, 0, -sqrt(3)/2.
	got = ChebyshevNodes(3, -1, 1)
	if math.Abs(got[0]-math.Sqrt(3)/2) > 2e-16 || got[1] != 0 || got[2] != -got[0] {
		t.Errorf("3 nodes on [-1, 1] = %v, want sqrt(3)/2, 0, -sqrt(3)/2", got)
	}
	// Nodes are the roots of T_n.
	for _, n := range []int{4, 16, 64} {
		for j, x := range ChebyshevNodes(n, -1, 1) {
			if v := math.Cos(float64(n) * math.Acos(x)); math.Abs(v) > 1e-12 {
				t.Errorf("n=%d node %d: T_n(%g) = %g, want 0", n, j, x, v)
			}
		}
	}
}

func TestCosPiFrac(t *testing.T) {
	for q := 1; q <= 40; q++ {
		for p := 0; p <= 5*q; p++ {
			want := math.Cos(math.Pi * float64(p) / float64(q))
			// math.Cos errs by up to ~2.2e-16 times the argument: pi*p/q is rounded.
			if got := cosPiFrac(p, q); math.Abs(got-want) > (1+math.Pi*float64(p)/float64(q))*4.5e-16 {
				t.Fatalf("cosPiFrac(%d, %d) = %g, want %g", p, q, got, want)
			}
		}
	}
	// cos(44*pi/13) = -0.354604887042535625969637892600... (50-digit
	// reference); math.Cos(math.Pi*44/13) is 2.2e-15 off.
	if got := cosPiFrac(44, 13); math.Abs(got+0.35460488704253562597) > 1.2e-16 {
		t.Errorf("cosPiFrac(44, 13) = %.17g", got)
	}
	if cosPiFrac(1, 2) != 0 || cosPiFrac(3, 2) != 0 {
		t.Errorf("cos(pi/2), cos(3pi/2) not exactly 0")
	}
}

func TestClenshaw(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	coeffs := make([]float64, 20)
	for i := range coeffs {
		coeffs[i] = r.NormFloat64()
	}
	for i := 0; i <= 100; i++ {
		x := -1 + 2*float64(i)/100
		var want float64
		for k, c := range coeffs {
			want += c * math.Cos(float64(k)*math.Acos(x))
		}
		if got := Clenshaw(coeffs, x); math.Abs(got-want) > 1e-13 {
			t.Errorf("Clenshaw(%g) = %.17g, want %.17g", x, got, want)
		}
	}
	if Clenshaw(nil, 0.3) != 0 || Clenshaw([]float64{2.5}, 0.3) != 2.5 {
		t.Errorf("degenerate Clenshaw wrong")
	}
	// Outside [-1, 1] it extrapolates the polynomial: T_2(3) = 17.
	if got := Clenshaw([]float64{0, 0, 1}, 3); got != 17 {
		t.Errorf("T_2(3) = %g, want 17", got)
	}
}

// Known answer: e^x = I_0(1) + 2 sum_k I_k(1) T_k(x) on [-1, 1]; the
// degree-20 interpolant's coefficients agree with the series to rounding.
func TestChebyshevInterpolateExpKAT(t *testing.T) {
	bessel := []float64{ // I_k(1)
		1.2660658777520083, 0.5651591039924851, 0.13574766976703828,
		0.02216842492433190, 0.0027371202210468663, 0.00027146315595697545,
		2.2488661477147571e-05,
	}
	c := ChebyshevInterpolate(math.Exp, 20, -1, 1)
	for k, ik := range bessel {
		want := 2 * ik
		if k == 0 {
			want = ik
		}
		if math.Abs(c[k]-want) > 1e-15 {
			t.Errorf("c_%d = %.17g, want %.17g", k, c[k], want)
		}
	}
}

// Interpolating a polynomial of degree <= d reproduces it.
func TestChebyshevInterpolateReproducesPolynomials(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		a, b     float64
		polyDeg  int
		interDeg int
	}{
		{-1, 1, 0, 0}, {-1, 1, 3, 3}, {-1, 1, 5, 15}, {-12, 12, 7, 7},
		{-32, 4, 6, 31}, {0.5, 8, 10, 10}, {2, 3, 4, 63},
	} {
		t.Run(fmt.Sprintf("deg%d_in%d_[%g,%g]", tc.polyDeg, tc.interDeg, tc.a, tc.b), func(t *testing.T) {
			// A polynomial given by its Chebyshev coefficients on [a, b].
			want := make([]float64, tc.polyDeg+1)
			for i := range want {
				want[i] = r.NormFloat64()
			}
			s, c := ChangeOfBasis(tc.a, tc.b)
			f := func(x float64) float64 { return Clenshaw(want, s*x+c) }
			got := ChebyshevInterpolate(f, tc.interDeg, tc.a, tc.b)
			if len(got) != tc.interDeg+1 {
				t.Fatalf("%d coefficients, want %d", len(got), tc.interDeg+1)
			}
			for k := range got {
				var w float64
				if k < len(want) {
					w = want[k]
				}
				if math.Abs(got[k]-w) > 1e-13 {
					t.Errorf("c_%d = %g, want %g", k, got[k], w)
				}
			}
		})
	}
	// A monomial polynomial: 3 - 2x + x^3 on [-2, 5].
	p := func(x float64) float64 { return 3 - 2*x + x*x*x }
	c := ChebyshevInterpolate(p, 3, -2, 5)
	s, k := ChangeOfBasis(-2, 5)
	for i := 0; i <= 70; i++ {
		x := -2 + float64(i)/10
		if got, want := Clenshaw(c, s*x+k), p(x); math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("x=%g: %g, want %g", x, got, want)
		}
	}
	// T_m itself gives the unit vector e_m.
	for m := 0; m <= 7; m++ {
		tm := func(x float64) float64 { return math.Cos(float64(m) * math.Acos(x)) }
		got := ChebyshevInterpolate(tm, 7, -1, 1)
		for k, v := range got {
			want := 0.0
			if k == m {
				want = 1
			}
			if math.Abs(v-want) > 1e-14 {
				t.Errorf("T_%d: c_%d = %g, want %g", m, k, v, want)
			}
		}
	}
}

func TestChebyshevInterpolateDeterministic(t *testing.T) {
	a := ChebyshevInterpolate(math.Tanh, 63, -10, 10)
	b := ChebyshevInterpolate(math.Tanh, 63, -10, 10)
	for k := range a {
		if math.Float64bits(a[k]) != math.Float64bits(b[k]) {
			t.Fatalf("c_%d differs between runs", k)
		}
	}
}
