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

// BenchmarkAttention measures BERT-base's attention products at n = 128,
// 12 heads each, from ~87-bit integer shares to shares, conversions
// (encoding, encryption, decryption, rounding) included, both parties in
// this process over loopback TCP with 2 workers each: the scores S = Q·Kᵀ,
// (128 x 64)·(64 x 128) with |Q|, |K| < 8 (Bx = By = 4), and A·V, (128 x
// 128)·(128 x 64) with |A| <= 1 (Bx = 0). Run with
//
//	go test -run '^$' -bench BenchmarkAttention -benchtime 1x ./mpcbridge/sharedmul
func BenchmarkAttention(b *testing.B) {
	tc := newTestContext(b)
	const heads, n, dh = 12, 128, 64
	for _, blk := range []polymat.Block{{D0: 32, D1: 8, D2: 32}, {D0: 16, D1: 32, D2: 16}, {D0: 64, D1: 2, D2: 64}} {
		benchHeads(b, "scores", tc.p, polymat.Dims{Rows: n, In: dh, Out: n}, blk, heads, 3, 3)
	}
	av, err := NewParameters(tc.p.ring, ParametersLiteral{LogBoundX: 0, LogBoundY: 4})
	if err != nil {
		b.Fatal(err)
	}
	for _, blk := range []polymat.Block{{D0: 32, D1: 8, D2: 32}, {D0: 32, D1: 16, D2: 16}} {
		benchHeads(b, "AV", av, polymat.Dims{Rows: n, In: n, Out: dh}, blk, heads, 0, 3)
	}
}

// benchHeads runs heads products of shape d with block blk, operands
// uniform below 2^bx and 2^by.
func benchHeads(b *testing.B, name string, p Parameters, d polymat.Dims, blk polymat.Block, heads int, bx, by float64) {
	tc := newTestContext(b)
	r := rand.New(rand.NewPCG(5, 6))
	f := p.lit.FracBits
	type head struct{ xc, xs, yc, ys share.Vector }
	hs := make([]head, heads)
	for h := range hs {
		var hd head
		hd.xc, hd.xs = split(r, fixed(r, d.Rows*d.In, f, bx), 87)
		hd.yc, hd.ys = split(r, fixed(r, d.In*d.Out, f, by), 87)
		hs[h] = hd
	}
	lay, err := polymat.NewLayout(p.ring, d, blk)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("%s/heads=%d/%v/block=%v/workers=2", name, heads, d, blk), func(b *testing.B) {
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
			for _, hd := range hs {
				serr, cerr := nettest.Both(func() error {
					_, err := srv.Mul(bg(), sc, lay, hd.xs, hd.ys)
					return err
				}, func() error {
					_, err := cli.Mul(bg(), cc, lay, hd.xc, hd.yc)
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
		b.ReportMetric(float64(heads*lay.Products()), "ct-products")
	})
}
