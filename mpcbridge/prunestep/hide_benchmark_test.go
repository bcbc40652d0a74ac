package prunestep

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPruneHideLength runs BenchmarkPruneShares' step (d = 768,
// loopback TCP, about half the rows kept) without and with KeepGroup
// 8 on the same input, one after the other, and reports the loopback time
// and the bytes each way: what hiding the kept count costs a step (the
// top-K circuit, the tie column through the shuffle and the rows added).
func BenchmarkPruneHideLength(b *testing.B) {
	for _, n := range benchSizes {
		for _, group := range []int{0, 8} {
			lit := defaultLiteral
			lit.KeepGroup = group
			tc := newTestContext(b, lit)
			b.Run(fmt.Sprintf("n=%d/d=%d/group=%d", n, benchCols, group), func(b *testing.B) {
				x, scores, theta, beta := benchInput(n)
				sIn, cIn := shareRows(rand.New(rand.NewPCG(uint64(n), 2)), tc.p, 0, x, scores)
				benchStep(b, pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, nil))
			})
		}
	}
}
