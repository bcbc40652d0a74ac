package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// BenchmarkMulMatrixMontgomery times one column group of ckks/polymat's
// products at N = 2^12 with polymat.N12's two primes (54 and 55 bits), for
// the blocks of BERT-base's 768x3072 at n = 128: lean (2,64,32), (16,16,16)
// and the pre-encoded (32,4,32), 16 column blocks each, against Lattigo's
// MulCoeffsMontgomeryLazyThenAddLazy on whole polynomials, output by
// output; "ns/MAC" is ours per coefficient multiply-add of one limb.
//
//	go test ./kernels -run '^$' -bench MulMatrixMontgomery -benchtime 3x
func BenchmarkMulMatrixMontgomery(b *testing.B) {
	params, err := rlwe.NewParametersFromLiteral(rlwe.ParametersLiteral{LogN: 12, Q: []uint64{18014398508400641, 36028797018652673}, NTTFlag: true})
	if err != nil {
		b.Fatal(err)
	}
	kp, err := NewParamsQ(params)
	if err != nil {
		b.Fatal(err)
	}
	be, err := NewCPU(kp, CPUOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rq := params.RingQ()
	basis := Basis{1, -1}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name  string
		shape MatrixShape
	}{
		{"block=(2,64,32)", MatrixShape{Rows: 64, Inner: 12, Cols: 16, Parts: 2}},
		{"block=(16,16,16)", MatrixShape{Rows: 8, Inner: 48, Cols: 16, Parts: 2}},
		{"block=(32,4,32)", MatrixShape{Rows: 4, Inner: 192, Cols: 16, Parts: 2}},
	} {
		s := c.shape
		polys := func(count int) ([]ringqp.Poly, Buffer) {
			p := make([]ringqp.Poly, count)
			for k := range p {
				p[k] = ringqp.Poly{Q: randomPoly(rng, rq, 1)}
			}
			buf, err := be.Alloc(basis, count)
			if err != nil {
				b.Fatal(err)
			}
			if err := be.Upload(buf, p); err != nil {
				b.Fatal(err)
			}
			return p, buf
		}
		x, bx := polys(s.Rows * s.Inner * s.Parts)
		w, bw := polys(s.Cols * s.Inner)
		dst, err := be.Alloc(basis, s.Rows*s.Cols*s.Parts)
		if err != nil {
			b.Fatal(err)
		}
		acc := rq.NewPoly()
		out := rq.NewPoly()
		lattigo := func() error {
			for r := 0; r < s.Rows; r++ {
				for col := 0; col < s.Cols; col++ {
					for p := 0; p < s.Parts; p++ {
						acc.Zero()
						for a := 0; a < s.Inner; a++ {
							rq.MulCoeffsMontgomeryLazyThenAddLazy(x[(r*s.Inner+a)*s.Parts+p].Q, w[col*s.Inner+a].Q, acc)
						}
						rq.Reduce(acc, out)
					}
				}
			}
			return nil
		}
		b.Run(fmt.Sprintf("%s/%v/%s", c.name, s, be.Name()), func(b *testing.B) {
			macs := float64(s.Rows*s.Inner*s.Cols*s.Parts) * 2 * float64(params.N())
			var ours time.Duration
			versus(b, lattigo, func() error {
				t0 := time.Now()
				err := be.MulMatrixMontgomery(dst, bx, bw, s)
				ours += time.Since(t0)
				return err
			})
			b.ReportMetric(ours.Seconds()/float64(b.N)/macs*1e9, "ns/MAC")
		})
	}
}
