package gc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/markkurossi/mpc/circuit"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// TestSelectionNetwork checks the networks on random keys with many ties:
// Batcher's sort sorts, and the selection network leaves the k largest keys
// in positions 0..k-1 in descending order.
func TestSelectionNetwork(t *testing.T) {
	if got := len(oddEvenMergeSort(8)); got != 19 {
		t.Errorf("odd-even merge sort of 8: %d comparators, want 19", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 2; n <= MaxBucket; n *= 2 {
		for k := 1; k <= n; k *= 2 {
			net := selectionNetwork(n, k)
			for trial := 0; trial < 20; trial++ {
				keys := make([]int, n)
				for i := range keys {
					keys[i] = r.IntN(1 + n/4)
				}
				want := slices.Clone(keys)
				slices.SortFunc(want, func(a, b int) int { return b - a })
				for _, c := range net {
					if c.a >= c.b || c.b >= n {
						t.Fatalf("n=%d k=%d: comparator %v", n, k, c)
					}
					if keys[c.b] > keys[c.a] {
						keys[c.a], keys[c.b] = keys[c.b], keys[c.a]
					}
				}
				if !slices.Equal(keys[:k], want[:k]) {
					t.Fatalf("n=%d k=%d: top %v, want %v", n, k, keys[:k], want[:k])
				}
			}
		}
	}
}

// evalPlain evaluates cc on the garbler's and the evaluator's input bits in
// the clear and returns its output bits.
func evalPlain(cc *compiled, gIn, eIn []bool) []bool {
	w := make([]bool, cc.circ.NumWires)
	copy(w, gIn)
	copy(w[cc.nG:], eIn)
	for _, g := range cc.circ.Gates {
		a, b := w[g.Input0], w[g.Input1]
		switch g.Op {
		case circuit.XOR:
			w[g.Output] = a != b
		case circuit.XNOR:
			w[g.Output] = a == b
		case circuit.AND:
			w[g.Output] = a && b
		default:
			panic(fmt.Sprintf("gate %v", g.Op))
		}
	}
	out := make([]bool, 2*cc.bucket)
	for i := range out {
		out[i] = w[cc.outWire(i)]
	}
	return out
}

// topKCase is one call of the top-K circuit: scores, tie orders and
// thresholds in the clear.
type topKCase struct {
	name        string
	scores      []int64
	ties        []uint64
	theta, beta int64
}

// topKCases returns the table of cases for K-bit scores: random ones,
// ties, no score kept, every score kept, K capped at m, m not a power of
// two, a single score, extreme values.
func topKCases(r *rand.Rand, k int) []topKCase {
	perm := func(m int) []uint64 {
		t := make([]uint64, m)
		for i, j := range r.Perm(m) {
			t[i] = uint64(j)
		}
		return t
	}
	lo, hi := -int64(1)<<uint(k-1), int64(uint64(1)<<uint(k-1)-1)
	var cs []topKCase
	add := func(name string, scores []int64, theta, beta int64) {
		cs = append(cs, topKCase{name, scores, perm(len(scores)), theta, beta})
	}
	for _, m := range []int{1, 5, 8, 13, 16, 31, 64, 100} {
		rnd := make([]int64, m)
		few := make([]int64, m) // a handful of values: many ties
		zero := make([]int64, m)
		for i := range rnd {
			rnd[i] = wrap(int64(r.Uint64()), k)
			few[i] = int64(r.IntN(5)) - 2
		}
		add(fmt.Sprintf("random/m=%d", m), rnd, 0, wrap(1<<uint(k-3), k))
		add(fmt.Sprintf("ties/m=%d", m), few, 0, 1)
		add(fmt.Sprintf("none kept/m=%d", m), zero, 0, 0)
		add(fmt.Sprintf("all kept/m=%d", m), few, -3, 0)
		add(fmt.Sprintf("θ at the minimum/m=%d", m), rnd, lo, hi)
		add(fmt.Sprintf("θ at the maximum/m=%d", m), rnd, hi, lo)
	}
	ext := []int64{lo, hi, lo + 1, hi - 1, 0, -1, 1, lo, hi}
	add("extremes", ext, -1, 0)
	return cs
}

// topKParams are the parameter sets the tests cover: groups below, at and
// above the bucket, bases, rank shifts.
var topKParams = []ParamsLiteral{
	{K: 12, F: 4, KeepGroup: 8, KeepBase: 1, RankShift: 2},
	{K: 12, F: 4, KeepGroup: 2},
	{K: 12, F: 4, KeepGroup: 4, KeepBase: 3},
	{K: 12, F: 4, KeepGroup: 16, KeepBase: 1},
	{K: 12, F: 4, KeepGroup: 512, KeepBase: 7, RankShift: 11},
	{K: 24, F: 14, KeepGroup: 8, KeepBase: 1, RankShift: 4},
	{K: 64, F: 16, KeepGroup: 32, KeepBase: 0, RankShift: 60},
}

// TestTopKCircuit evaluates the top-K circuit in the clear on random share
// pairs of every case and compares it with Params.TopK, whose result it
// also checks against the definition: kept by θ, plus the best dropped
// scores up to the rounded count.
func TestTopKCircuit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, lit := range topKParams {
		p := mustParams(t, lit)
		for _, tc := range topKCases(r, lit.K) {
			t.Run(fmt.Sprintf("K=%d/g=%d/base=%d/shift=%d/%s", lit.K, lit.KeepGroup, lit.KeepBase, lit.RankShift, tc.name), func(t *testing.T) {
				m := len(tc.scores)
				bucket, err := p.Bucket(m)
				if err != nil {
					t.Fatal(err)
				}
				cc, err := compileTopK(lit.K, bucket, lit.KeepGroup, lit.KeepBase, lit.RankShift)
				if err != nil {
					t.Fatal(err)
				}
				c, v := split(r, lit.K, tc.scores)
				tc2, tv := make([]uint64, m), make([]uint64, m)
				sums := make([]uint64, m)
				for j := range tc2 {
					tc2[j] = r.Uint64()
					tv[j] = tc.ties[j] - tc2[j]
					sums[j] = c[j] + v[j]
				}
				theta, beta := uint64(tc.theta), uint64(tc.beta)
				out := evalPlain(cc, cc.garblerBits(p, v, tv, theta, beta), cc.evaluatorBits(p, c, tc2))
				for j := m; j < bucket; j++ {
					if out[j] || out[bucket+j] {
						t.Fatalf("padding slot %d: keep %v high %v", j, out[j], out[bucket+j])
					}
				}
				keep, high, err := p.TopK(sums, tc.ties, theta, beta)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(out[:m], keep) || !slices.Equal(out[bucket:bucket+m], high) {
					t.Fatalf("circuit keep %v high %v\nTopK    keep %v high %v", out[:m], out[bucket:bucket+m], keep, high)
				}
				checkTopKRule(t, p, tc, keep, high)
			})
		}
	}
}

// checkTopKRule checks keep and high against the definition of the rule.
func checkTopKRule(t *testing.T, p Params, tc topKCase, keep, high []bool) {
	t.Helper()
	m, g, base := len(tc.scores), p.group, p.base
	c, kept := 0, 0
	for j, s := range tc.scores {
		if s > tc.theta {
			c++
			if !keep[j] {
				t.Fatalf("score %d = %d > θ = %d not kept", j, s, tc.theta)
			}
		}
		if keep[j] {
			kept++
		}
		if high[j] != (keep[j] && s > tc.beta) {
			t.Fatalf("score %d = %d: high %v, keep %v, β = %d", j, s, high[j], keep[j], tc.beta)
		}
	}
	want := min(m, (c+base+g-1)/g*g-base)
	if kept != want {
		t.Fatalf("%d kept, want %d (c = %d, g = %d, base = %d, m = %d)", kept, want, c, g, base, m)
	}
	// Every dropped score ranks after every extra one (kept, not > θ).
	rank := func(j int) int64 { return tc.scores[j] >> uint(p.shift) }
	for i := range m {
		for j := range m {
			if keep[i] && tc.scores[i] <= tc.theta && !keep[j] && (rank(j) > rank(i) || rank(j) == rank(i) && tc.ties[j] < tc.ties[i]) {
				t.Fatalf("score %d (%d, tie %d) dropped, %d (%d, tie %d) kept", j, tc.scores[j], tc.ties[j], i, tc.scores[i], tc.ties[i])
			}
		}
	}
}

// TestTopKProtocol runs GarbleTopK and EvaluateTopK on some cases over a
// pipe and loopback TCP: both parties get TopK's bits.
func TestTopKProtocol(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(5, 6))
	cache := NewCache()
	for i, lit := range []ParamsLiteral{topKParams[0], topKParams[5], topKParams[6]} {
		p := mustParams(t, lit)
		for _, tc := range topKCases(r, lit.K) {
			if len(tc.scores) != 13 && len(tc.scores) != 100 {
				continue
			}
			transport := []string{"pipe", "tcp"}[i%2]
			t.Run(fmt.Sprintf("K=%d/g=%d/%s/%s", lit.K, lit.KeepGroup, tc.name, transport), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				m := len(tc.scores)
				c, v := split(r, lit.K, tc.scores)
				tc2, tv := make([]uint64, m), make([]uint64, m)
				sums := make([]uint64, m)
				for j := range tc2 {
					tc2[j] = r.Uint64()
					tv[j] = tc.ties[j] - tc2[j]
					sums[j] = c[j] + v[j]
				}
				a, b := nettest.Pair(t, transport)
				gr, er := runTopK(ctx, cache, a, b, p, p, v, c, tv, tc2, uint64(tc.theta), uint64(tc.beta))
				if gr.err != nil || er.err != nil {
					t.Fatalf("garbler: %v; evaluator: %v", gr.err, er.err)
				}
				keep, high, err := p.TopK(sums, tc.ties, uint64(tc.theta), uint64(tc.beta))
				if err != nil {
					t.Fatal(err)
				}
				for _, res := range []result{gr, er} {
					if !slices.Equal(res.keep, keep) || !slices.Equal(res.high, high) {
						t.Fatalf("keep %v high %v, want %v %v", res.keep, res.high, keep, high)
					}
				}
			})
		}
	}
}

// runTopK runs GarbleTopK on g and EvaluateTopK on e concurrently.
func runTopK(ctx context.Context, cache *Cache, g, e interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
}, pg, pe Params, v, c, tv, tc []uint64, theta, beta uint64) (gr, er result) {
	done := make(chan result, 1)
	go func() {
		var r result
		r.keep, r.high, r.err = cache.GarbleTopK(ctx, g, pg, v, tv, theta, beta)
		done <- r
	}()
	er.keep, er.high, er.err = cache.EvaluateTopK(ctx, e, pe, c, tc)
	return <-done, er
}

// TestTopKMisuse checks that the plain calls refuse top-K Params and the
// reverse, that a different group is a mismatch, and that wrong tie counts
// are refused, each on both sides before anything secret is sent.
func TestTopKMisuse(t *testing.T) {
	defer noLeaks(t)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plain := mustParams(t, ParamsLiteral{K: 16, F: 4})
	g8 := mustParams(t, ParamsLiteral{K: 16, F: 4, KeepGroup: 8, KeepBase: 1})
	g16 := mustParams(t, ParamsLiteral{K: 16, F: 4, KeepGroup: 16, KeepBase: 1})
	if plain.Equal(g8) || g8.Equal(g16) {
		t.Fatal("the group does not change the Params' digest")
	}
	v, c := []uint64{1, 2, 3}, []uint64{4, 5, 6}
	ties := []uint64{0, 1, 2}

	a, b := nettest.Pair(t, "pipe")
	gr, er := runPair(ctx, nil, a, b, g8, g8, v, c, 0, 0)
	if !errContains(gr.err, "need GarbleTopK") || !errors.Is(er.err, ErrPeerAborted) && !errContains(er.err, "need GarbleTopK") {
		t.Errorf("Garble with a group: garbler %v, evaluator %v", gr.err, er.err)
	}
	a, b = nettest.Pair(t, "pipe")
	gr, er = runTopK(ctx, nil, a, b, plain, plain, v, c, ties, ties, 0, 0)
	if !errContains(gr.err, "need Params with a KeepGroup") || !errContains(er.err, "need Params with a KeepGroup") {
		t.Errorf("GarbleTopK without a group: garbler %v, evaluator %v", gr.err, er.err)
	}
	a, b = nettest.Pair(t, "pipe")
	gr, er = runTopK(ctx, nil, a, b, g8, g16, v, c, ties, ties, 0, 0)
	if !errors.Is(gr.err, ErrMismatch) || !errors.Is(er.err, ErrMismatch) {
		t.Errorf("groups 8 and 16: garbler %v, evaluator %v", gr.err, er.err)
	}
	a, b = nettest.Pair(t, "pipe")
	gr, er = runTopK(ctx, nil, a, b, g8, g8, v, c, ties, ties[:2], 0, 0)
	if !errors.Is(gr.err, ErrPeerAborted) || !errContains(er.err, "2 tie shares for 3 scores") {
		t.Errorf("short ties: garbler %v, evaluator %v", gr.err, er.err)
	}
	for _, lit := range []ParamsLiteral{
		{K: 16, KeepGroup: 3},
		{K: 16, KeepGroup: 1024},
		{K: 16, KeepGroup: 8, KeepBase: 8},
		{K: 16, KeepGroup: 8, RankShift: 16},
		{K: 16, KeepBase: 1},
		{K: 16, KeepGroup: 8, Buckets: []int{8, 24}},
	} {
		if _, err := NewParams(lit); err == nil {
			t.Errorf("NewParams(%+v) accepted", lit)
		}
	}
}

// TestTopKStats logs the top-K circuit's size beside the comparison
// circuit's, for the engine's parameters (K = 24, group 8, base 1, shift 4)
// at the buckets of 128 and 512 rows (mpcbridge/README.md section 3), and
// checks that the cache shares it.
func TestTopKStats(t *testing.T) {
	cache := NewCache()
	plain := mustParams(t, ParamsLiteral{K: 64, F: 14})
	for _, lit := range []ParamsLiteral{
		{K: 24, F: 14, KeepGroup: 8, KeepBase: 1, RankShift: 4},
		{K: 24, F: 14, KeepGroup: 16, KeepBase: 1, RankShift: 4},
	} {
		p := mustParams(t, lit)
		for _, bucket := range []int{128, 512} {
			st, err := cache.Stats(p, bucket)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := cache.Stats(plain, bucket)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("top-K K=%d g=%d bucket %d: %d gates, %d AND, tables %.2f MB, %d+%d input bits (comparisons at K=64: %d AND, %.2f MB)",
				st.K, lit.KeepGroup, bucket, st.Gates, st.NonXOR, float64(st.TableBytes)/1e6, st.GarblerInputs, st.EvaluatorInputs, ps.NonXOR, float64(ps.TableBytes)/1e6)
		}
	}
	p := mustParams(t, topKParams[0])
	a, err := cache.forParams(p, 16)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := cache.forParams(p, 16); a != b {
		t.Error("the cache compiled the top-K circuit twice")
	}
	if c, _ := cache.get(p.K(), 16); c == a {
		t.Error("the cache gives the top-K circuit for the comparison circuit")
	}
}
