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

// BenchmarkAttention measures BERT-base's attention scores at n = 128: 12
// heads of S = Q·Kᵀ, (128 x 64)·(64 x 128), from ~87-bit integer shares of
// Q and Kᵀ to shares of S, conversions (encoding, encryption, decryption,
// rounding) included, both parties in this process over loopback TCP with
// 2 workers each. Run with
//
//	go test -run '^$' -bench BenchmarkAttention -benchtime 1x ./mpcbridge/sharedmul
func BenchmarkAttention(b *testing.B) {
	tc := newTestContext(b)
	const heads, n, dh = 12, 128, 64
	r := rand.New(rand.NewPCG(5, 6))
	f := tc.p.lit.FracBits
	type head struct{ qc, qs, kc, ks share.Vector }
	hs := make([]head, heads)
	for h := range hs {
		q := fixed(r, n*dh, f, 3)
		kt := fixed(r, dh*n, f, 3)
		var hd head
		hd.qc, hd.qs = split(r, q, 87)
		hd.kc, hd.ks = split(r, kt, 87)
		hs[h] = hd
	}
	for _, blk := range []polymat.Block{{D0: 32, D1: 8, D2: 32}, {D0: 16, D1: 32, D2: 16}, {D0: 64, D1: 2, D2: 64}} {
		lay, err := polymat.NewLayout(tc.p.ring, polymat.Dims{Rows: n, In: dh, Out: n}, blk)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("heads=%d/%dx%dx%d/block=%v/workers=2", heads, n, dh, n, blk), func(b *testing.B) {
			sc, cc := connPair(b, "tcp")
			cli, err := NewClient(tc.p, tc.sk, 2, nil)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := NewServer(tc.p, tc.pk, 2, nil)
			if err != nil {
				b.Fatal(err)
			}
			up0, down0 := cc.Stats().BytesSent, sc.Stats().BytesSent
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				for _, hd := range hs {
					serr, cerr := nettest.Both(func() error {
						_, err := srv.Mul(bg(), sc, lay, hd.qs, hd.ks)
						return err
					}, func() error {
						_, err := cli.Mul(bg(), cc, lay, hd.qc, hd.kc)
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
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(up/1e6, "MB-up")
			b.ReportMetric(down/1e6, "MB-down")
			b.ReportMetric(float64(heads*lay.Products()), "ct-products")
		})
	}
}
