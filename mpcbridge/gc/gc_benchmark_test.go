package gc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// BenchmarkGarbleEvaluate runs whole comparison steps over loopback TCP and
// reports, per step, the bytes each way and the message flights (maximal
// runs of writes by one side; the two hellos cross, so a step counts 5 or 6).
func BenchmarkGarbleEvaluate(b *testing.B) {
	for _, bc := range []struct {
		lit ParamsLiteral
		m   int
	}{
		{DefaultParamsLiteral, 128},
		{DefaultParamsLiteral, 512},
		{ParamsLiteral{K: 32, F: 16}, 128},
		{ParamsLiteral{K: 32, F: 16}, 512},
		{ParamsLiteral{K: 64, F: 16, OT: ChouOrlandi}, 128},
	} {
		p := mustParams(b, bc.lit)
		b.Run(fmt.Sprintf("K=%d/%v/m=%d", p.K(), p.OT(), bc.m), func(b *testing.B) {
			cache := NewCache()
			bucket, _ := p.Bucket(bc.m)
			if _, err := cache.get(p.K(), bucket); err != nil {
				b.Fatal(err)
			}
			ga, ea := nettest.Pair(b, "tcp")
			log := &nettest.FlightLog{}
			g := &nettest.CountConn{Conn: ga, Side: 0, Log: log}
			e := &nettest.CountConn{Conn: ea, Side: 1, Log: log}
			r := rand.New(rand.NewPCG(1, 1))
			c, v := split(r, p.K(), scoresFor(r, p.K(), bc.m, 1000, 2000))
			flights := 0
			ctx := b.Context()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				log.Reset()
				gr, er := runPair(ctx, cache, g, e, p, p, v, c, 1000, 2000)
				if gr.err != nil || er.err != nil {
					b.Fatal(gr.err, er.err)
				}
				flights += log.Flights
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(g.Writes.Load())/n, "B-g2e/op")
			b.ReportMetric(float64(e.Writes.Load())/n, "B-e2g/op")
			b.ReportMetric(float64(flights)/n, "flights/op")
		})
	}
}

// BenchmarkCompile measures building the largest circuit (done once per
// (K, bucket) per Cache).
func BenchmarkCompile(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := compile(64, MaxBucket); err != nil {
			b.Fatal(err)
		}
	}
}
