package prunestep

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// BenchmarkPruneHideLength runs BenchmarkPrune's step (Interactive14, d =
// 768, loopback TCP, about half the rows kept) without and with KeepGroup
// 8 on the same input, one after the other, and reports the loopback time
// and the bytes each way: what hiding the kept count costs a step (the
// top-K circuit, the tie column through the shuffle and the rows added).
func BenchmarkPruneHideLength(b *testing.B) {
	const d = 768
	for _, n := range []int{128, 512} {
		for _, group := range []int{0, 8} {
			lit := defaultLiteral
			lit.KeepGroup = group
			tc := newTestContext(b, ckks.Interactive14, lit)
			b.Run(fmt.Sprintf("n=%d/d=%d/group=%d", n, d, group), func(b *testing.B) {
				r := rand.New(rand.NewPCG(uint64(n), 1))
				scores := make([]float64, n)
				for i := range scores {
					scores[i] = 2 * r.Float64() / float64(n)
				}
				theta, beta := 1/float64(n), 1.5/float64(n)
				in := tc.newInput(b, 0, randomRows(r, n, d, 1), scores, tc.server.MinLevel())
				srv, cli := connPair(b, "tcp")
				ctx := testCtx(b)
				step := func() (Counts, error) {
					var counts Counts
					serr, cerr := nettest.Both(func() error {
						var err error
						_, counts, err = tc.server.Prune(ctx, srv, in.out, theta, beta)
						return err
					}, func() error { _, err := tc.client.Prune(ctx, cli); return err })
					if serr != nil || cerr != nil {
						return counts, fmt.Errorf("server: %v; client: %v", serr, cerr)
					}
					return counts, nil
				}
				if _, err := step(); err != nil { // handshake, circuit compilation
					b.Fatal(err)
				}
				var elapsed time.Duration
				var sentS, sentC int64
				var counts Counts
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s0, c0 := srv.Stats(), cli.Stats()
					start := time.Now()
					var err error
					if counts, err = step(); err != nil {
						b.Fatal(err)
					}
					elapsed += time.Since(start)
					sentS += srv.Stats().Sub(s0).BytesSent
					sentC += cli.Stats().Sub(c0).BytesSent
				}
				b.StopTimer()
				N := float64(b.N)
				b.ReportMetric(float64(sentS)/N/1e6, "MB_S→C")
				b.ReportMetric(float64(sentC)/N/1e6, "MB_C→S")
				b.Logf("%v; loopback %.3f s, %.2f MB S→C, %.2f MB C→S", counts, elapsed.Seconds()/N, float64(sentS)/N/1e6, float64(sentC)/N/1e6)
			})
		}
	}
}
