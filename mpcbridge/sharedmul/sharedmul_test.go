package sharedmul

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// transpose returns the cols x rows transpose of v (rows x cols).
func transpose(v share.Vector, rows, cols int) share.Vector {
	t := make(share.Vector, len(v))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			t[c*rows+r] = v[r*cols+c]
		}
	}
	return t
}

// TestMul runs the protocol between two parties and compares the sum of the
// output shares with the exact products of the reconstructed operands: one
// head of sentiment-tiny (Q·Kᵀ with n = 16, dh = 64, and A·V), n = 1,
// shapes that are not multiples of the block, and several products in one
// call: attention's heads of a tiny model (hidden 128, 2 heads), blocks
// that hold several products, and blocks that straddle two.
func TestMul(t *testing.T) {
	tc := newTestContext(t)
	r := rand.New(rand.NewPCG(1, 2))
	f := tc.p.lit.FracBits
	const valBits = 3 // |x| < 2^3 <= 2^B
	for _, tt := range []struct {
		name      string
		d         polymat.Dims
		count     int
		b         polymat.Block
		transport string
	}{
		{"QKt/n=16/dh=64", polymat.Dims{Rows: 16, In: 64, Out: 16}, 1, polymat.Block{D0: 16, D1: 32, D2: 16}, "tcp"},
		{"AV/n=16/dh=64", polymat.Dims{Rows: 16, In: 16, Out: 64}, 1, polymat.Block{D0: 8, D1: 16, D2: 64}, "pipe"},
		{"QKt/n=1/dh=64", polymat.Dims{Rows: 1, In: 64, Out: 1}, 1, polymat.Block{D0: 1, D1: 64, D2: 1}, "pipe"},
		{"1x1x1", polymat.Dims{Rows: 1, In: 1, Out: 1}, 1, polymat.Block{D0: 1, D1: 1, D2: 1}, "pipe"},
		{"edges", polymat.Dims{Rows: 7, In: 33, Out: 21}, 1, polymat.Block{D0: 3, D1: 8, D2: 8}, "tcp"},
		{"edges2", polymat.Dims{Rows: 5, In: 17, Out: 9}, 1, polymat.Block{D0: 2, D1: 4, D2: 3}, "pipe"},
		{"heads/QKt/n=8", polymat.Dims{Rows: 8, In: 64, Out: 8}, 2, polymat.Block{D0: 8, D1: 32, D2: 8}, "tcp"},
		{"heads/AV/n=8", polymat.Dims{Rows: 8, In: 8, Out: 64}, 2, polymat.Block{D0: 8, D1: 8, D2: 32}, "pipe"},
		{"heads/shared-blocks/n=2", polymat.Dims{Rows: 2, In: 64, Out: 2}, 12, polymat.Block{D0: 2, D1: 256, D2: 8}, "pipe"},
		{"heads/straddling", polymat.Dims{Rows: 5, In: 6, Out: 7}, 5, polymat.Block{D0: 3, D1: 4, D2: 5}, "tcp"},
		{"heads/one-block", polymat.Dims{Rows: 1, In: 3, Out: 1}, 4, polymat.Block{D0: 1, D1: 12, D2: 4}, "pipe"},
	} {
		t.Run(fmt.Sprintf("%s/%dx%v/block=%v/%s", tt.name, tt.count, tt.d, tt.b, tt.transport), func(t *testing.T) {
			lay, err := NewLayout(tc.p.ring, tt.d, tt.count, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			x := fixed(r, lay.Rows*lay.In, f, valBits)
			y := fixed(r, tt.count*tt.d.In*tt.d.Out, f, valBits)
			xc, xs := split(r, x, 87)
			yc, ys := split(r, y, 87)
			a, b, cs, ss := tc.run(t, tt.transport, nil, lay, xc, yc, xs, ys, 2)
			exact := wantBatch(lay, f, x, y)
			// The noise: about 3.2·sqrt(In·(D0+D2))·2^valBits/2^G units
			// at most per standard deviation, In the inner length an
			// output sums; ten of them plus the two roundings.
			inner := float64(max(tt.d.In, lay.MaxInner()*tt.b.D1))
			tol := 10*3.2*math.Sqrt(inner*float64(tt.b.D0+tt.b.D2))*math.Exp2(valBits-float64(tc.p.lit.GuardBits)) + 2
			worst := 0.0
			for k := range exact {
				got := a[k].Add(b[k]).Big(nil)
				e, _ := new(big.Float).SetInt(got.Sub(got, exact[k])).Float64()
				worst = max(worst, math.Abs(e))
				if math.Abs(e) > tol {
					t.Fatalf("entry %d: shares sum to %v off the exact product, tolerance %.0f units of 2^-%d", k, e, tol, f)
				}
			}
			// Bytes: exactly the formulas, c0 off the targets never sent.
			wantUp, wantDown := tc.p.Bytes(lay)
			if ss.BytesSent != wantDown || cs.BytesSent != wantUp {
				t.Errorf("server sent %d B, client %d B, want %d and %d", ss.BytesSent, cs.BytesSent, wantDown, wantUp)
			}
			t.Logf("%d operands, %d outputs; max |error| %.0f units of 2^-%d (tolerance %.0f); client sent %d B, server sent %d B", lay.Operands(), lay.Outputs(), worst, f, tol, cs.BytesSent, ss.BytesSent)
		})
	}
	t.Run("transpose", func(t *testing.T) {
		// Q·Kᵀ from shares of K (n x dh): each party transposes its own
		// share locally.
		d := polymat.Dims{Rows: 16, In: 64, Out: 16}
		lay, err := NewLayout(tc.p.ring, d, 1, polymat.Block{D0: 16, D1: 32, D2: 16})
		if err != nil {
			t.Fatal(err)
		}
		q := fixed(r, 16*64, f, valBits)
		k := fixed(r, 16*64, f, valBits)
		qc, qs := split(r, q, 87)
		kc, ks := split(r, k, 87)
		a, b, _, _ := tc.run(t, "pipe", nil, lay, qc, transpose(kc, 16, 64), qs, transpose(ks, 16, 64), 1)
		for i := 0; i < 16; i++ {
			for j := 0; j < 16; j++ {
				s := 0.0
				for c := 0; c < 64; c++ {
					s += q[i*64+c].Float64() * k[j*64+c].Float64()
				}
				s = math.Ldexp(s, -2*f)
				got := math.Ldexp(a[i*16+j].Add(b[i*16+j]).Float64(), -f)
				if math.Abs(got-s) > 0.01 {
					t.Fatalf("S[%d,%d] = %v, want %v", i, j, got, s)
				}
			}
		}
	})
}

// TestChooseBlock checks the chosen blocks of attention's products on
// polymat.N13: at n = 128 no more bytes than the best blocks measured by
// BenchmarkAttention ((32,8,32) for the scores, 9.75 MB a head with
// whole output coefficients; (32,16,16) for the context, 9.63 MB), a
// block within a small shape, BERT-base's 12 heads at n = 2 in far fewer
// bytes than 12 products, and a refusal when no block holds the masks.
func TestChooseBlock(t *testing.T) {
	ring, err := polymat.NewParametersFromLiteral(polymat.N13)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(bx, by int) Parameters {
		p, err := NewParameters(ring, ParametersLiteral{LogBoundX: bx, LogBoundY: by})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name   string
		p      Parameters
		d      polymat.Dims
		count  int
		wantMB float64 // bytes each way together, at most
	}{
		{"scores/n=128", mk(4, 4), polymat.Dims{Rows: 128, In: 64, Out: 128}, 1, 9.76},
		{"context/n=128", mk(0, 4), polymat.Dims{Rows: 128, In: 128, Out: 64}, 1, 9.64},
		{"scores/12-heads/n=128", mk(4, 4), polymat.Dims{Rows: 128, In: 64, Out: 128}, 12, 12 * 9.76},
		{"context/12-heads/n=128", mk(0, 4), polymat.Dims{Rows: 128, In: 128, Out: 64}, 12, 12 * 9.64},
		{"scores/n=3", mk(4, 4), polymat.Dims{Rows: 3, In: 64, Out: 3}, 1, 0.37},
		// 12 products of n = 2 apart: 24 operands and 12 outputs, 4.3 MB.
		{"scores/12-heads/n=2", mk(4, 4), polymat.Dims{Rows: 2, In: 64, Out: 2}, 12, 0.95},
		{"context/12-heads/n=2", mk(0, 4), polymat.Dims{Rows: 2, In: 2, Out: 64}, 12, 0.95},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lay, err := tt.p.ChooseBlock(tt.d, tt.count)
			if err != nil {
				t.Fatal(err)
			}
			up, down := tt.p.Bytes(lay)
			t.Logf("%v: %d operands, %d outputs, %d products, %.2f MB up, %.2f MB down", lay, lay.Operands(), lay.Outputs(), lay.Products(), float64(up)/1e6, float64(down)/1e6)
			if float64(up+down)/1e6 > tt.wantMB {
				t.Errorf("%.2f MB, want at most %g", float64(up+down)/1e6, tt.wantMB)
			}
		})
	}
	if _, err := mk(30, 30).ChooseBlock(polymat.Dims{Rows: 8, In: 64, Out: 8}, 1); err == nil {
		t.Error("ChooseBlock found a block for 2^30 bounds")
	}
}

// TestLayout checks the packed layouts' counts: blocks within one product
// cost exactly Count products apart, blocks across products skip only the
// weight blocks that hold no diagonal entry, and NewLayout refuses a count
// or a block out of range.
func TestLayout(t *testing.T) {
	tc := newTestContext(t)
	for _, tt := range []struct {
		name                               string
		d                                  polymat.Dims
		count                              int
		b                                  polymat.Block
		inputs, weights, outputs, maxInner int
	}{
		// A head: 8 row blocks by 4 inner blocks of inputs, 4 by 4 weights.
		{"aligned", polymat.Dims{Rows: 128, In: 64, Out: 128}, 12, polymat.Block{D0: 16, D1: 16, D2: 32}, 8 * 48, 12 * 16, 8 * 48, 4},
		// Two heads' rows per inner block, 4 heads' columns per column
		// block: column block j meets inner blocks 2j and 2j+1.
		{"shared", polymat.Dims{Rows: 2, In: 64, Out: 2}, 12, polymat.Block{D0: 2, D1: 128, D2: 8}, 6, 6, 3, 2},
		// Heads of 6 rows and 7 columns across blocks of 4 and 5: the
		// column blocks meet heads {0}, {0,1}, {1,2}, {2}, {2,3}, {3,4},
		// {4}, whose rows span 2, 3, 4, 2, 3, 4, 2 inner blocks.
		{"straddling", polymat.Dims{Rows: 5, In: 6, Out: 7}, 5, polymat.Block{D0: 3, D1: 4, D2: 5}, 16, 20, 14, 4},
		{"single", polymat.Dims{Rows: 7, In: 33, Out: 21}, 1, polymat.Block{D0: 3, D1: 8, D2: 8}, 15, 15, 9, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lay, err := NewLayout(tc.p.ring, tt.d, tt.count, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if lay.Inputs() != tt.inputs || lay.Weights() != tt.weights || lay.Outputs() != tt.outputs || lay.MaxInner() != tt.maxInner {
				t.Errorf("%v: %d inputs, %d weights, %d outputs, %d inner at most; want %d, %d, %d, %d", lay, lay.Inputs(), lay.Weights(), lay.Outputs(), lay.MaxInner(), tt.inputs, tt.weights, tt.outputs, tt.maxInner)
			}
			for w := 0; w < lay.Weights(); w++ {
				if a, j := lay.weightBlock(w); lay.WeightIndex(a, j) != w {
					t.Fatalf("weight %d is block (%d, %d), whose index is %d", w, a, j, lay.WeightIndex(a, j))
				}
			}
		})
	}
	for _, bad := range []struct {
		count int
		b     polymat.Block
	}{{0, polymat.Block{D0: 1, D1: 1, D2: 1}}, {2, polymat.Block{D0: 1, D1: 129, D2: 1}}, {2, polymat.Block{D0: 64, D1: 128, D2: 2}}} {
		if _, err := NewLayout(tc.p.ring, polymat.Dims{Rows: 64, In: 64, Out: 64}, bad.count, bad.b); err == nil {
			t.Errorf("count %d, block %v accepted", bad.count, bad.b)
		}
	}
}
