package shuffle

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noLeaks fails the test if goroutines started during it are still running
// when it ends. Call it first, as defer noLeaks(t)(), so it runs after the
// test's own cleanups of earlier defers.
func noLeaks(t *testing.T) func() {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, opt)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result is one party's outcome.
type result struct {
	out [][]uint64
	err error
}

// runPair runs Permute on p and Assist on q concurrently, with crypto/rand.
func runPair(ctx context.Context, cfg Config, p, q io.ReadWriter, perm []int, ap, aq [][]uint64) (pr, qr result) {
	return runPairRand(ctx, cfg, p, q, perm, ap, aq, nil, nil)
}

// runPairRand is runPair with the parties' random sources.
func runPairRand(ctx context.Context, cfg Config, p, q io.ReadWriter, perm []int, ap, aq [][]uint64, rp, rq io.Reader) (pr, qr result) {
	done := make(chan result, 1)
	go func() {
		var r result
		r.out, r.err = cfg.Assist(ctx, q, aq, rq)
		done <- r
	}()
	pr.out, pr.err = cfg.Permute(ctx, p, perm, ap, rp)
	return pr, <-done
}

// randomRows returns n rows of width uniform words.
func randomRows(r *rand.Rand, n, width int) [][]uint64 {
	rows := make([][]uint64, n)
	for i := range rows {
		rows[i] = make([]uint64, width)
		for k := range rows[i] {
			rows[i][k] = r.Uint64()
		}
	}
	return rows
}

// constRows returns n rows of width copies of x.
func constRows(n, width int, x uint64) [][]uint64 {
	rows := make([][]uint64, n)
	for i := range rows {
		rows[i] = make([]uint64, width)
		for k := range rows[i] {
			rows[i][k] = x
		}
	}
	return rows
}

// addRows returns a + b row by row modulo 2^64.
func addRows(a, b [][]uint64) [][]uint64 { return addRowsRing(Ring64, a, b) }

// addRowsRing returns a + b row by row modulo ring.
func addRowsRing(ring Ring, a, b [][]uint64) [][]uint64 {
	out := make([][]uint64, len(a))
	for i := range a {
		out[i] = make([]uint64, len(a[i]))
		ring.add(out[i], a[i], b[i])
	}
	return out
}

// equalRows reports whether a and b are equal, with a description of the
// first difference.
func equalRows(a, b [][]uint64) (bool, string) {
	if len(a) != len(b) {
		return false, "different numbers of rows"
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false, "row widths differ"
		}
		for k := range a[i] {
			if a[i][k] != b[i][k] {
				return false, fmt.Sprintf("row %d column %d differs: %#x vs %#x", i, k, a[i][k], b[i][k])
			}
		}
	}
	return true, ""
}

// errContains reports whether err's message contains s.
func errContains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
