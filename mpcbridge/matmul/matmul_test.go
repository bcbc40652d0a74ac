package matmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestMatMul runs the protocol between two parties over a wire connection
// and compares the sum of the shares with the exact fixed-point product,
// on shapes that are not multiples of the block, n = 1, with and without
// a server input share and a bias, with the weights pre-encoded and
// encoded per call.
func TestMatMul(t *testing.T) {
	tc := newTestContext(t, polymat.N12, testLiteral)
	r := rand.New(rand.NewPCG(7, 8))
	for _, tt := range []struct {
		d         polymat.Dims
		b         polymat.Block // zero: ChooseBlock
		split     bool          // the server holds a share of X
		bias      bool
		transport string
	}{
		{polymat.Dims{Rows: 1, In: 1, Out: 1}, polymat.Block{}, false, false, "pipe"},
		{polymat.Dims{Rows: 1, In: 50, Out: 30}, polymat.Block{}, false, true, "pipe"},
		{polymat.Dims{Rows: 1, In: 70, Out: 200}, polymat.Block{D0: 1, D1: 16, D2: 64}, true, false, "pipe"},
		{polymat.Dims{Rows: 5, In: 17, Out: 9}, polymat.Block{D0: 2, D1: 4, D2: 3}, true, true, "pipe"},
		{polymat.Dims{Rows: 7, In: 33, Out: 21}, polymat.Block{D0: 3, D1: 8, D2: 8}, false, false, "tcp"},
		{polymat.Dims{Rows: 16, In: 64, Out: 100}, polymat.Block{}, true, true, "tcp"},
		{polymat.Dims{Rows: 3, In: 5, Out: 200}, polymat.Block{D0: 3, D1: 5, D2: 200}, false, false, "pipe"},
	} {
		for _, onTheFly := range []bool{false, true} {
			name := fmt.Sprintf("%v/block=%v/split=%v/bias=%v/%s/on-the-fly=%t", tt.d, tt.b, tt.split, tt.bias, tt.transport, onTheFly)
			t.Run(name, func(t *testing.T) {
				pr := tc.newProblem(t, r, tt.d, tt.b, tt.bias)
				pr.onTheFly = onTheFly
				x := tc.fixedX(pr)
				xc, xs := x, share.Vector(nil)
				if tt.split {
					xc, xs = splitShares(r, x, 80)
				}
				a, b, cs, ss := tc.run(t, tt.transport, nil, pr, xc, xs)
				worst := checkShares(t, a, b, tc.want(pr, x))
				// Against the float product: within 2^-F·3 plus the weights'
				// quantization (|x|·In·2^-(Fw+1)).
				tol := 3*math.Ldexp(1, -tc.p.fracBits) + math.Ldexp(1, tc.p.logBound)*float64(tt.d.In)*math.Ldexp(1, -tc.p.weightFracBits-1)
				d := pr.lay.Dims
				for i := 0; i < d.Rows; i++ {
					for c := 0; c < d.Out; c++ {
						y := 0.0
						for k := 0; k < d.In; k++ {
							y += pr.x[i*d.In+k] * pr.w[k*d.Out+c]
						}
						if pr.bias != nil {
							y += pr.bias[c]
						}
						got := a[i*d.Out+c].Add(b[i*d.Out+c]).Float64() * math.Ldexp(1, -tc.p.fracBits)
						if math.Abs(got-y) > tol {
							t.Fatalf("Y[%d,%d] = %v, float product %v", i, c, got, y)
						}
					}
				}
				// Bytes: the server's messages are exactly the formula's.
				wantDown := int64(0)
				for first := 0; first < pr.lay.Outputs(); first += tc.p.chunk {
					wantDown += wire.HeaderLen + headerSize
					for s := first; s < min(first+tc.p.chunk, pr.lay.Outputs()); s++ {
						wantDown += int64(tc.p.outputCtBytes(pr.lay, outputSeq(pr.lay, s)))
					}
				}
				if ss.BytesSent != wantDown {
					t.Errorf("server sent %d bytes, want %d", ss.BytesSent, wantDown)
				}
				t.Logf("block %v: max |error| %d units of 2^-%d, client sent %d B, server sent %d B", pr.lay.Block, worst, tc.p.fracBits, cs.BytesSent, ss.BytesSent)
			})
		}
	}
}
