package kernels

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// lattigoMatrix computes MulMatrixMontgomery's result with Lattigo's
// routines, limb by limb: MulCoeffsMontgomeryLazyThenAddLazy into a zero
// accumulator, ReduceLazy after every `every` terms (a schedule of its own,
// not the backend's), Reduce at the end.
func lattigoMatrix(subs []*ring.SubRing, s MatrixShape, x, wt []ringqp.Poly, basis Basis, every func(q uint64) int) []ringqp.Poly {
	n := subs[0].N
	out := make([]ringqp.Poly, s.Rows*s.Cols*s.Parts)
	acc := make([]uint64, n)
	coeffs := func(p ringqp.Poly, j int) []uint64 {
		if j <= basis.LevelQ {
			return p.Q.Coeffs[j]
		}
		return p.P.Coeffs[j-basis.LevelQ-1]
	}
	for k := range out {
		out[k] = ringqp.Poly{Q: ring.NewPoly(n, basis.LevelQ)}
		if basis.LevelP >= 0 {
			out[k].P = ring.NewPoly(n, basis.LevelP)
		}
	}
	for j, sub := range subs {
		for r := 0; r < s.Rows; r++ {
			for c := 0; c < s.Cols; c++ {
				for p := 0; p < s.Parts; p++ {
					clear(acc)
					terms := 0
					for a := 0; a < s.Inner; a++ {
						if terms == every(sub.Modulus) {
							sub.ReduceLazy(acc, acc)
							terms = 1
						}
						sub.MulCoeffsMontgomeryLazyThenAddLazy(coeffs(x[(r*s.Inner+a)*s.Parts+p], j), coeffs(wt[c*s.Inner+a], j), acc)
						terms++
					}
					sub.Reduce(acc, coeffs(out[(r*s.Cols+c)*s.Parts+p], j))
				}
			}
		}
	}
	return out
}

func (tc *testContext) subRings(b Basis) []*ring.SubRing {
	subs := append([]*ring.SubRing{}, tc.params.RingQ().SubRings[:b.LevelQ+1]...)
	if b.LevelP >= 0 {
		subs = append(subs, tc.params.RingP().SubRings[:b.LevelP+1]...)
	}
	return subs
}

// TestMulMatrixMontgomery compares the fused matrix product with Lattigo's
// multiply-accumulates, word for word, on shapes whose inner dimension
// forces lazy reductions on the 61-bit primes (LazyTerms = 4), with
// enough accumulators to split the coefficients into chunks and, with a
// small accumulator budget, the rows into tiles (of one or two rows, the
// last one partial for 3 rows).
func TestMulMatrixMontgomery(t *testing.T) {
	for _, words := range []int{accWords, 8 * 64} {
		t.Run(fmt.Sprintf("acc=%d", words), func(t *testing.T) { testMulMatrixMontgomery(t, words) })
	}
}

// testMulMatrixMontgomery runs the comparison with an accumulator budget of
// words: the default, and a small one that splits the rows of the larger
// shapes into tiles.
func testMulMatrixMontgomery(t *testing.T, words int) {
	defer func(w int) { accWords = w }(accWords)
	accWords = words
	for _, tc := range getContexts(t) {
		b := tc.fullBasis()
		rng := rand.New(rand.NewPCG(13, 14))
		for _, s := range []MatrixShape{{1, 1, 1, 1}, {2, 3, 4, 2}, {3, 9, 2, 2}, {1, 13, 5, 1}, {5, 2, 7, 3}, {16, 2, 9, 2}} {
			x := make([]ringqp.Poly, s.Rows*s.Inner*s.Parts)
			for k := range x {
				x[k] = tc.randomQP(rng, b)
			}
			wt := make([]ringqp.Poly, s.Cols*s.Inner)
			for k := range wt {
				wt[k] = tc.randomQP(rng, b)
			}
			// Lattigo reduces every half as many terms as it could: the
			// result must not depend on the schedule.
			want := lattigoMatrix(tc.subRings(b), s, x, wt, b, func(q uint64) int { return max(2, LazyTerms(q)/2) })
			for _, be := range tc.backends(t) {
				t.Run(fmt.Sprintf("%v/%s/%s", s, tc.name, be.Name()), func(t *testing.T) {
					bx, bw := upload(t, be, b, x...), upload(t, be, b, wt...)
					dst, err := be.Alloc(b, len(want))
					if err != nil {
						t.Fatal(err)
					}
					if err := be.MulMatrixMontgomery(dst, bx, bw, s); err != nil {
						t.Fatal(err)
					}
					for k, got := range tc.download(t, be, dst) {
						if err := equalQP(want[k], got, b); err != nil {
							t.Fatalf("output polynomial %d: %v", k, err)
						}
					}
				})
			}
		}
	}
}

// TestMulMatrixMontgomeryErrors checks the operand checks.
func TestMulMatrixMontgomeryErrors(t *testing.T) {
	tc := getContexts(t)[0]
	be, err := NewCPU(tc.kp, CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := tc.fullBasis()
	s := MatrixShape{2, 3, 2, 2}
	alloc := func(bs Basis, count int) Buffer {
		buf, err := be.Alloc(bs, count)
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	x, wt, dst := alloc(b, 12), alloc(b, 6), alloc(b, 8)
	if err := be.MulMatrixMontgomery(dst, x, wt, s); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"zero dimension": func() error { return be.MulMatrixMontgomery(dst, x, wt, MatrixShape{2, 3, 2, 0}) },
		"x count":        func() error { return be.MulMatrixMontgomery(dst, x.Slice(0, 11), wt, s) },
		"wt count":       func() error { return be.MulMatrixMontgomery(dst, x, wt.Slice(1, 6), s) },
		"dst count":      func() error { return be.MulMatrixMontgomery(dst.Slice(0, 6), x, wt, s) },
		"basis":          func() error { return be.MulMatrixMontgomery(dst.AtLevel(0, -1), x, wt, s) },
		"dst aliases x":  func() error { return be.MulMatrixMontgomery(x.Slice(0, 8), x, wt, s) },
		"foreign buffer": func() error { return be.MulMatrixMontgomery(Buffer{}, x, wt, s) },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLazyTerms checks the accumulator bound at its edge: LazyTerms(q)
// values just below 2q fit 64 bits, one more does not.
func TestLazyTerms(t *testing.T) {
	for _, q := range []uint64{18014398508400641, 36028797018652673, (1 << 61) - 1, (1 << 62) - 57} {
		k := uint64(LazyTerms(q))
		if hi, _ := bits.Mul64(k, 2*q-1); hi != 0 {
			t.Errorf("q=%d: %d terms overflow", q, k)
		}
		if hi, _ := bits.Mul64(k+1, 2*q-1); hi == 0 {
			t.Errorf("q=%d: %d terms would still fit", q, k+1)
		}
	}
}

// TestParamsQ checks the constants of a ring without P moduli: the
// element-wise operations and the matrix product work, key switching is
// refused.
func TestParamsQ(t *testing.T) {
	params, err := rlwe.NewParametersFromLiteral(rlwe.ParametersLiteral{LogN: 10, LogQ: []int{50, 50}, NTTFlag: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewParams(params); err == nil {
		t.Fatal("NewParams accepted a ring without P")
	}
	kp, err := NewParamsQ(params)
	if err != nil {
		t.Fatal(err)
	}
	if kp.MaxLevelP() != -1 || kp.MaxLevelQ() != 1 {
		t.Fatalf("levels (%d, %d)", kp.MaxLevelQ(), kp.MaxLevelP())
	}
	be, err := NewCPU(kp, CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := Basis{1, -1}
	if _, err := be.Alloc(Basis{1, 0}, 1); err == nil {
		t.Error("a P limb was allocated")
	}
	rng := rand.New(rand.NewPCG(15, 16))
	x := ringqp.Poly{Q: randomPoly(rng, params.RingQ(), 1)}
	w := ringqp.Poly{Q: randomPoly(rng, params.RingQ(), 1)}
	bx, _ := be.Alloc(b, 1)
	bw, _ := be.Alloc(b, 1)
	dst, _ := be.Alloc(b, 1)
	if err := errors.Join(be.Upload(bx, []ringqp.Poly{x}), be.Upload(bw, []ringqp.Poly{w}),
		be.MulMatrixMontgomery(dst, bx, bw, MatrixShape{1, 1, 1, 1})); err != nil {
		t.Fatal(err)
	}
	want := ring.NewPoly(params.N(), 1)
	params.RingQ().MulCoeffsMontgomery(x.Q, w.Q, want)
	got := []ringqp.Poly{{Q: ring.NewPoly(params.N(), 1)}}
	if err := be.Download(dst, got); err != nil {
		t.Fatal(err)
	}
	if err := equalPoly(want, got[0].Q, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := UploadEvaluationKeySet(be, nil); err != nil {
		t.Fatal(err)
	}
	ev := NewEvaluator(be, nil)
	defer ev.Close()
	if _, err := ev.getWorkspace(); err == nil {
		t.Error("the key-switching workspace was built without P")
	}
}
