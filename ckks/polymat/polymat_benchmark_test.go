package polymat

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
)

// The benchmarks time the server's products alone (no encryption, no
// conversion; mpcbridge/matmul's BenchmarkLinear has the whole protocol):
//
//	go test ./ckks/polymat -run '^$' -bench . -benchtime 1x
//
// BenchmarkMul picks the block with ChooseBlock under a weight budget of
// 1.25 GiB and reports the per-MAC time that CostModel.MAC assumes.
func BenchmarkMul(b *testing.B) {
	for _, lit := range []ParametersLiteral{N12, N13} {
		tc := newTestContext(b, lit)
		for _, d := range []Dims{{128, 768, 768}, {128, 768, 3072}} {
			c, err := CostModel{}.ChooseBlockPreEncoded(tc.params, d, 1280<<20)
			if err != nil {
				b.Fatal(err)
			}
			lay, err := NewLayout(tc.params, d, c.Block)
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 1))
			w, err := FromInt64(tc.params, d.In, d.Out, randInts(r, d.In*d.Out, 1<<20))
			if err != nil {
				b.Fatal(err)
			}
			ew, err := NewEncodedWeights(bg(), tc.params, lay, w, 2)
			if err != nil {
				b.Fatal(err)
			}
			in := tc.encrypt(b, lay, randInts(r, d.Rows*d.In, 1<<20))
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("N=2^%d/%v/block=%v/workers=%d", tc.params.LogN(), d, c.Block, workers), func(b *testing.B) {
					ev := NewEvaluator(tc.params, workers)
					for b.Loop() {
						if err := ev.MulThen(bg(), lay, in, ew, func(_, _ int, _ *rlwe.Ciphertext) error { return nil }); err != nil {
							b.Fatal(err)
						}
					}
					macs := float64(lay.Products()) * 2 * float64(tc.params.Limbs()*tc.params.N())
					b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/macs*1e9*float64(workers), "ns/MAC/worker")
					b.ReportMetric(float64(ew.MemoryBytes())/(1<<20), "weight-MiB")
				})
			}
		}
	}
}
