package shuffle

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// checkPermuted checks B_P + B_Q == ApplyPermutation(perm, A_P + A_Q)
// modulo 2^64.
func checkPermuted(t *testing.T, perm []int, ap, aq [][]uint64, pr, qr result) {
	t.Helper()
	checkPermutedRing(t, Ring64, perm, ap, aq, pr, qr)
}

// checkPermutedRing is checkPermuted modulo ring.
func checkPermutedRing(t *testing.T, ring Ring, perm []int, ap, aq [][]uint64, pr, qr result) {
	t.Helper()
	if pr.err != nil || qr.err != nil {
		t.Fatalf("permuter: %v; assistant: %v", pr.err, qr.err)
	}
	want := ApplyPermutation(perm, addRowsRing(ring, ap, aq))
	if ok, why := equalRows(addRowsRing(ring, pr.out, qr.out), want); !ok {
		t.Fatalf("B_P + B_Q != π(A_P + A_Q) modulo %v: %s", ring, why)
	}
}

func TestPermuteCorrect(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(1, 2))
	type tc struct{ n, width int }
	var cases []tc
	for _, n := range []int{1, 2, 3, 4, 5, 8, 16, 64, 128, 256} {
		cases = append(cases, tc{n, 1}, tc{n, 7})
	}
	for i := 0; i < 6; i++ {
		cases = append(cases, tc{1 + r.IntN(300), 1 + r.IntN(9)})
	}
	cases = append(cases, tc{300, 3}, tc{1, 769}, tc{2, 769}, tc{37, 769}, tc{128, 769})
	for _, transport := range []string{"pipe", "tcp"} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/n=%d/w=%d", transport, c.n, c.width), func(t *testing.T) {
				a, b := nettest.Pair(t, transport)
				perm := r.Perm(c.n)
				ap, aq := randomRows(r, c.n, c.width), randomRows(r, c.n, c.width)
				pr, qr := runPair(testCtx(t), Config{}, a, b, perm, ap, aq)
				checkPermuted(t, perm, ap, aq, pr, qr)
			})
		}
	}
}

// TestPermuteConvention pins the convention with a readable case: row i of
// the input becomes row perm[i] of the output.
func TestPermuteConvention(t *testing.T) {
	a, b := nettest.Pair(t, "pipe")
	perm := []int{2, 0, 1} // row 0 -> 2, row 1 -> 0, row 2 -> 1
	ap := [][]uint64{{10}, {20}, {30}}
	aq := [][]uint64{{1}, {2}, {3}}
	pr, qr := runPair(testCtx(t), Config{}, a, b, perm, ap, aq)
	if pr.err != nil || qr.err != nil {
		t.Fatal(pr.err, qr.err)
	}
	got := addRows(pr.out, qr.out)
	want := [][]uint64{{22}, {33}, {11}}
	if ok, why := equalRows(got, want); !ok {
		t.Fatalf("got %v, want %v: %s", got, want, why)
	}
}

// TestPermuteEdge covers the special sizes: no rows, zero width, and the
// inputs left untouched.
func TestPermuteEdge(t *testing.T) {
	defer noLeaks(t)()
	for _, c := range []struct{ n, width int }{{0, 0}, {3, 0}, {1, 1}} {
		t.Run(fmt.Sprintf("n=%d/w=%d", c.n, c.width), func(t *testing.T) {
			a, b := nettest.Pair(t, "pipe")
			perm := identity(c.n)
			ap, aq := constRows(c.n, c.width, 5), constRows(c.n, c.width, 6)
			pr, qr := runPair(testCtx(t), Config{}, a, b, perm, ap, aq)
			checkPermuted(t, perm, ap, aq, pr, qr)
			if len(pr.out) != c.n || len(qr.out) != c.n {
				t.Fatalf("got %d and %d rows", len(pr.out), len(qr.out))
			}
			if ok, _ := equalRows(ap, constRows(c.n, c.width, 5)); !ok {
				t.Fatal("Permute modified its input share")
			}
			if ok, _ := equalRows(aq, constRows(c.n, c.width, 6)); !ok {
				t.Fatal("Assist modified its input share")
			}
		})
	}
}

// TestSharesFresh checks that the output shares are re-randomized: the
// assistant's new share is not its old one moved, and two runs on the same
// inputs give different shares.
func TestSharesFresh(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, w = 16, 4
	perm := r.Perm(n)
	ap, aq := randomRows(r, n, w), randomRows(r, n, w)
	var prev [][]uint64
	for run := 0; run < 2; run++ {
		a, b := nettest.Pair(t, "pipe")
		pr, qr := runPair(testCtx(t), Config{}, a, b, perm, ap, aq)
		checkPermuted(t, perm, ap, aq, pr, qr)
		moved := ApplyPermutation(perm, aq)
		for i := range moved {
			for k := range moved[i] {
				if moved[i][k] == qr.out[i][k] || ap[i][k] == pr.out[i][k] {
					t.Fatalf("run %d: output share word (%d,%d) equals an input share word", run, i, k)
				}
			}
		}
		if prev != nil {
			if ok, _ := equalRows(prev, qr.out); ok {
				t.Fatal("two runs gave the same assistant share")
			}
		}
		prev = qr.out
	}
}

// runShuffle runs Shuffle on both ends, First on a.
func runShuffle(t *testing.T, a, b any, first, second [][]uint64, rf, rs *rand.ChaCha8) (fr, sr result) {
	t.Helper()
	ctx := testCtx(t)
	done := make(chan result, 1)
	go func() {
		var r result
		r.out, r.err = Shuffle(ctx, b.(rw), Second, second, rs)
		done <- r
	}()
	fr.out, fr.err = Shuffle(ctx, a.(rw), First, first, rf)
	return fr, <-done
}

type rw interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}

// TestShuffle checks the two-sided shuffle: the outputs are shares of the
// input rows in the order π_2 ∘ π_1. Each party's permutation is the first
// draw from its random source, so the test replays the seeded sources to
// learn them.
func TestShuffle(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(5, 6))
	for _, transport := range []string{"pipe", "tcp"} {
		for _, c := range []struct{ n, width int }{{1, 3}, {2, 1}, {5, 7}, {64, 2}, {129, 5}} {
			t.Run(fmt.Sprintf("%s/n=%d/w=%d", transport, c.n, c.width), func(t *testing.T) {
				a, b := nettest.Pair(t, transport)
				x1, x2 := randomRows(r, c.n, c.width), randomRows(r, c.n, c.width)
				seed1, seed2 := [32]byte{1, byte(c.n)}, [32]byte{2, byte(c.n)}
				fr, sr := runShuffle(t, a, b, x1, x2, rand.NewChaCha8(seed1), rand.NewChaCha8(seed2))
				if fr.err != nil || sr.err != nil {
					t.Fatalf("First: %v; Second: %v", fr.err, sr.err)
				}
				got := addRows(fr.out, sr.out)
				x := addRows(x1, x2)
				// Multiset of rows preserved.
				sortRows := func(rows [][]uint64) [][]uint64 {
					s := slices.Clone(rows)
					slices.SortFunc(s, slices.Compare[[]uint64])
					return s
				}
				if ok, why := equalRows(sortRows(got), sortRows(x)); !ok {
					t.Fatalf("rows are not a permutation of the input: %s", why)
				}
				// The order is π_2 ∘ π_1.
				p1, err := RandomPermutation(c.n, rand.NewChaCha8(seed1))
				if err != nil {
					t.Fatal(err)
				}
				p2, err := RandomPermutation(c.n, rand.NewChaCha8(seed2))
				if err != nil {
					t.Fatal(err)
				}
				if ok, why := equalRows(got, ApplyPermutation(p2, ApplyPermutation(p1, x))); !ok {
					t.Fatalf("order is not π_2 ∘ π_1: %s", why)
				}
			})
		}
	}
}

// TestShuffleWith: with the callers' own factors the order is exactly
// π_2 ∘ π_1, and a factor that is not a permutation of the rows fails both
// parties (the permuter refuses it in its hello).
func TestShuffleWith(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(7, 8))
	const n, width = 6, 2
	reverse := []int{5, 4, 3, 2, 1, 0}
	for _, tc := range []struct {
		name   string
		p1, p2 []int
		ok     bool
	}{
		{"identity-identity", identity(n), identity(n), true},
		{"identity-reverse", identity(n), reverse, true},
		{"reverse-random", reverse, r.Perm(n), true},
		{"random-random", r.Perm(n), r.Perm(n), true},
		{"first-short", identity(n - 1), identity(n), false},
		{"second-repeats", identity(n), []int{0, 0, 1, 2, 3, 4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := nettest.Pair(t, "pipe")
			x1, x2 := randomRows(r, n, width), randomRows(r, n, width)
			ctx := testCtx(t)
			done := make(chan result, 1)
			go func() {
				var res result
				res.out, res.err = Config{}.ShuffleWith(ctx, b, Second, tc.p2, x2, nil)
				done <- res
			}()
			var fr result
			fr.out, fr.err = Config{}.ShuffleWith(ctx, a, First, tc.p1, x1, nil)
			sr := <-done
			if !tc.ok {
				if fr.err == nil || sr.err == nil {
					t.Fatalf("a bad factor was accepted: First %v; Second %v", fr.err, sr.err)
				}
				return
			}
			if fr.err != nil || sr.err != nil {
				t.Fatalf("First: %v; Second: %v", fr.err, sr.err)
			}
			want := ApplyPermutation(tc.p2, ApplyPermutation(tc.p1, addRows(x1, x2)))
			if ok, why := equalRows(addRows(fr.out, sr.out), want); !ok {
				t.Fatalf("order is not π_2 ∘ π_1: %s", why)
			}
		})
	}
}

func TestRandomPermutation(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 4096} {
		p, err := RandomPermutation(n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != n || checkPerm(p) != nil {
			t.Fatalf("n=%d: not a permutation: %v", n, checkPerm(p))
		}
	}
	if _, err := RandomPermutation(-1, nil); err == nil {
		t.Fatal("negative n accepted")
	}
	if _, err := RandomPermutation(5, rand.NewChaCha8([32]byte{})); err != nil {
		t.Fatal(err)
	}
	if _, err := RandomPermutation(5, &shortReader{n: 9}); err == nil {
		t.Fatal("short random source accepted")
	}
}

type shortReader struct{ n int }

func (s *shortReader) Read(b []byte) (int, error) {
	if s.n <= 0 {
		return 0, errShort
	}
	k := min(len(b), s.n)
	clear(b[:k])
	s.n -= k
	return k, nil
}

var errShort = fmt.Errorf("test: random source exhausted")

// chiSquare returns the chi-square statistic of counts against a uniform
// expectation.
func chiSquare(counts []int, total int) float64 {
	e := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

// TestRandomPermutationUniform draws 24,000 permutations of 4 items and
// checks the 24 outcomes with a chi-square test (23 degrees of freedom; the
// 0.999 quantile is 49.7), and the position of one item for n = 5 (a modulo
// bias would show at the odd bounds).
func TestRandomPermutationUniform(t *testing.T) {
	rnd := rand.NewChaCha8([32]byte{9})
	const draws = 24000
	counts := map[[4]int]int{}
	for i := 0; i < draws; i++ {
		p, err := RandomPermutation(4, rnd)
		if err != nil {
			t.Fatal(err)
		}
		counts[[4]int(p)]++
	}
	if len(counts) != 24 {
		t.Fatalf("%d distinct permutations of 4, want 24", len(counts))
	}
	var c []int
	for _, v := range counts {
		c = append(c, v)
	}
	if x := chiSquare(c, draws); x > 49.7 {
		t.Fatalf("chi-square %.1f over 24 outcomes exceeds 49.7 (p = 0.001)", x)
	} else {
		t.Logf("chi-square %.1f (23 dof)", x)
	}
	// Where item 0 lands, n = 5 and n = 7.
	for _, n := range []int{5, 7} {
		pos := make([]int, n)
		for i := 0; i < draws; i++ {
			p, _ := RandomPermutation(n, rnd)
			pos[p[0]]++
		}
		// n-1 dof: 0.999 quantiles 18.5 (4) and 22.5 (6).
		limit := map[int]float64{5: 18.5, 7: 22.5}[n]
		if x := chiSquare(pos, draws); x > limit || math.IsNaN(x) {
			t.Fatalf("n=%d: chi-square %.1f of item 0's position exceeds %.1f", n, x, limit)
		}
	}
}

// TestShuffleUniform runs the whole two-party Shuffle 60 times for n = 3
// and checks that the 6 orders σ appear uniformly (chi-square, 5 dof,
// 0.999 quantile 20.5): the composition of the two parties' draws, through
// the protocol, is uniform. (TestRandomPermutationUniform checks the draws
// themselves on the 24 orders of n = 4 with many more samples.)
func TestShuffleUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("60 protocol runs")
	}
	const runs = 60
	counts := make(map[[3]int]int)
	x1 := [][]uint64{{0}, {1}, {2}}
	x2 := constRows(3, 1, 0)
	a, b := nettest.Pair(t, "tcp")
	for i := 0; i < runs; i++ {
		fr, sr := runShuffle(t, a, b, x1, x2, rand.NewChaCha8([32]byte{3, byte(i)}), rand.NewChaCha8([32]byte{4, byte(i)}))
		if fr.err != nil || sr.err != nil {
			t.Fatal(fr.err, sr.err)
		}
		var order [3]int
		for j, row := range addRows(fr.out, sr.out) {
			order[j] = int(row[0])
		}
		counts[order]++
	}
	c := make([]int, 0, 6)
	for _, v := range counts {
		c = append(c, v)
	}
	for len(c) < 6 {
		c = append(c, 0)
	}
	if x := chiSquare(c, runs); x > 20.5 {
		t.Fatalf("chi-square %.1f over 6 orders exceeds 20.5 (counts %v)", x, counts)
	} else {
		t.Logf("chi-square %.1f (5 dof) over %d runs: %v", x, runs, counts)
	}
}

func TestApplyPermutation(t *testing.T) {
	rows := [][]uint64{{1}, {2}, {3}}
	got := ApplyPermutation([]int{1, 2, 0}, rows)
	if ok, _ := equalRows(got, [][]uint64{{3}, {1}, {2}}); !ok {
		t.Fatalf("got %v", got)
	}
	got[0][0] = 99
	if rows[2][0] != 3 {
		t.Fatal("ApplyPermutation shares rows with its input")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on an invalid permutation")
		}
	}()
	ApplyPermutation([]int{0, 0, 1}, rows)
}
