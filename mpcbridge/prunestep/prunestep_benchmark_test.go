package prunestep

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// Network models of the benchmarks: time = compute (the loopback wall
// time) + bytes (both directions) / bandwidth + round trips · RTT.
var networks = []struct {
	name string
	bps  float64       // bits per second
	rtt  time.Duration // round-trip time
}{
	{"LAN", 3e9, 800 * time.Microsecond},
	{"WAN", 200e6, 40 * time.Millisecond},
}

// BenchmarkPrune runs one pruning step at Interactive14 (the secure preset)
// with d = 768 over loopback TCP, both parties in this process, and reports
// the bytes each way, the flights each party sent and the round trips
// ((flights of both)/2), and the modelled LAN and WAN times. About half of
// the rows are kept and a quarter are high-degree.
func BenchmarkPrune(b *testing.B) {
	tc := newTestContext(b, ckks.Interactive14, defaultLiteral)
	for _, n := range []int{128, 512} {
		const d = 768
		b.Run(fmt.Sprintf("n=%d/d=%d", n, d), func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(n), 1))
			scores := make([]float64, n)
			for i := range scores {
				scores[i] = 2 * r.Float64() / float64(n)
			}
			theta, beta := 1/float64(n), 1.5/float64(n)
			in := tc.newInput(b, 0, randomRows(r, n, d, 1), scores, tc.server.MinLevel())
			srv, cli := connPair(b, "tcp")
			ctx := testCtx(b)
			var (
				counts             Counts
				serr, cerr         error
				elapsed            time.Duration
				sentS, sentC       int64
				flightsS, flightsC int64
			)
			// A first step outside the timer runs the handshake and
			// compiles the comparison circuit.
			if serr, cerr = nettest.Both(func() error { _, _, err := tc.server.Prune(ctx, srv, in.out, theta, beta); return err },
				func() error { _, err := tc.client.Prune(ctx, cli); return err }); serr != nil || cerr != nil {
				b.Fatalf("server: %v; client: %v", serr, cerr)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s0, c0 := srv.Stats(), cli.Stats()
				start := time.Now()
				serr, cerr = nettest.Both(func() error {
					var err error
					_, counts, err = tc.server.Prune(ctx, srv, in.out, theta, beta)
					return err
				}, func() error { _, err := tc.client.Prune(ctx, cli); return err })
				elapsed += time.Since(start)
				if serr != nil || cerr != nil {
					b.Fatalf("server: %v; client: %v", serr, cerr)
				}
				ds, dc := srv.Stats().Sub(s0), cli.Stats().Sub(c0)
				sentS += ds.BytesSent
				sentC += dc.BytesSent
				flightsS += ds.Rounds
				flightsC += dc.Rounds
			}
			b.StopTimer()
			N := float64(b.N)
			wall := elapsed.Seconds() / N
			bytes := float64(sentS+sentC) / N
			fs, fc := float64(flightsS)/N, float64(flightsC)/N
			rounds := (fs + fc) / 2
			b.ReportMetric(float64(sentS)/N/1e6, "MB_S→C")
			b.ReportMetric(float64(sentC)/N/1e6, "MB_C→S")
			b.ReportMetric(fs, "flights_S")
			b.ReportMetric(fc, "flights_C")
			b.ReportMetric(rounds, "rounds")
			for _, nw := range networks {
				t := wall + bytes*8/nw.bps + rounds*nw.rtt.Seconds()
				b.ReportMetric(t, "s_"+nw.name)
			}
			b.Logf("%v; loopback %.3f s, %.2f MB S→C, %.2f MB C→S, %.0f+%.0f flights", counts, wall, float64(sentS)/N/1e6, float64(sentC)/N/1e6, fs, fc)
		})
	}
}
