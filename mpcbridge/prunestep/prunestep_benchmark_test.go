package prunestep

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/models"
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

// benchSizes are the n of the step benchmarks, at d = benchCols.
var benchSizes = []int{128, 512}

const benchCols = 768

// benchInput returns the step benchmarks' input at n: d = 768 Gaussian rows
// and scores in [0, 2/n), with θ = 1/n and β = 1.5/n (about half of the
// rows kept, a quarter high-degree).
func benchInput(n int) (x models.Matrix, scores []float64, theta, beta float64) {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	scores = make([]float64, n)
	for i := range scores {
		scores[i] = 2 * r.Float64() / float64(n)
	}
	return randomRows(r, n, benchCols, 1), scores, 1 / float64(n), 1.5 / float64(n)
}

// BenchmarkPruneShares runs one pruning step on integer shares
// (PruneShares; the rows and scores shared with 88-bit masks) with d = 768
// over loopback TCP, both parties in this process, and reports the bytes
// each way, the flights each party sent and the round trips ((flights of
// both)/2), the CPU seconds of both parties, and the modelled LAN and WAN
// times. About half of the rows are kept and a quarter are high-degree.
func BenchmarkPruneShares(b *testing.B) {
	tc := newTestContext(b, defaultLiteral)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("n=%d/d=%d", n, benchCols), func(b *testing.B) {
			x, scores, theta, beta := benchInput(n)
			sIn, cIn := shareRows(rand.New(rand.NewPCG(uint64(n), 2)), tc.p, 0, x, scores)
			benchStep(b, pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, nil))
		})
	}
}

// benchStep measures step over one loopback TCP connection: a first step
// outside the timer runs the handshake and compiles the comparison
// circuit; then b.N steps, whose bytes, flights, CPU and wall time it
// reports per step.
func benchStep(b *testing.B, step stepFunc) {
	srv, cli := connPair(b, "tcp")
	ctx := testCtx(b)
	if _, err := step(ctx, srv, cli); err != nil {
		b.Fatal(err)
	}
	var (
		counts             Counts
		elapsed            time.Duration
		cpu                float64
		sentS, sentC       int64
		flightsS, flightsC int64
	)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s0, c0 := srv.Stats(), cli.Stats()
		start, cpu0 := time.Now(), nettest.CPUSeconds()
		var err error
		if counts, err = step(ctx, srv, cli); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		cpu += nettest.CPUSeconds() - cpu0
		ds, dc := srv.Stats().Sub(s0), cli.Stats().Sub(c0)
		sentS, sentC = sentS+ds.BytesSent, sentC+dc.BytesSent
		flightsS, flightsC = flightsS+ds.Rounds, flightsC+dc.Rounds
	}
	b.StopTimer()
	N := float64(b.N)
	wall, fs, fc := elapsed.Seconds()/N, float64(flightsS)/N, float64(flightsC)/N
	bytes, rounds := float64(sentS+sentC)/N, (fs+fc)/2
	b.ReportMetric(float64(sentS)/N/1e6, "MB_S→C")
	b.ReportMetric(float64(sentC)/N/1e6, "MB_C→S")
	b.ReportMetric(fs, "flights_S")
	b.ReportMetric(fc, "flights_C")
	b.ReportMetric(rounds, "rounds")
	b.ReportMetric(cpu/N, "cpu-s")
	for _, nw := range networks {
		b.ReportMetric(wall+bytes*8/nw.bps+rounds*nw.rtt.Seconds(), "s_"+nw.name)
	}
	b.Logf("%v; loopback %.3f s (%.3f CPU-s), %.2f MB S→C, %.2f MB C→S, %.0f+%.0f flights", counts, wall, cpu/N, float64(sentS)/N/1e6, float64(sentC)/N/1e6, fs, fc)
}
