package elementwise

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// BenchmarkPolys compares, on Elementwise14 with sentiment-tiny's
// registry, the call shapes of a layer's small polynomials before and
// after: one value (LayerNorm's 1/√x at n = 1) and one BERT-base row of
// GELU, each polynomial on one goroutine (seq, before) and on the idle
// workers (par, parPoly); and two degree spans as two sequential Poly
// calls (sequential, before) and as one Polys call (polys). Both parties
// in one process over loopback TCP, 2 workers each; wall time per op, CPU
// seconds of both parties:
//
//	go test -p 1 -run '^$' -bench '^BenchmarkPolys$' -benchtime 5x ./mpcbridge/elementwise
func BenchmarkPolys(b *testing.B) {
	reg := trainedRegistry(b)
	tc := newTestContext(b, ParametersLiteral{Preset: Elementwise14})
	for _, c := range []struct {
		name  string
		fn    approx.Func
		sizes []int // values of the High, then the Low span
	}{
		{"invsqrt/n=1", approx.InvSqrt, []int{1}},
		{"gelu/n=3072", approx.GELU, []int{3072}},
		{"invsqrt-spans/n=1+1", approx.InvSqrt, []int{1, 1}},
		{"gelu-spans/n=3072+3072", approx.GELU, []int{3072, 3072}},
		{"gelu-spans/n=6144+10240", approx.GELU, []int{6144, 10240}},
	} {
		variants := []struct {
			name             string
			batched, seqPoly bool
		}{{"seq", false, true}, {"par", false, false}}
		if len(c.sizes) > 1 {
			variants = []struct {
				name             string
				batched, seqPoly bool
			}{{"sequential", false, true}, {"polys", true, false}}
		}
		for _, v := range variants {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				benchmarkPolys(b, tc, reg, c.fn, c.sizes, v.batched, v.seqPoly)
			})
		}
	}
}

func benchmarkPolys(b *testing.B, tc *testContext, reg *approx.Registry, fn approx.Func, sizes []int, batched, seqPoly bool) {
	r := rand.New(rand.NewPCG(61, 62))
	lo, hi := inputRange(reg, fn)
	items := make([]PolyItem, len(sizes))
	xas := make([]share.Vector, len(sizes))
	levels := make([]int, len(sizes))
	for i, n := range sizes {
		d := []approx.Degree{approx.High, approx.Low}[i]
		xa, xb := splitShares(r, fixed(tc.p, uniform(r, n, lo, hi)), 82)
		items[i], xas[i] = PolyItem{Fn: fn, Deg: d, X: xb}, xa
		var err error
		if levels[i], err = tc.p.PolyLevel(reg, fn, d); err != nil {
			b.Fatal(err)
		}
	}
	sc, cc := connPair(b, "tcp")
	srv, err := NewServer(tc.p, tc.pk, tc.rlk, reg, 2)
	if err != nil {
		b.Fatal(err)
	}
	srv.seqPoly = seqPoly
	cli, err := NewClient(tc.p, tc.sk, 2)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := nettest.CPUSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serr, cerr := nettest.Both(func() error {
			if batched {
				_, err := srv.Polys(bg(), sc, items)
				return err
			}
			for _, it := range items {
				if _, err := srv.Poly(bg(), sc, it.Fn, it.Deg, it.X); err != nil {
					return err
				}
			}
			return nil
		}, func() error {
			if batched {
				_, err := cli.Polys(bg(), cc, levels, xas)
				return err
			}
			for j, x := range xas {
				if _, err := cli.Poly(bg(), cc, levels[j], x); err != nil {
					return err
				}
			}
			return nil
		})
		if err := errors.Join(serr, cerr); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((nettest.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(len(sizes)), "items")
}
