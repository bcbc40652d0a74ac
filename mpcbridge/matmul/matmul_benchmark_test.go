package matmul

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// BenchmarkLinear is ckks.BenchmarkLinear's product on the new path:
// X·W for BERT-base's shapes at n = 128 (768x768, the fused QKV 768x2304
// and 768x3072), two parties in one process over loopback TCP, 2 workers
// each, the client's encryption, the server's products and
// re-randomization and the client's decryption into shares all timed.
// "new" pre-encodes the weights once, outside the timer, within 1.25 GiB
// (their memory is reported); "new-onthefly" holds only the quantized
// matrix and encodes the blocks in every call, inside the timer, with the
// block the cost model picks for a zero budget (polymat.CostModel.Plan
// chooses between the two per matrix of a model); "new-N13" is "new" on
// the larger ring polymat.N13, for the choice of the ring. Run it beside
// the old one in one invocation, so that the ratio comes from one run on
// one (shared) machine:
//
//	go test -p 1 -run '^$' -bench 'BenchmarkLinear$/768x[0-9]+/n=128/(workers=2|new.*)$' -benchtime 1x -timeout 2h ./ckks ./mpcbridge/matmul
func BenchmarkLinear(b *testing.B) {
	const budget = 1280 << 20 // pre-encoded weight memory per matrix
	for _, out := range []int{768, 2304, 3072} {
		d := polymat.Dims{Rows: 128, In: 768, Out: out}
		benchLinear(b, fmt.Sprintf("768x%d/n=128/new", out), polymat.N12, d, budget)
		benchLinear(b, fmt.Sprintf("768x%d/n=128/new-onthefly", out), polymat.N12, d, 0)
		if out != 2304 {
			benchLinear(b, fmt.Sprintf("768x%d/n=128/new-N13", out), polymat.N13, d, budget)
		}
	}
}

// benchLinear runs one variant: weights pre-encoded within budget bytes,
// or, for a zero budget, encoded per call.
func benchLinear(b *testing.B, name string, ringLit polymat.ParametersLiteral, d polymat.Dims, budget int64) {
	b.Run(name, func(b *testing.B) {
		tc := newTestContext(b, ringLit, benchLiteral)
		c, err := tc.p.CostModel().ChooseBlock(tc.ring, d, budget)
		if err != nil {
			b.Fatal(err)
		}
		if c.PreEncoded != (budget != 0) {
			b.Fatalf("budget %d: pre-encoded %t", budget, c.PreEncoded)
		}
		lay, err := polymat.NewLayout(tc.ring, d, c.Block)
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(5, 6))
		pr := &problem{lay: lay, x: make([]float64, d.Rows*d.In), w: make([]float64, d.In*d.Out)}
		for i := range pr.x {
			pr.x[i] = max(-7.9, min(7.9, r.NormFloat64()))
		}
		for i := range pr.w {
			pr.w[i] = 0.03 * r.NormFloat64()
		}
		var ws *Weights
		if c.PreEncoded {
			ws, err = NewWeights(bg(), tc.p, lay, pr.w, nil, 2)
		} else {
			ws, err = NewWeightsOnTheFly(tc.p, lay, pr.w, nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		x := tc.fixedX(pr)
		sc, cc := connPair(b, "tcp")
		cli, err := NewClient(tc.p, tc.sk, 2, nil)
		if err != nil {
			b.Fatal(err)
		}
		var sh, ch share.Vector
		s0, c0 := sc.Stats(), cc.Stats()
		cpu0 := nettest.CPUSeconds()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			srv, err := NewServer(tc.p, tc.pk, 2, nil)
			if err != nil {
				b.Fatal(err)
			}
			serr, cerr := nettest.Both(func() error {
				var err error
				sh, err = srv.MatMul(bg(), sc, lay, ws, nil)
				return err
			}, func() error {
				var err error
				ch, err = cli.MatMul(bg(), cc, lay, x)
				return err
			})
			if err := errors.Join(serr, cerr); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		// CPU seconds of both parties together: on a machine shared with
		// other jobs, wall time inflates but this does not much.
		b.ReportMetric((nettest.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		up := float64(cc.Stats().Sub(c0).BytesSent) / float64(b.N)
		down := float64(sc.Stats().Sub(s0).BytesSent) / float64(b.N)
		b.ReportMetric(up, "B-client-to-server")
		b.ReportMetric(down, "B-server-to-client")
		b.ReportMetric((up+down)/1e6, "MB-total")
		b.ReportMetric(float64(lay.Products()), "products")
		b.ReportMetric(float64(ws.MemoryBytes())/(1<<20), "weight-MiB")
		b.ReportMetric(c.Seconds, "modelled-s")
		// The shares must sum to the product (untimed).
		var worst float64
		for i := 0; i < d.Rows; i++ {
			for c := 0; c < d.Out; c++ {
				y := 0.0
				for k := 0; k < d.In; k++ {
					y += pr.x[i*d.In+k] * pr.w[k*d.Out+c]
				}
				got := ch[i*d.Out+c].Add(sh[i*d.Out+c]).Float64() * math.Ldexp(1, -tc.p.fracBits)
				worst = max(worst, math.Abs(got-y))
			}
		}
		if worst > 1e-3 {
			b.Fatalf("max |error| %g", worst)
		}
		b.ReportMetric(worst*math.Ldexp(1, tc.p.fracBits), "max-err-units")
		b.Logf("%v on %v: block %v, pre-encoded %t, %d/%d ciphertexts, weights %.0f MiB, Fw = %d, V = %d, β = %d, k = %d, %d bits per output coefficient",
			d, tc.ring, c.Block, c.PreEncoded, lay.Inputs(), lay.Outputs(), float64(ws.MemoryBytes())/(1<<20), tc.p.weightFracBits, tc.p.valueBits, tc.p.maskBits, tc.p.compressBits, tc.p.outWidth)
	})
}
