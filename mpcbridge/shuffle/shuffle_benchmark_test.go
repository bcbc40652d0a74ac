package shuffle

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// BenchmarkPermute runs whole permute-and-share calls over loopback TCP and
// reports, per call, the bytes each way and the message flights (maximal
// runs of writes by one side; the two hellos cross, so a call counts 4 or
// 5 flights for 2 round trips).
func BenchmarkPermute(b *testing.B) {
	for _, bc := range []struct{ n, width int }{{128, 769}, {512, 769}, {128, 1}} {
		b.Run(fmt.Sprintf("n=%d/w=%d", bc.n, bc.width), func(b *testing.B) {
			pa, qa := nettest.Pair(b, "tcp")
			log := &nettest.FlightLog{}
			p := &nettest.CountConn{Conn: pa, Side: 0, Log: log}
			q := &nettest.CountConn{Conn: qa, Side: 1, Log: log}
			r := rand.New(rand.NewPCG(1, 1))
			perm := r.Perm(bc.n)
			ap, aq := randomRows(r, bc.n, bc.width), randomRows(r, bc.n, bc.width)
			ctx := b.Context()
			flights := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				log.Reset()
				pr, qr := runPair(ctx, Config{}, p, q, perm, ap, aq)
				if pr.err != nil || qr.err != nil {
					b.Fatal(pr.err, qr.err)
				}
				flights += log.Flights
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(p.Writes.Load())/n, "B-P2Q/op")
			b.ReportMetric(float64(q.Writes.Load())/n, "B-Q2P/op")
			b.ReportMetric(float64(flights)/n, "flights/op")
		})
	}
}

// BenchmarkShuffle runs the two-sided Shuffle (two permute-and-share calls)
// over loopback TCP; First is the server S, Second the client C. The
// Ring128 cases carry the same 769 values a row (BERT-base's features and
// the score, as the pruning step shuffles them) in twice the words.
func BenchmarkShuffle(b *testing.B) {
	for _, bc := range []struct {
		n, width int
		ring     Ring
	}{{128, 769, Ring64}, {128, 2 * 769, Ring128}, {512, 769, Ring64}, {512, 2 * 769, Ring128}} {
		cfg := Config{Ring: bc.ring}
		b.Run(fmt.Sprintf("n=%d/w=%d/%v", bc.n, bc.width, bc.ring), func(b *testing.B) {
			sa, ca := nettest.Pair(b, "tcp")
			log := &nettest.FlightLog{}
			s := &nettest.CountConn{Conn: sa, Side: 0, Log: log}
			c := &nettest.CountConn{Conn: ca, Side: 1, Log: log}
			r := rand.New(rand.NewPCG(2, 2))
			xs, xc := randomRows(r, bc.n, bc.width), randomRows(r, bc.n, bc.width)
			ctx := b.Context()
			flights := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				log.Reset()
				done := make(chan error, 1)
				go func() {
					_, err := cfg.Shuffle(ctx, c, Second, xc, nil)
					done <- err
				}()
				_, err := cfg.Shuffle(ctx, s, First, xs, nil)
				if cerr := <-done; err != nil || cerr != nil {
					b.Fatal(err, cerr)
				}
				flights += log.Flights
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(s.Writes.Load())/n, "B-S2C/op")
			b.ReportMetric(float64(c.Writes.Load())/n, "B-C2S/op")
			b.ReportMetric(float64(flights)/n, "flights/op")
		})
	}
}

// BenchmarkRoute measures routing a permutation of 512 (P's local work).
func BenchmarkRoute(b *testing.B) {
	src := rand.New(rand.NewPCG(3, 3)).Perm(512)
	for i := 0; i < b.N; i++ {
		route(src)
	}
}
