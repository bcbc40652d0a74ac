package gc

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noLeaks fails the test if goroutines started during it are still running
// when it ends (the library's writer goroutines included). Call it first,
// as defer noLeaks(t)(), so it runs after the test's own cleanup.
func noLeaks(t *testing.T) func() {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, opt)
	}
}

// result is one party's outcome.
type result struct {
	keep, high []bool
	err        error
}

// runPair runs Garble on g and Evaluate on e concurrently.
func runPair(ctx context.Context, cache *Cache, g, e io.ReadWriter, pg, pe Params, v, c []uint64, theta, beta uint64) (gr, er result) {
	done := make(chan result, 1)
	go func() {
		var r result
		r.keep, r.high, r.err = cache.Garble(ctx, g, pg, v, theta, beta)
		done <- r
	}()
	er.keep, er.high, er.err = cache.Evaluate(ctx, e, pe, c)
	return <-done, er
}

// mustParams builds Params or fails.
func mustParams(t testing.TB, lit ParamsLiteral) Params {
	t.Helper()
	p, err := NewParams(lit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// split returns random full-width uint64 shares (c, v) with
// (c + v) mod 2^K equal to each score's K-bit encoding; for K < 64 the bits
// of v above K are random, which the protocol must ignore.
func split(r *rand.Rand, k int, scores []int64) (c, v []uint64) {
	c, v = make([]uint64, len(scores)), make([]uint64, len(scores))
	for i, s := range scores {
		c[i] = r.Uint64()
		v[i] = uint64(s) - c[i] + garbage(r, k)
	}
	return c, v
}

// garbage returns random bits above bit K (none for K = 64).
func garbage(r *rand.Rand, k int) uint64 {
	if k == 64 {
		return 0
	}
	return r.Uint64() << uint(k)
}

// scoresFor returns m K-bit signed scores: edge values around the two
// thresholds and the range limits first, random values after.
func scoresFor(r *rand.Rand, k, m int, theta, beta int64) []int64 {
	lo, hi := -int64(1)<<uint(k-1), int64(uint64(1)<<uint(k-1)-1)
	edge := []int64{theta, theta + 1, theta - 1, beta, beta + 1, beta - 1, lo, hi, 0, -1, 1, lo + 1, hi - 1}
	out := make([]int64, m)
	for i := range out {
		if i < len(edge) {
			out[i] = wrap(edge[i], k)
		} else {
			out[i] = wrap(int64(r.Uint64()), k)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// wrap reduces x to a K-bit signed value.
func wrap(x int64, k int) int64 {
	sh := uint(64 - k)
	return x << sh >> sh
}

// checkBits compares both parties' bits with the plaintext rule.
func checkBits(t *testing.T, p Params, c, v []uint64, theta, beta uint64, gr, er result) {
	t.Helper()
	if gr.err != nil || er.err != nil {
		t.Fatalf("garbler: %v; evaluator: %v", gr.err, er.err)
	}
	m := len(c)
	for _, r := range []result{gr, er} {
		if len(r.keep) != m || len(r.high) != m {
			t.Fatalf("got %d keep and %d high bits for %d scores", len(r.keep), len(r.high), m)
		}
	}
	for j := 0; j < m; j++ {
		s := c[j] + v[j]
		wk, wh := p.Greater(s, theta), p.Greater(s, beta) && p.Greater(s, theta)
		if gr.keep[j] != wk || er.keep[j] != wk || gr.high[j] != wh || er.high[j] != wh {
			t.Fatalf("score %d (%d) vs θ=%d β=%d: want keep=%v high=%v, garbler %v %v, evaluator %v %v",
				j, p.signed(s), p.signed(theta), p.signed(beta), wk, wh, gr.keep[j], gr.high[j], er.keep[j], er.high[j])
		}
	}
}

// errContains reports whether err's message contains s.
func errContains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
