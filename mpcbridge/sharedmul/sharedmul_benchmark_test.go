package sharedmul

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// BenchmarkAttention measures BERT-base's attention products, 12 heads
// each, from ~87-bit integer shares to shares, conversions (encoding,
// encryption, decryption, rounding) included, both parties in this
// process over loopback TCP with 2 workers each: the scores S = Q·Kᵀ,
// (n x 64)·(64 x n) with |Q|, |K| < 8 (Bx = By = 4), and A·V, (n x n)·(n
// x 64) with |A| <= 1 (Bx = 0), at n = 128 and at n = 2 (a pruned layer),
// once as 12 calls of one product (calls=12) and once as one call of 12
// (calls=1), each on ChooseBlock's block for its calls. Run with
//
//	go test -run '^$' -bench BenchmarkAttention -benchtime 1x ./mpcbridge/sharedmul
func BenchmarkAttention(b *testing.B) {
	tc := newTestContext(b)
	const heads, dh = 12, 64
	av, err := NewParameters(tc.p.ring, ParametersLiteral{LogBoundX: 0, LogBoundY: 4})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{128, 2} {
		for _, calls := range []int{heads, 1} {
			benchHeads(b, "scores", tc.p, polymat.Dims{Rows: n, In: dh, Out: n}, heads, calls, 3, 3)
			benchHeads(b, "AV", av, polymat.Dims{Rows: n, In: n, Out: dh}, heads, calls, 0, 3)
		}
	}
}

// benchHeads runs heads products of shape d in calls calls (1 or heads),
// operands uniform below 2^bx and 2^by, on ChooseBlock's block for
// heads/calls products in a call.
func benchHeads(b *testing.B, name string, p Parameters, d polymat.Dims, heads, calls int, bx, by float64) {
	tc := newTestContext(b)
	r := rand.New(rand.NewPCG(5, 6))
	f := p.lit.FracBits
	lay, err := p.ChooseBlock(d, heads/calls)
	if err != nil {
		b.Fatal(err)
	}
	type call struct{ xc, xs, yc, ys share.Vector }
	cs := make([]call, calls)
	for k := range cs {
		var c call
		c.xc, c.xs = split(r, fixed(r, lay.Rows*lay.In, f, bx), 87)
		c.yc, c.ys = split(r, fixed(r, lay.Count*d.In*d.Out, f, by), 87)
		cs[k] = c
	}
	b.Run(fmt.Sprintf("%s/heads=%d/%v/block=%v/calls=%d/workers=2", name, heads, d, lay.Block, calls), func(b *testing.B) {
		sc, cc := connPair(b, "tcp")
		cli, err := NewClient(p, tc.sk, 2, nil)
		if err != nil {
			b.Fatal(err)
		}
		srv, err := NewServer(p, tc.pk, 2, nil)
		if err != nil {
			b.Fatal(err)
		}
		up0, down0 := cc.Stats().BytesSent, sc.Stats().BytesSent
		cpu0 := nettest.CPUSeconds()
		b.ResetTimer()
		for it := 0; it < b.N; it++ {
			for _, c := range cs {
				serr, cerr := nettest.Both(func() error {
					_, err := srv.Mul(bg(), sc, lay, c.xs, c.ys)
					return err
				}, func() error {
					_, err := cli.Mul(bg(), cc, lay, c.xc, c.yc)
					return err
				})
				if err := errors.Join(serr, cerr); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		up := float64(cc.Stats().BytesSent-up0) / float64(b.N)
		down := float64(sc.Stats().BytesSent-down0) / float64(b.N)
		b.ReportMetric((nettest.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		b.ReportMetric(up/1e6, "MB-up")
		b.ReportMetric(down/1e6, "MB-down")
		b.ReportMetric(float64(calls*lay.Products()), "ct-products")
	})
}
