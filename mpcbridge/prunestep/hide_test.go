package prunestep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cipherprune/cipherprune/models"
)

// hideInput returns n scores for a text of real rows (CLS included) padded
// to n: the real rows above θ = 0.1 with three above β = 0.3, the padding
// rows 0 (as after an attention block), except rows 20 and 25, which score
// 0.05 and 0.02 (below θ, the best of the dropped rows).
func hideInput(real, n int) []float64 {
	scores := make([]float64, n)
	scores[0] = -0.5
	for i := 1; i < real; i++ {
		scores[i] = []float64{0.15, 0.25}[i%2]
		if i <= 3 {
			scores[i] = 0.6
		}
	}
	scores[20], scores[25] = 0.05, 0.02
	return scores
}

// pruneOnce runs one step of tc on shares of x and scores and returns the
// counts (both parties' must agree) and the input rows kept, sorted (CLS
// excluded).
func pruneOnce(t *testing.T, tc *testContext, r *rand.Rand, x models.Matrix, scores []float64, theta, beta float64) (Counts, []int) {
	t.Helper()
	sIn, cIn := shareRows(r, tc.p, 0, x, scores)
	srv, cli := connPair(t, "pipe")
	var out [2]Rows
	counts, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, &out)(testCtx(t), srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	got := openRows(t, tc.p.FracBits(), out[0], out[1])
	rows, maxErr := matchRows(got, x, 1, counts.Kept)
	if maxErr > math.Ldexp(1, -tc.p.FracBits()-1) {
		t.Errorf("kept rows differ from the input's by %g", maxErr)
	}
	return counts, rows
}

// TestHideLengthSameCounts runs the step on two inputs of 10 and 14 real
// rows padded to 32 (the padding scoring 0, as padding does after an
// attention block). With KeepGroup 8 both reveal the same counts (16 kept,
// 4 high), the extra rows being the best-scoring dropped ones (rows 20 and
// 25, then the first padding rows); without it the kept counts differ (10
// and 14), which is what the group hides: the test fails if the group is
// ignored. The rows kept are those of Parameters.Decide in both modes.
func TestHideLengthSameCounts(t *testing.T) {
	defer noLeaks(t)()
	const n, d, theta, beta = 32, 64, 0.1, 0.3
	for _, group := range []int{8, 0} {
		lit := defaultLiteral
		lit.KeepGroup = group
		tc := newTestContext(t, lit)
		var counts []Counts
		for _, real := range []int{10, 14} {
			t.Run(fmt.Sprintf("group=%d/real=%d", group, real), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(real), uint64(group)))
				scores := hideInput(real, n)
				got, rows := pruneOnce(t, tc, r, randomRows(r, n, d, 1.5), scores, theta, beta)
				keep, high, err := tc.p.Decide(scores, theta, beta)
				if err != nil {
					t.Fatal(err)
				}
				want := Counts{Layer: 0, In: n}
				var wantRows []int
				for i := range keep {
					if keep[i] {
						want.Kept++
						if i > 0 {
							wantRows = append(wantRows, i)
						}
					}
					if high[i] {
						want.High++
					}
				}
				if got != want || !slices.Equal(rows, wantRows) {
					t.Fatalf("counts %v, rows %v; Decide: %v, rows %v", got, rows, want, wantRows)
				}
				t.Logf("%v: rows %v", got, rows)
				counts = append(counts, got)
			})
		}
		if len(counts) != 2 {
			t.FailNow()
		}
		switch {
		case group > 0 && (counts[0] != counts[1] || counts[0].Kept%group != 0):
			t.Errorf("group %d: counts %v and %v, want equal multiples of the group", group, counts[0], counts[1])
		case group == 0 && counts[0].Kept == counts[1].Kept:
			t.Errorf("no group: both inputs keep %d rows, the test inputs do not tell their lengths apart", counts[0].Kept)
		}
	}
}

// TestDecideKeepGroup checks Parameters.Decide's rounding: the count
// rounded up to the group (CLS included) and capped at n, CLS always kept,
// the extra rows the best-scoring dropped ones in bins of 2^-10 with ties to
// the lower index, and β applied to every kept row.
func TestDecideKeepGroup(t *testing.T) {
	lit := defaultLiteral
	lit.KeepGroup = 4
	p, err := NewParameters(lit)
	if err != nil {
		t.Fatal(err)
	}
	const theta, beta = 0.1, 0.0005
	for _, c := range []struct {
		scores []float64
		kept   []int
		high   []int
	}{
		// 2 above θ + CLS = 3, rounded to 4: the best dropped row is 5
		// (0.05); rows 1 and 2 (0 and 3e-4) share the bin of 0.
		{[]float64{-1, 0, 3e-4, 0.5, 0.2, 0.05}, []int{0, 3, 4, 5}, []int{0, 3, 4, 5}},
		// 3 above θ + CLS = 4: nothing added.
		{[]float64{-1, 0, 0.3, 0.5, 0.2, 0.05}, []int{0, 2, 3, 4}, []int{0, 2, 3, 4}},
		// Nothing above θ: CLS and three rows by bin, then index: 2e-4
		// (bin 0) ties with 0 and -1e-4, so rows 1, 2, 3 win over 4.
		{[]float64{-1, 0, 2e-4, -1e-4, -0.01, 0.0009}, []int{0, 1, 2, 5}, []int{0, 5}},
		// Capped at n = 3.
		{[]float64{-1, 0.5, 0}, []int{0, 1, 2}, []int{0, 1}},
		// CLS alone.
		{[]float64{0}, []int{0}, []int{0}},
	} {
		keep, high, err := p.Decide(c.scores, theta, beta)
		if err != nil {
			t.Fatal(err)
		}
		var kept, hi []int
		for i := range keep {
			if keep[i] {
				kept = append(kept, i)
			}
			if high[i] {
				hi = append(hi, i)
			}
		}
		if !slices.Equal(kept, c.kept) || !slices.Equal(hi, c.high) {
			t.Errorf("scores %v: kept %v high %v, want %v %v", c.scores, kept, hi, c.kept, c.high)
		}
	}
	if _, err := NewParameters(ParametersLiteral{Share: shareLiteral(4, 16), KeepGroup: 6}); err == nil {
		t.Error("KeepGroup 6 accepted")
	}
	plain, err := NewParameters(defaultLiteral)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Literal().KeepGroup != 0 || p.Literal().KeepGroup != 4 {
		t.Errorf("literals %+v, %+v", plain.Literal(), p.Literal())
	}
}

// TestHideLengthBitsUniform repeats TestRevealedBitsUniform's steps with
// KeepGroup 4 on an input whose padding-like rows tie at 0: rows 3 (high)
// and 5 (low) exceed θ, and one of the five tied rows joins them to fill
// the group (row 1, the lowest index). The rows kept land uniformly among
// the 7 shuffled positions, both in the shuffled order itself and to each
// party with its own factor of σ undone: the extra row is chosen by its
// hidden original index, never by its shuffled position (which would put it
// first among the tied rows, skewing its position towards 0).
func TestHideLengthBitsUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("many pruning steps")
	}
	defer noLeaks(t)()
	lit := defaultLiteral
	lit.KeepGroup = 4
	tc := newTestContext(t, lit)
	r := rand.New(rand.NewPCG(5, 5))
	const n, runs = 8, 140
	scores := []float64{0, 0, 0, 0.5, 0, 0.2, 0, 0}
	sIn, cIn := shareRows(r, tc.p, 0, randomRows(r, n, 64, 1), scores)
	server, err := NewServer(tc.p, rand.NewChaCha8([32]byte{3}))
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(tc.p, rand.NewChaCha8([32]byte{4}))
	if err != nil {
		t.Fatal(err)
	}
	var serverView, clientView positions
	recS, recC := serverView.record(n-1), clientView.record(n-1)
	shuffled := positions{high: make([]int, n-1), low: make([]int, n-1)}
	server.observe = func(perm []int, keep, high []bool) {
		recS(perm, keep, high)
		for j := range keep {
			switch {
			case high[j]:
				shuffled.high[j]++
			case keep[j]:
				shuffled.low[j]++
			}
		}
	}
	client.observe = recC
	pruneRuns(t, runs, Counts{Kept: 4, High: 2}, pruneSharesStep(server, client, sIn, cIn, 0.1, 0.3, nil))
	for _, c := range []struct {
		view, group string
		hist        []int
		want        int
	}{
		{"shuffled order", "high", shuffled.high, runs},
		{"shuffled order", "low", shuffled.low, 2 * runs},
		{"client (π_C undone)", "low", clientView.low, 2 * runs},
		{"server (π_S undone)", "low", serverView.low, 2 * runs},
	} {
		checkUniform(t, c.view, c.group, c.hist, c.want)
	}
}
